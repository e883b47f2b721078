//! Stock: locations, levels and their movement history, backorder policies, per-tenant
//! settings, bulk changes (all-or-nothing with per-row errors) and buyer availability.
//!
//! A change of stock levels runs a constant number of statements whatever the number of rows:
//! the variants by SKU and the locations (one query each), the missing levels created empty
//! (one insert), every level it touches locked in (variant, location) order (one `SELECT …
//! FOR UPDATE`), then one multi-row update, one multi-row movement insert and the events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::StockAllocationStrategy;
use vectis_strategies::allocation::Backorder;

use super::entity::{level, location, movement, policy, settings};
use crate::auth::{Caller, Permission};
use crate::catalog::entity::variant;
use crate::catalog::read as catalog;
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::db::page::{Page, PageRequest};
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::kernel::TenantId;

/// Most rows one stock change takes.
pub const MAX_STOCK_ROWS: usize = 10_000;
/// The largest quantity on hand (far below overflow when summed over locations).
pub const MAX_ON_HAND: i64 = 1_000_000_000_000;
/// The low-stock threshold of a tenant that set none.
pub const DEFAULT_LOW_STOCK_THRESHOLD: i64 = 10;

/// Kinds of stock movement.
pub mod kind {
    /// A staff adjustment.
    pub const ADJUSTMENT: &str = "adjustment";
    /// A bulk import (GraphQL or `vectis import stock`).
    pub const IMPORT: &str = "import";
    /// An absolute level from an outside system (WMS, ERP).
    pub const INBOUND: &str = "inbound";
    /// Shipped to a buyer.
    pub const SHIPMENT: &str = "shipment";
    /// Returned by a buyer and put back.
    pub const RETURN: &str = "return";
}

/// A tenant's inventory settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A variant is low on stock at or below this many available units.
    pub low_stock_threshold: i64,
    /// Whether buyers see exact quantities (staff always do).
    pub show_quantities: bool,
    /// Minutes a checkout reservation holds stock; `None`: stock is reserved at placement only.
    pub checkout_reservation_minutes: Option<i32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
            show_quantities: false,
            checkout_reservation_minutes: None,
        }
    }
}

/// How a row changes the quantity on hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Set it to this (a count, an import, a WMS level).
    Set(i64),
    /// Add this (negative: remove).
    Add(i64),
}

/// One row of a stock change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    /// The variant's SKU.
    pub sku: String,
    /// The stock location's code.
    pub location: String,
    /// The change.
    pub change: Change,
}

/// What buyers see of a variant's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// More than the threshold available.
    InStock,
    /// At or below the threshold, above zero.
    LowStock,
    /// Nothing available (backorders may still be taken).
    OutOfStock,
    /// No stock is recorded for the variant: it is not stock-tracked and always sells.
    NotTracked,
}

/// A variant's availability over the active locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    /// In stock, low, out, or not tracked.
    pub status: Status,
    /// Units available (on hand − reserved) over the active locations.
    pub available: i64,
    /// The backorder policy.
    pub backorder: Backorder,
}

/// The availability of a variant with `levels` (at active locations) and `policy`.
pub fn availability(
    levels: &[level::Model],
    tracked: bool,
    backorder: Backorder,
    threshold: i64,
) -> Availability {
    let available: i64 = levels.iter().map(level::Model::available).sum();
    let status = if !tracked {
        Status::NotTracked
    } else if available <= 0 {
        Status::OutOfStock
    } else if available <= threshold {
        Status::LowStock
    } else {
        Status::InStock
    };
    Availability {
        status,
        available,
        backorder,
    }
}

/// `low` or `out` when a level's available stock crosses the threshold downwards (or reaches
/// zero).
pub(super) fn crossing(before: i64, after: i64, threshold: i64) -> Option<&'static str> {
    if after >= before {
        return None;
    }
    if after <= 0 && before > 0 {
        Some("out")
    } else if after <= threshold && before > threshold {
        Some("low")
    } else {
        None
    }
}

