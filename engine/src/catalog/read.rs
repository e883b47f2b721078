//! What other modules read of the catalog, inside their own transaction. The catalog's tables
//! are the catalog's: the cart and pricing ask here instead of querying them. Every function
//! is one statement whatever the number of ids.

use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{price, product, variant};
use super::service::ARCHIVED;
use crate::db::id_in;
use crate::error::AppResult;
use crate::kernel::TenantId;

fn sku_in(backend: DbBackend, skus: Vec<String>) -> sea_orm::sea_query::SimpleExpr {
    let column = Expr::col((variant::Entity, variant::Column::Sku));
    if backend == DbBackend::Postgres {
        column.eq(PgFunc::any(Expr::val(skus)))
    } else {
        column.is_in(skus)
    }
}

/// The variants named by `ids` or `skus`, archived ones included (the caller decides what an
/// archived variant means for it).
pub async fn variants_by_ref<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    ids: Vec<Uuid>,
    skus: Vec<String>,
) -> AppResult<Vec<variant::Model>> {
    let backend = tx.get_database_backend();
    // Only the non-empty side is queried: `id = ANY(…) OR sku = ANY(…)` can keep the planner
    // from using either index, and an array scan per row is quadratic.
    let by_id =
        (!ids.is_empty()).then(|| id_in(backend, (variant::Entity, variant::Column::Id), ids));
    let by_sku = (!skus.is_empty()).then(|| sku_in(backend, skus));
    let condition = match (by_id, by_sku) {
        (Some(a), Some(b)) => a.or(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Ok(Vec::new()),
    };
    Ok(variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(condition)
        .all(tx)
        .await?)
}

/// Variants by id; archived ones only with `include_archived`.
pub async fn variants_by_id<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    ids: Vec<Uuid>,
    include_archived: bool,
) -> AppResult<Vec<variant::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    let mut q = variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(id_in(backend, (variant::Entity, variant::Column::Id), ids));
    if !include_archived {
        q = q.filter(variant::Column::Status.ne(ARCHIVED));
    }
    Ok(q.all(tx).await?)
}

/// Variants by SKU; archived ones only with `include_archived`.
pub async fn variants_by_sku<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    skus: Vec<String>,
    include_archived: bool,
) -> AppResult<Vec<variant::Model>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    let mut q = variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(sku_in(backend, skus));
    if !include_archived {
        q = q.filter(variant::Column::Status.ne(ARCHIVED));
    }
    Ok(q.all(tx).await?)
}

/// Products by id; archived ones only with `include_archived`.
pub async fn products_by_id<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    ids: Vec<Uuid>,
    include_archived: bool,
) -> AppResult<Vec<product::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    let mut q = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(id_in(backend, (product::Entity, product::Column::Id), ids));
    if !include_archived {
        q = q.filter(product::Column::Status.ne(ARCHIVED));
    }
    Ok(q.all(tx).await?)
}

/// The base prices of `variants` in `currency`.
pub async fn base_prices<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    variants: Vec<Uuid>,
    currency: &str,
) -> AppResult<Vec<price::Model>> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let backend = tx.get_database_backend();
    Ok(price::Entity::find()
        .filter(price::Column::TenantId.eq(tenant.0))
        .filter(price::Column::Currency.eq(currency.to_owned()))
        .filter(id_in(
            backend,
            (price::Entity, price::Column::VariantId),
            variants,
        ))
        .all(tx)
        .await?)
}

/// The collections of the products of order `order_id`'s lines, in one statement.
pub async fn collections_of_order<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    order_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    let backend = tx.get_database_backend();
    let (t, o) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    };
    let rows = tx
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT DISTINCT pc.collection_id AS id FROM order_lines ol \
                 JOIN product_variants v ON v.id = ol.variant_id \
                 JOIN product_collections pc ON pc.product_id = v.product_id \
                 WHERE ol.tenant_id = {t} AND ol.order_id = {o} AND pc.tenant_id = {t}"
            ),
            [tenant.0.into(), order_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<Uuid>("", "id").map_err(Into::into))
        .collect()
}
