//! # vectis-engine
//!
//! The Vectis commerce engine as a library: domain modules (`catalog`, …), cross-cutting
//! `db`, `auth`, `events`, `http`, `config`, and [`graphql::build_schema`], so tests execute
//! GraphQL without HTTP. The `vectis` binary is a thin shell over [`cli`].
//!
//! Start at `docs/architecture.md` for the map.

pub mod accounts;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod cart;
pub mod catalog;
pub mod cli;
pub mod companies;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod inventory;
pub mod kernel;
pub mod notifications;
pub mod orders;
pub mod pricing;
pub mod projections;
pub mod quotes;
pub mod requisition_lists;
pub mod seed;
pub mod services;
pub mod tenancy;
pub mod webhooks;

pub use app::{App, Services};
pub use graphql::build_schema;