/// The stored form of a backorder policy.
pub fn policy_of(p: Option<&policy::Model>) -> Backorder {
    match p.map(|p| (p.backorder.as_str(), p.backorder_limit)) {
        Some(("allow", _)) => Backorder::Allow,
        Some(("limit", Some(n))) => Backorder::UpTo(n),
        _ => Backorder::Deny,
    }
}

/// A level as a stock change writes it back.
#[derive(Serialize)]
pub(super) struct LevelWrite {
    pub(super) id: String,
    pub(super) variant: String,
    pub(super) location: String,
    #[serde(rename = "onHand")]
    pub(super) on_hand: i64,
    pub(super) reserved: i64,
    pub(super) version: i64,
    /// RFC 3339, as the database stores timestamps; kept when absent.
    #[serde(rename = "asOf", skip_serializing_if = "Option::is_none")]
    pub(super) as_of: Option<String>,
}

#[derive(Serialize)]
pub(super) struct MovementRow {
    pub(super) id: String,
    pub(super) variant: String,
    pub(super) location: String,
    pub(super) quantity: i64,
    pub(super) after: i64,
}

#[derive(Serialize)]
struct NewLevel {
    id: String,
    variant: String,
    location: String,
}

/// Stock locations, levels, policies and settings.
#[derive(Clone)]
pub struct InventoryService {
    pub(super) core: Core,
    pub(super) allocation: Arc<dyn StockAllocationStrategy>,
}

