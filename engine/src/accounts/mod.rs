//! Accounts: customers (B2C shoppers and B2B contacts), their address books, customer groups,
//! email verification and password reset.
//!
//! Email delivery is not this module's concern: it records events
//! (`vectis.account.email_verification_requested`, `vectis.account.password_reset_requested`)
//! that carry the one-time token for the notification handler.

pub mod address;
pub mod entity;
pub mod graphql;
pub mod loader;
pub mod service;

pub use address::PostalAddress;
pub use service::{AccountsService, Customer};
