//! Orders: the order process (states as data from the `OrderProcess` strategies, merged and
//! validated at boot), and later checkout, placement, payments and order history.

pub mod after_sale;
pub mod approve;
pub mod entity;
pub mod graphql;
pub mod loader;
pub mod service;

pub use service::OrdersService;
