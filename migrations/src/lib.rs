//! Database migrations of the Vectis engine, for SQLite and PostgreSQL.
//!
//! One migration per file; shipped migrations are never edited, only followed by new ones.
//! Every domain table carries `tenant_id`; on PostgreSQL each gets row-level security, enabled
//! and forced, with the policy from [`rls`].

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_tenants_and_staff;
mod m20261122_000002_catalog;
mod m20261122_000003_outbox;
mod m20261122_000004_accounts;
mod m20261122_000005_price_lists;
mod m20261122_000006_carts;
mod m20261122_000007_event_streaming;
mod m20261201_000008_sound_core;
mod m20261201_000009_orders;
mod m20261202_000010_payment_intents;
mod m20261203_000011_inventory;
mod m20261204_000012_refunds_and_returns;
mod m20261205_000013_approvals;
mod m20261206_000014_quotes_and_lists;
pub mod rls;
mod util;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_tenants_and_staff::Migration),
            Box::new(m20261122_000002_catalog::Migration),
            Box::new(m20261122_000003_outbox::Migration),
            Box::new(m20261122_000004_accounts::Migration),
            Box::new(m20261122_000005_price_lists::Migration),
            Box::new(m20261122_000006_carts::Migration),
            Box::new(m20261122_000007_event_streaming::Migration),
            Box::new(m20261201_000008_sound_core::Migration),
            Box::new(m20261201_000009_orders::Migration),
            Box::new(m20261202_000010_payment_intents::Migration),
            Box::new(m20261203_000011_inventory::Migration),
            Box::new(m20261204_000012_refunds_and_returns::Migration),
            Box::new(m20261205_000013_approvals::Migration),
            Box::new(m20261206_000014_quotes_and_lists::Migration),
        ]
    }
}
