//! # vectis-strategies
//!
//! The data types and strategy traits through which the Vectis engine makes business decisions.
//! This crate has no database and no GraphQL dependency: extension authors depend on it alone.
//!
//! What lives here today:
//! - [`money`]: [`Money`], [`CurrencyCode`] and checked arithmetic on integer minor units. Every
//!   amount in Vectis is an `i64` of minor units plus an ISO 4217 currency; nothing overflows
//!   silently (overflow is an error).
//!
//! Strategy traits (pricing, tax, shipping, promotions, order process, …) are added next to their
//! default implementations as the engine's domains arrive.

pub mod money;

pub use money::{CurrencyCode, Money, MoneyError};
