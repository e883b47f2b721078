//! Inventory: stock locations (warehouses), stock levels per variant and location with their
//! movement history, backorder policies, availability for buyers, reservations through the
//! `StockAllocationStrategy` (no oversell under concurrency: see [`reserve`]), and bulk
//! stock changes from staff, CSV imports and outside systems.

pub mod entity;
pub mod fulfil;
pub mod graphql;
pub mod import;
pub mod inbound;
pub mod reserve;
pub mod service;

pub use reserve::ReserveLine;
pub use service::InventoryService;
