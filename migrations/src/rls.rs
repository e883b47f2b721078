//! Row-level security for PostgreSQL.
//!
//! Each domain table gets one policy, `tenant_isolation`, enabled and FORCED (so the table owner
//! is subject to it too). A row is visible and writable when its `tenant_id` equals the
//! transaction-local setting `app.tenant_id`, or when the transaction runs in system mode
//! (`app.system = 'on'`, used by migrations, seeding of new tenants and relays).
//!
//! After a transaction ends, PostgreSQL reports a custom setting as `''` rather than NULL on that
//! pooled connection, hence the `nullif(…, '')` before the cast.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The transaction-local setting that carries the current tenant.
pub const TENANT_SETTING: &str = "app.tenant_id";
/// The transaction-local setting that switches on system mode.
pub const SYSTEM_SETTING: &str = "app.system";

/// The policy predicate for a table whose tenant column is `column`.
pub fn predicate(column: &str) -> String {
    format!(
        "{column} = nullif(current_setting('{TENANT_SETTING}', true), '')::uuid \
         OR current_setting('{SYSTEM_SETTING}', true) = 'on'"
    )
}

/// Enables and forces row-level security on `table` (PostgreSQL only; a no-op elsewhere).
pub async fn enable(manager: &SchemaManager<'_>, table: &str, column: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let predicate = predicate(column);
    let conn = manager.get_connection();
    for sql in [
        format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
        format!(
            "CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})"
        ),
    ] {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}
