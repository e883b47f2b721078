//! B2B companies: a hierarchy of companies and divisions (settings inherit downwards unless a
//! division overrides them), locations (ship-to/bill-to sites that may override tax and payment
//! settings), company users with built-in and custom roles, invitations, spending limits,
//! payment terms and credit, and sales-rep assignments.

pub mod entity;
pub mod graphql;
pub mod loader;
pub mod service;
pub mod vat;

pub use service::CompaniesService;
