//! The concurrency model, as code (see `docs/architecture.md`, "Concurrency").
//!
//! - A mutation of an aggregate first locks the aggregate's root row ([`lock`]: `SELECT … FOR
//!   UPDATE` on PostgreSQL), then reads, computes and writes under that lock, and recomputes
//!   stored totals inside it.
//! - Several rows are locked with one statement in a fixed order, by id ([`lock_all`]), so
//!   two transactions never wait for each other in opposite orders.
//! - A single-use credential is redeemed with one conditional update ([`consume`]:
//!   `UPDATE … WHERE … AND <consumed> IS NULL RETURNING …`); no row back means it was used.
//!
//! On SQLite a write transaction takes the database's write lock at `BEGIN IMMEDIATE`
//! (`Db::write`), so writers are serialised already and the lock clause is left out
//! (sea-query renders none for SQLite).

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::kernel::TenantId;

fn column<E>(name: &str) -> AppResult<E::Column>
where
    E: EntityTrait,
    E::Column: std::str::FromStr,
{
    <E::Column as std::str::FromStr>::from_str(name).map_err(|_| {
        AppError::Internal(anyhow::anyhow!(
            "{} has no column {name}",
            E::default().table_name()
        ))
    })
}

/// Locks row `id` of entity `E` in `tenant` for the rest of the transaction and returns it as
/// it is now (after any concurrent writer committed); `None` when there is no such row.
pub async fn lock<E, C>(tx: &C, tenant: TenantId, id: Uuid) -> AppResult<Option<E::Model>>
where
    E: EntityTrait,
    E::Column: std::str::FromStr,
    C: ConnectionTrait,
{
    Ok(E::find()
        .filter(column::<E>("tenant_id")?.eq(tenant.0))
        .filter(column::<E>("id")?.eq(id))
        .lock_exclusive()
        .one(tx)
        .await?)
}

/// Locks the rows of `E` in `tenant` that match `condition`, in id order, with one statement,
/// and returns them (in id order).
pub async fn lock_all<E, C>(
    tx: &C,
    tenant: TenantId,
    condition: impl IntoCondition,
) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
    E::Column: std::str::FromStr,
    C: ConnectionTrait,
{
    Ok(E::find()
        .filter(column::<E>("tenant_id")?.eq(tenant.0))
        .filter(condition)
        .order_by_asc(column::<E>("id")?)
        .lock_exclusive()
        .all(tx)
        .await?)
}

/// Redeems a single-use row of `E` in `tenant`: sets `consumed` (a nullable timestamp column,
/// e.g. `used_at`) to now on the row matching `condition` whose `consumed` is still null, and
/// returns it. `None` means there is no such row, or another transaction redeemed it first —
/// exactly one caller can ever get it back.
pub async fn consume<E, C>(
    tx: &C,
    tenant: TenantId,
    consumed: &str,
    condition: impl IntoCondition,
) -> AppResult<Option<E::Model>>
where
    E: EntityTrait,
    E::Column: std::str::FromStr,
    C: ConnectionTrait,
{
    let consumed = column::<E>(consumed)?;
    let now = chrono::Utc::now();
    let mut update = E::update_many()
        .col_expr(consumed, Expr::value(now))
        .filter(column::<E>("tenant_id")?.eq(tenant.0))
        .filter(Expr::col(consumed).is_null())
        .filter(condition);
    if let Ok(updated_at) = column::<E>("updated_at") {
        update = update.col_expr(updated_at, Expr::value(now));
    }
    let rows: Result<Vec<E::Model>, DbErr> = update.exec_with_returning(tx).await;
    Ok(rows?.into_iter().next())
}
