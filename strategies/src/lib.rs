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
//! - [`pricing`]: [`PricingStrategy`] and [`DefaultPricing`] (base prices, price lists with
//!   scopes, priorities, validity windows and volume tiers).
//! - [`tax`]: [`TaxStrategy`] and [`DefaultTax`] (destination VAT, exemptions, EU B2B reverse
//!   charge, exports; per-line rounding).
//!
//! Every strategy is batch-shaped: the engine calls it once per cart operation with all lines
//! and the data it loaded for them, never once per line. Each trait sits next to its default
//! implementation, and its documentation says what it decides, when it is called and its
//! performance budget.

pub mod money;
pub mod pricing;
pub mod tax;

pub use money::{CurrencyCode, Money, MoneyError};
pub use pricing::{DefaultPricing, PricingStrategy};
pub use tax::{DefaultTax, TaxStrategy};
