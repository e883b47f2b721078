//! Accounts: customers (B2C shoppers and B2B contacts), their address books, customer groups,
//! email verification and password reset.
//!
//! Email delivery is not this module's concern: it records events
//! (`vectis.account.email_verification_requested`, `vectis.account.password_reset_requested`)
//! and keeps the one-time token for the notifications handler (`notifications::keep_token`).

pub mod entity;
pub mod graphql;
pub mod loader;
pub mod service;

pub use crate::kernel::PostalAddress;
pub use service::{AccountsService, Customer};
