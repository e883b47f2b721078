//! Shared column and constraint builders, so every table follows the same conventions:
//! UUID v7 primary keys, `tenant_id` with a named foreign key, UTC timestamps, named constraints.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_uuid, timestamp_with_time_zone, uuid};

/// `CREATE TABLE name (id uuid primary key, tenant_id uuid not null references tenants, …)`
/// with `created_at`/`updated_at`; the caller adds the domain columns.
pub fn tenant_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(pk_uuid("id"))
        .col(uuid("tenant_id"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
        .foreign_key(&mut fk(
            name,
            "tenant_id",
            "tenants",
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

/// A join table: `tenant_id` plus the caller's key columns, no surrogate id.
pub fn tenant_join_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(uuid("tenant_id"))
        .foreign_key(&mut fk(
            name,
            "tenant_id",
            "tenants",
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

/// A named foreign key `fk_<table>_<column>` to `target(id)`.
pub fn fk(
    table: &'static str,
    column: &'static str,
    target: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(on_delete)
        .to_owned()
}

/// A named unique index.
pub fn unique(name: &str, table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).unique();
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

/// A named plain index.
pub fn index(name: &str, table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}