fn location_code(code: &str) -> AppResult<String> {
    let code = code.trim();
    if code.is_empty()
        || code.len() > 64
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(AppError::validation(
            "code",
            "use 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(code.to_owned())
}

fn reason_of(reason: Option<String>) -> AppResult<Option<String>> {
    match reason.map(|r| r.trim().to_owned()) {
        Some(r) if r.chars().count() > 500 => Err(AppError::validation(
            "reason",
            "must be at most 500 characters",
        )),
        Some(r) if r.is_empty() => Ok(None),
        r => Ok(r),
    }
}

fn location_event(l: &location::Model) -> serde_json::Value {
    json!({ "id": l.id, "code": l.code, "name": l.name, "countryCode": l.country_code,
            "active": l.active })
}

crate::events::aggregate!(location::Entity, "stock_location", "StockLocation");

impl InventoryService {
    /// An inventory service allocating with `allocation`.
    pub fn new(core: Core, allocation: Arc<dyn StockAllocationStrategy>) -> Self {
        InventoryService { core, allocation }
    }

    /// The tenant's settings (defaults when none were set).
    pub async fn settings_in<C: ConnectionTrait>(tx: &C, tenant: TenantId) -> AppResult<Settings> {
        Ok(settings::Entity::find_by_id(tenant.0)
            .one(tx)
            .await?
            .map(|s| Settings {
                low_stock_threshold: s.low_stock_threshold,
                show_quantities: s.show_quantities,
                checkout_reservation_minutes: s.checkout_reservation_minutes,
            })
            .unwrap_or_default())
    }

    /// The tenant's settings.
    pub async fn settings(&self, tenant: TenantId) -> AppResult<Settings> {
        self.core
            .read(tenant, |tx| Box::pin(Self::settings_in(tx, tenant)))
            .await
    }

    /// Changes the tenant's settings (`INVENTORY_WRITE`); `None` keeps a setting.
    pub async fn update_settings(
        &self,
        caller: &Caller,
        low_stock_threshold: Option<i64>,
        show_quantities: Option<bool>,
        checkout_reservation_minutes: Option<Option<i32>>,
    ) -> AppResult<Settings> {
        caller.require(Permission::InventoryWrite)?;
        if let Some(t) = low_stock_threshold
            && !(0..=MAX_ON_HAND).contains(&t)
        {
            return Err(AppError::validation(
                "lowStockThreshold",
                "must be 0 or more",
            ));
        }
        if let Some(Some(m)) = checkout_reservation_minutes
            && !(1..=7 * 24 * 60).contains(&m)
        {
            return Err(AppError::validation(
                "checkoutReservationMinutes",
                "must be 1-10080 minutes (a week), or null to reserve at placement only",
            ));
        }
        let uow = self.core.begin_for(caller).await?;
        let current = Self::settings_in(uow.tx(), caller.tenant).await?;
        let next = Settings {
            low_stock_threshold: low_stock_threshold.unwrap_or(current.low_stock_threshold),
            show_quantities: show_quantities.unwrap_or(current.show_quantities),
            checkout_reservation_minutes: checkout_reservation_minutes
                .unwrap_or(current.checkout_reservation_minutes),
        };
        let row = settings::ActiveModel {
            tenant_id: Set(caller.tenant.0),
            low_stock_threshold: Set(next.low_stock_threshold),
            show_quantities: Set(next.show_quantities),
            checkout_reservation_minutes: Set(next.checkout_reservation_minutes),
            updated_at: Set(Utc::now()),
        };
        settings::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(settings::Column::TenantId)
                    .update_columns([
                        settings::Column::LowStockThreshold,
                        settings::Column::ShowQuantities,
                        settings::Column::CheckoutReservationMinutes,
                        settings::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(uow.tx())
            .await?;
        uow.commit().await?;
        Ok(next)
    }

    /// Creates a stock location (`INVENTORY_WRITE`); its code is unique in the tenant.
    pub async fn create_location(
        &self,
        caller: &Caller,
        code: &str,
        name: &str,
        country_code: Option<&str>,
    ) -> AppResult<location::Model> {
        caller.require(Permission::InventoryWrite)?;
        let code = location_code(code)?;
        let name = crate::kernel::text::text("name", name, 200)?;
        let country = country_code
            .map(|c| crate::kernel::address::country("countryCode", c))
            .transpose()?;
        let mut uow = self.core.begin_for(caller).await?;
        let now = Utc::now();
        let row = location::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            code: Set(code.clone()),
            name: Set(name),
            country_code: Set(country),
            active: Set(true),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let created = location::Entity::insert(row)
            .exec_with_returning(uow.tx())
            .await
            .map_err(crate::db::conflict(
                "uq_stock_locations_tenant_code",
                "stock_locations.tenant_id, stock_locations.code",
                format!("a stock location with code `{code}` exists"),
            ))?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "stock_location",
            created.id,
            created.version,
            "vectis.inventory.location_created",
            location_event(&created),
        ));
        uow.commit().await?;
        Ok(created)
    }

    /// Renames, activates or deactivates a stock location (`INVENTORY_WRITE`). An inactive
    /// location keeps its stock but serves no new orders.
    pub async fn update_location(
        &self,
        caller: &Caller,
        id: Uuid,
        name: Option<&str>,
        active: Option<bool>,
    ) -> AppResult<location::Model> {
        caller.require(Permission::InventoryWrite)?;
        let mut sets = Vec::new();
        if let Some(name) = name {
            sets.push((
                location::Column::Name,
                Expr::value(crate::kernel::text::text("name", name, 200)?),
            ));
        }
        if let Some(active) = active {
            sets.push((location::Column::Active, Expr::value(active)));
        }
        let mut uow = self.core.begin_for(caller).await?;
        crate::db::lock::lock::<location::Entity, _>(uow.tx(), caller.tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("StockLocation", id))?;
        let updated = uow
            .change::<location::Entity>(
                id,
                sets,
                "vectis.inventory.location_updated",
                location_event,
            )
            .await?;
        uow.commit().await?;
        Ok(updated)
    }

    /// The tenant's stock locations by code.
    pub async fn locations(&self, tenant: TenantId) -> AppResult<Vec<location::Model>> {
        self.core
            .read(tenant, |tx| Box::pin(Self::locations_in(tx, tenant)))
            .await
    }

    pub(super) async fn locations_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
    ) -> AppResult<Vec<location::Model>> {
        Ok(location::Entity::find()
            .filter(location::Column::TenantId.eq(tenant.0))
            .order_by_asc(location::Column::Code)
            .all(tx)
            .await?)
    }

    /// Applies `rows` (`INVENTORY_WRITE`): all or nothing. Unknown SKUs or locations, on-hand
    /// quantities that would go negative and repeated (SKU, location) pairs are reported per
    /// row (by index) and nothing changes. Returns the changed levels.
    pub async fn change_stock(
        &self,
        caller: &Caller,
        rows: Vec<StockRow>,
        kind: &'static str,
        reason: Option<String>,
    ) -> AppResult<Result<Vec<level::Model>, Vec<ItemError>>> {
        caller.require(Permission::InventoryWrite)?;
        let reason = reason_of(reason)?;
        let mut uow = self.core.begin_for(caller).await?;
        let out = self
            .change_stock_in(&mut uow, rows, kind, reason.as_deref(), None)
            .await?;
        if out.is_ok() {
            uow.commit().await?;
        }
        Ok(out)
    }

    /// [`Self::change_stock`] inside a unit of work (the inbound consumer uses it with the
    /// newest `asOf` per row: rows older than the level's are skipped, not errors).
    pub(crate) async fn change_stock_in(
        &self,
        uow: &mut UnitOfWork,
        rows: Vec<StockRow>,
        kind: &'static str,
        reason: Option<&str>,
        as_of: Option<&[chrono::DateTime<Utc>]>,
    ) -> AppResult<Result<Vec<level::Model>, Vec<ItemError>>> {
        if rows.is_empty() {
            return Err(AppError::validation("rows", "give at least one row"));
        }
        if rows.len() > MAX_STOCK_ROWS {
            return Err(AppError::validation(
                "rows",
                format!("at most {MAX_STOCK_ROWS} rows per call"),
            ));
        }
        let tenant = uow.tenant();
        let backend = self.core.db.backend();
        let mut errors = Vec::new();
        let skus: Vec<String> = rows
            .iter()
            .map(|r| r.sku.trim().to_owned())
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let variants: HashMap<String, variant::Model> =
            catalog::variants_by_sku(uow.tx(), tenant, skus, true)
                .await?
                .into_iter()
                .map(|v| (v.sku.clone(), v))
                .collect();
        let locations: HashMap<String, location::Model> = Self::locations_in(uow.tx(), tenant)
            .await?
            .into_iter()
            .map(|l| (l.code.clone(), l))
            .collect();
        let mut seen = HashSet::new();
        let mut resolved = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let Some(v) = variants.get(row.sku.trim()) else {
                errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("sku"),
                    format!("no variant with SKU `{}`", row.sku.trim()),
                ));
                continue;
            };
            let Some(l) = locations.get(row.location.trim()) else {
                errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("location"),
                    format!("no stock location `{}`", row.location.trim()),
                ));
                continue;
            };
            if !seen.insert((v.id, l.id)) {
                errors.push(ItemError::new(
                    i,
                    "DUPLICATE_ROW",
                    Some("sku"),
                    format!("`{}` at `{}` is given twice", v.sku, l.code),
                ));
                continue;
            }
            match row.change {
                Change::Set(q) if !(0..=MAX_ON_HAND).contains(&q) => {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("onHand"),
                        format!("on hand must be 0-{MAX_ON_HAND}, not {q}"),
                    ));
                    continue;
                }
                Change::Add(q) if q == 0 || q.abs() > MAX_ON_HAND => {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("delta"),
                        "the change must be non-zero and within the on-hand range",
                    ));
                    continue;
                }
                _ => {}
            }
            resolved.push((i, v, l, row.change));
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        // Missing levels are created empty, then every level is locked in (variant, location)
        // order: concurrent changes and reservations wait for each other, never deadlock.
        let mut insert = JsonRows::new(backend);
        let news: Vec<NewLevel> = resolved
            .iter()
            .map(|(_, v, l, _)| NewLevel {
                id: hex(Uuid::now_v7()),
                variant: hex(v.id),
                location: hex(l.id),
            })
            .collect();
        let source = insert.from(&news)?;
        let (t, now) = (insert.param(tenant.0), insert.param(Utc::now()));
        let sql = format!(
            "INSERT INTO stock_levels (id, tenant_id, variant_id, location_id, on_hand, reserved, \
             version, created_at, updated_at) SELECT {}, {t}, {}, {}, 0, 0, 0, {now}, {now} \
             FROM {source} WHERE true ON CONFLICT (tenant_id, variant_id, location_id) DO NOTHING",
            insert.uuid("id"),
            insert.uuid("variant"),
            insert.uuid("location"),
        );
        insert.execute(uow.tx(), sql).await?;
        let variant_ids: Vec<Uuid> = resolved.iter().map(|(_, v, _, _)| v.id).collect();
        let location_ids: Vec<Uuid> = resolved
            .iter()
            .map(|(_, _, l, _)| l.id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let locked = Self::lock_levels(uow.tx(), tenant, variant_ids, Some(location_ids)).await?;
        let by_pair: HashMap<(Uuid, Uuid), &level::Model> = locked
            .iter()
            .map(|l| ((l.variant_id, l.location_id), l))
            .collect();
        let threshold = Self::settings_in(uow.tx(), tenant)
            .await?
            .low_stock_threshold;
        let mut writes = Vec::new();
        let mut moves = Vec::new();
        let mut changed = Vec::new();
        for (n, (i, v, l, change)) in resolved.iter().enumerate() {
            let Some(before) = by_pair.get(&(v.id, l.id)) else {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "stock level of {} at {} not locked",
                    v.sku,
                    l.code
                )));
            };
            if let Some(times) = as_of
                && let (Some(at), Some(newest)) = (times.get(n), before.as_of)
                && *at <= newest
            {
                continue;
            }
            let on_hand = match change {
                Change::Set(q) => *q,
                Change::Add(q) => before.on_hand.saturating_add(*q),
            };
            if !(0..=MAX_ON_HAND).contains(&on_hand) {
                errors.push(ItemError::new(
                    *i,
                    "NEGATIVE_STOCK",
                    Some("delta"),
                    format!(
                        "`{}` at `{}` has {} on hand; the change would leave {on_hand}",
                        v.sku, l.code, before.on_hand
                    ),
                ));
                continue;
            }
            let quantity = on_hand - before.on_hand;
            let low = crossing(before.available(), on_hand - before.reserved, threshold);
            let version = before.version + 1 + i64::from(low.is_some());
            let after = level::Model {
                on_hand,
                version,
                as_of: as_of.and_then(|t| t.get(n).copied()).or(before.as_of),
                ..(*before).clone()
            };
            writes.push(LevelWrite {
                id: hex(before.id),
                variant: hex(before.variant_id),
                location: hex(before.location_id),
                on_hand,
                reserved: before.reserved,
                version,
                as_of: after.as_of.map(crate::db::json_rows::timestamp),
            });
            moves.push(MovementRow {
                id: hex(Uuid::now_v7()),
                variant: hex(v.id),
                location: hex(l.id),
                quantity,
                after: on_hand,
            });
            let data = json!({ "levelId": after.id, "variantId": v.id, "sku": v.sku,
                "locationId": l.id, "location": l.code, "onHand": on_hand,
                "reserved": after.reserved, "available": after.available(), "change": quantity,
                "kind": kind, "reason": reason });
            uow.record(DomainEvent::new(
                tenant,
                "stock_level",
                after.id,
                before.version + 1,
                "vectis.inventory.adjusted",
                data,
            ));
            if let Some(status) = low {
                uow.record(low_stock_event(
                    tenant, &after, &v.sku, &l.code, threshold, status,
                ));
            }
            changed.push(after);
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        self.write_levels(uow, &writes, as_of.is_some()).await?;
        self.insert_movements(uow, &moves, kind, reason, None)
            .await?;
        Ok(Ok(changed))
    }

    /// Records on-hand changes in the movement history (one statement).
    pub(super) async fn insert_movements(
        &self,
        uow: &UnitOfWork,
        moves: &[MovementRow],
        kind: &str,
        reason: Option<&str>,
        order_id: Option<Uuid>,
    ) -> AppResult<()> {
        if moves.is_empty() {
            return Ok(());
        }
        let mut insert = JsonRows::new(self.core.db.backend());
        let source = insert.from(moves)?;
        let (t, k, r, o, now) = (
            insert.param(uow.tenant().0),
            insert.param(kind.to_owned()),
            insert.param(reason.map(str::to_owned)),
            insert.param(order_id),
            insert.param(Utc::now()),
        );
        let sql = format!(
            "INSERT INTO stock_movements (id, tenant_id, variant_id, location_id, kind, \
             quantity, on_hand_after, reason, order_id, actor_id, created_at, updated_at) \
             SELECT {}, {t}, {}, {}, {k}, {}, {}, {r}, {o}, NULL, {now}, {now} FROM {source}",
            insert.uuid("id"),
            insert.uuid("variant"),
            insert.uuid("location"),
            insert.int("quantity"),
            insert.int("after"),
        );
        insert.execute(uow.tx(), sql).await
    }

    /// Locks the levels of `variants` (at `locations`, or all) in (variant, location) order
    /// with one statement, and returns them in that order.
    pub(super) async fn lock_levels<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        variants: Vec<Uuid>,
        locations: Option<Vec<Uuid>>,
    ) -> AppResult<Vec<level::Model>> {
        if variants.is_empty() {
            return Ok(Vec::new());
        }
        let backend = tx.get_database_backend();
        let mut q = level::Entity::find()
            .filter(level::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                backend,
                (level::Entity, level::Column::VariantId),
                variants,
            ));
        if let Some(locations) = locations {
            q = q.filter(id_in(
                backend,
                (level::Entity, level::Column::LocationId),
                locations,
            ));
        }
        Ok(q.order_by_asc(level::Column::VariantId)
            .order_by_asc(level::Column::LocationId)
            .lock_exclusive()
            .all(tx)
            .await?)
    }

    /// Writes locked levels back (absolute values, one statement).
    pub(super) async fn write_levels(
        &self,
        uow: &UnitOfWork,
        writes: &[LevelWrite],
        with_as_of: bool,
    ) -> AppResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let backend = self.core.db.backend();
        let mut update = JsonRows::new(backend);
        let source = update.from(writes)?;
        let now = update.param(Utc::now());
        let t = update.param(uow.tenant().0);
        // An upsert on the (tenant, variant, location) key of rows that exist (they are
        // locked): both backends find each row by its index, whatever the number of rows.
        let as_of = if with_as_of {
            ", as_of = excluded.as_of"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO stock_levels (id, tenant_id, variant_id, location_id, on_hand, reserved, \
             version, as_of, created_at, updated_at) SELECT {}, {t}, {}, {}, {}, {}, {}, {}, {now}, {now} \
             FROM {source} WHERE true ON CONFLICT (tenant_id, variant_id, location_id) DO UPDATE SET \
             on_hand = excluded.on_hand, reserved = excluded.reserved, version = excluded.version, \
             updated_at = excluded.updated_at{as_of}",
            update.uuid("id"),
            update.uuid("variant"),
            update.uuid("location"),
            update.int("onHand"),
            update.int("reserved"),
            update.int("version"),
            update.time("asOf"),
        );
        update.execute(uow.tx(), sql).await
    }

    /// Sets a variant's backorder policy (`INVENTORY_WRITE`).
    pub async fn set_backorder(
        &self,
        caller: &Caller,
        sku: &str,
        backorder: Backorder,
    ) -> AppResult<Backorder> {
        caller.require(Permission::InventoryWrite)?;
        if let Backorder::UpTo(n) = backorder
            && !(1..=MAX_ON_HAND).contains(&n)
        {
            return Err(AppError::validation("limit", "must be 1 or more"));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let v = catalog::variants_by_sku(uow.tx(), caller.tenant, vec![sku.trim().into()], true)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("ProductVariant", sku.trim()))?;
        let (name, limit) = match backorder {
            Backorder::Deny => ("deny", None),
            Backorder::Allow => ("allow", None),
            Backorder::UpTo(n) => ("limit", Some(n)),
        };
        let now = Utc::now();
        let stored = policy::Entity::insert(policy::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            variant_id: Set(v.id),
            backorder: Set(name.into()),
            backorder_limit: Set(limit),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                policy::Column::TenantId,
                policy::Column::VariantId,
            ])
            .update_columns([
                policy::Column::Backorder,
                policy::Column::BackorderLimit,
                policy::Column::UpdatedAt,
            ])
            .value(
                policy::Column::Version,
                Expr::col((policy::Entity, policy::Column::Version)).add(1),
            )
            .to_owned(),
        )
        .exec_with_returning(uow.tx())
        .await?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "stock_policy",
            stored.id,
            stored.version,
            "vectis.inventory.backorder_policy_set",
            json!({ "variantId": v.id, "sku": v.sku, "backorder": name, "limit": limit }),
        ));
        uow.commit().await?;
        Ok(backorder)
    }

    /// Levels of `variants` (all locations) and their policies, for loaders.
    pub async fn stock_of(
        &self,
        tenant: TenantId,
        variants: Vec<Uuid>,
    ) -> AppResult<(
        Vec<level::Model>,
        Vec<policy::Model>,
        Vec<location::Model>,
        Settings,
    )> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let levels = level::Entity::find()
                        .filter(level::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (level::Entity, level::Column::VariantId),
                            variants.clone(),
                        ))
                        .order_by_asc(level::Column::VariantId)
                        .order_by_asc(level::Column::LocationId)
                        .all(tx)
                        .await?;
                    let policies = policy::Entity::find()
                        .filter(policy::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (policy::Entity, policy::Column::VariantId),
                            variants,
                        ))
                        .all(tx)
                        .await?;
                    let locations = Self::locations_in(tx, tenant).await?;
                    let settings = Self::settings_in(tx, tenant).await?;
                    Ok((levels, policies, locations, settings))
                })
            })
            .await
    }

    /// Stock levels, by variant then location, optionally of one location (`INVENTORY_READ`).
    pub async fn levels(
        &self,
        caller: &Caller,
        location_id: Option<Uuid>,
        page: PageRequest,
    ) -> AppResult<Page<level::Model>> {
        caller.require(Permission::InventoryRead)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let mut q = level::Entity::find().filter(level::Column::TenantId.eq(tenant.0));
                    if let Some(l) = location_id {
                        q = q.filter(level::Column::LocationId.eq(l));
                    }
                    let rows = page
                        .apply(q.order_by_asc(level::Column::Id), level::Column::Id)
                        .all(tx)
                        .await?;
                    Ok(page.page(rows, 0))
                })
            })
            .await
    }

    /// A level's movements, newest first (`INVENTORY_READ`).
    pub async fn movements(
        &self,
        caller: &Caller,
        variant_id: Uuid,
        location_id: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<movement::Model>> {
        caller.require(Permission::InventoryRead)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let mut q = movement::Entity::find()
                        .filter(movement::Column::TenantId.eq(tenant.0))
                        .filter(movement::Column::VariantId.eq(variant_id));
                    if let Some(l) = location_id {
                        q = q.filter(movement::Column::LocationId.eq(l));
                    }
                    Ok(q.order_by_desc(movement::Column::Id)
                        .limit(limit)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}

/// `vectis.inventory.low_stock` for a level whose available stock crossed the threshold; its
/// sequence is the level's version (the change before it took the one below).
pub(super) fn low_stock_event(
    tenant: TenantId,
    level: &level::Model,
    sku: &str,
    location: &str,
    threshold: i64,
    status: &str,
) -> DomainEvent {
    DomainEvent::new(
        tenant,
        "stock_level",
        level.id,
        level.version,
        "vectis.inventory.low_stock",
        json!({ "levelId": level.id, "variantId": level.variant_id, "sku": sku,
                "locationId": level.location_id, "location": location,
                "onHand": level.on_hand, "reserved": level.reserved,
                "available": level.available(), "threshold": threshold, "status": status }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_are_downwards_only() {
        assert_eq!(crossing(20, 10, 10), Some("low"));
        assert_eq!(crossing(11, 0, 10), Some("out"));
        assert_eq!(crossing(5, 0, 10), Some("out"));
        assert_eq!(crossing(5, 3, 10), None);
        assert_eq!(crossing(3, 30, 10), None);
        assert_eq!(crossing(0, -4, 10), None);
    }
}
