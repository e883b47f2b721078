//! Pricing: price lists (scoped to everyone, a customer group, a company and its divisions, or a
//! company location; prioritised; time-limited; per currency) with volume tiers, and batch
//! price quotes through the configured `PricingStrategy`.
//!
//! The engine loads the price data for all requested variants in a fixed number of statements
//! (base prices, candidate price lists, their prices) and calls the strategy once.

pub mod entity;
pub mod graphql;
pub mod loader;
pub mod service;

pub use service::PricingService;
