//! Catalog: products, variants (SKU unique per tenant), option groups and options, collections
//! (a tree), per-currency base prices and a simple text search.
//!
//! - `entity`: the tables.
//! - `service`: reads and writes; every write records its events in the outbox.
//! - `loader`: batch loaders behind every relation field.
//! - `read`: what other modules read of the catalog, in their own transaction.
//! - `graphql`: the GraphQL types, queries and mutations.

pub mod entity;
pub mod graphql;
pub mod loader;
pub mod read;
pub mod service;

pub use service::CatalogService;
