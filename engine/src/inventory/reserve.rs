//! Reservations: stock held for an order's lines at the locations the allocation strategy
//! chose, released on cancellation (or when a checkout reservation expires) and turned into
//! shipped stock by shipments.
//!
//! **No oversell.** The levels of every variant of the order are locked in (variant,
//! location) order with one statement before anything is read, so concurrent placements
//! competing for the last units queue on the same rows and see each other's reservations;
//! the engine checks the strategy's answer against the locked levels and each variant's
//! backorder policy before writing. The fixed lock order means two overlapping multi-line
//! orders wait for each other but never deadlock.
//!
//! A reservation runs the same statements whatever the number of lines: the order's open
//! allocations, the locked levels, the policies, the locations, the settings, one multi-row
//! level update, one update of replaced allocations, one multi-row insert.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::allocation::{
    AllocationContext, AllocationLine, Backorder, LocationStock, Shortage, backorder_room,
};

use super::entity::{allocation, level, location, policy};
use super::fulfil::AllocationWrite;
use super::service::{InventoryService, LevelWrite, crossing, low_stock_event, policy_of};
use crate::catalog::read as catalog;
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::error::AppResult;
use crate::events::{DomainEvent, UnitOfWork};
use crate::kernel::TenantId;

/// A line to reserve stock for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveLine {
    /// The order line.
    pub line_id: Uuid,
    /// Its variant.
    pub variant_id: Uuid,
    /// The variant's SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

#[derive(Serialize)]
struct NewAllocation {
    id: String,
    line: String,
    variant: String,
    location: String,
    quantity: i64,
}

/// Locked levels being changed in memory, written back at the end.
struct Levels {
    rows: Vec<level::Model>,
    index: HashMap<(Uuid, Uuid), usize>,
    before: Vec<i64>,
}

impl Levels {
    fn new(rows: Vec<level::Model>) -> Self {
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, l)| ((l.variant_id, l.location_id), i))
            .collect();
        let before = rows.iter().map(level::Model::available).collect();
        Levels {
            rows,
            index,
            before,
        }
    }

    fn get_mut(&mut self, variant: Uuid, location: Uuid) -> Option<&mut level::Model> {
        self.index
            .get(&(variant, location))
            .copied()
            .map(|i| &mut self.rows[i])
    }

    /// The changed levels to write, with `vectis.inventory.low_stock` for those that crossed
    /// the threshold (their version moves on by one for it).
    fn finish(
        mut self,
        tenant: TenantId,
        threshold: i64,
        skus: &HashMap<Uuid, String>,
        codes: &HashMap<Uuid, String>,
    ) -> (Vec<LevelWrite>, Vec<DomainEvent>) {
        let mut writes = Vec::new();
        let mut events = Vec::new();
        for (i, l) in self.rows.iter_mut().enumerate() {
            let after = l.available();
            if after == self.before[i] {
                continue;
            }
            if let Some(status) = crossing(self.before[i], after, threshold) {
                l.version += 1;
                events.push(low_stock_event(
                    tenant,
                    l,
                    skus.get(&l.variant_id).map_or("", String::as_str),
                    codes.get(&l.location_id).map_or("", String::as_str),
                    threshold,
                    status,
                ));
            }
            writes.push(LevelWrite {
                id: hex(l.id),
                variant: hex(l.variant_id),
                location: hex(l.location_id),
                on_hand: l.on_hand,
                reserved: l.reserved,
                version: l.version,
                as_of: None,
            });
        }
        (writes, events)
    }
}

impl InventoryService {
    async fn open_allocations<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        order_id: Uuid,
    ) -> AppResult<Vec<allocation::Model>> {
        Ok(allocation::Entity::find()
            .filter(allocation::Column::TenantId.eq(tenant.0))
            .filter(allocation::Column::OrderId.eq(order_id))
            .order_by_asc(allocation::Column::Id)
            .all(tx)
            .await?
            .into_iter()
            .filter(|a| a.open() > 0)
            .collect())
    }

    /// Marks `allocations` released in full (what is not shipped).
    async fn close_allocations(&self, uow: &UnitOfWork, ids: Vec<Uuid>) -> AppResult<()> {
        use sea_orm::sea_query::ExprTrait;
        if ids.is_empty() {
            return Ok(());
        }
        allocation::Entity::update_many()
            .col_expr(
                allocation::Column::Released,
                sea_orm::sea_query::Expr::col(allocation::Column::Quantity)
                    .sub(sea_orm::sea_query::Expr::col(allocation::Column::Shipped)),
            )
            .col_expr(
                allocation::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(allocation::Column::TenantId.eq(uow.tenant().0))
            .filter(id_in(
                self.core.db.backend(),
                (allocation::Entity, allocation::Column::Id),
                ids,
            ))
            .exec(uow.tx())
            .await?;
        Ok(())
    }

    /// Reserves stock for `lines` of order `order_id` (replacing what the order held, e.g. a
    /// checkout reservation), as the allocation strategy decides; checkout reservations pass
    /// `expires_at`. Lines of variants without any stock level are not stock-tracked and
    /// reserve nothing. `sequence` is the order's version at this change. Returns the lines
    /// that cannot be served, and then writes nothing: the caller rolls back.
    pub(crate) async fn reserve_in(
        &self,
        uow: &mut UnitOfWork,
        order_id: Uuid,
        sequence: i64,
        lines: &[ReserveLine],
        preferred_location: Option<Uuid>,
        expires_at: Option<DateTime<Utc>>,
    ) -> AppResult<Result<(), Vec<Shortage>>> {
        let tenant = uow.tenant();
        let held = Self::open_allocations(uow.tx(), tenant, order_id).await?;
        let mut variants: Vec<Uuid> = lines.iter().map(|l| l.variant_id).collect();
        variants.extend(held.iter().map(|a| a.variant_id));
        let variants: Vec<Uuid> = variants
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let locked = Self::lock_levels(uow.tx(), tenant, variants.clone(), None).await?;
        if locked.is_empty() {
            return Ok(Ok(()));
        }
        let backend = self.core.db.backend();
        let policies: HashMap<Uuid, Backorder> = policy::Entity::find()
            .filter(policy::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                backend,
                (policy::Entity, policy::Column::VariantId),
                variants,
            ))
            .all(uow.tx())
            .await?
            .into_iter()
            .map(|p| (p.variant_id, policy_of(Some(&p))))
            .collect();
        let locations = Self::locations_in(uow.tx(), tenant).await?;
        let threshold = Self::settings_in(uow.tx(), tenant)
            .await?
            .low_stock_threshold;
        let active: HashSet<Uuid> = locations
            .iter()
            .filter(|l| l.active)
            .map(|l| l.id)
            .collect();
        let codes: HashMap<Uuid, String> = locations.into_iter().map(|l| (l.id, l.code)).collect();
        let mut levels = Levels::new(locked);
        // What the order held goes back first: the new allocation replaces it.
        for a in &held {
            if let Some(l) = levels.get_mut(a.variant_id, a.location_id) {
                l.reserved -= a.open();
            }
        }
        let tracked: HashSet<Uuid> = levels.rows.iter().map(|l| l.variant_id).collect();
        let wanted: Vec<AllocationLine> = lines
            .iter()
            .filter(|l| tracked.contains(&l.variant_id))
            .map(|l| AllocationLine {
                line_id: l.line_id,
                variant_id: l.variant_id,
                sku: l.sku.clone(),
                quantity: l.quantity,
                backorder: policies.get(&l.variant_id).copied().unwrap_or_default(),
            })
            .collect();
        let stock: Vec<LocationStock> = levels
            .rows
            .iter()
            .filter(|l| active.contains(&l.location_id))
            .map(|l| LocationStock {
                variant_id: l.variant_id,
                location_id: l.location_id,
                available: l.available(),
            })
            .collect();
        let decided = self.allocation.allocate(&AllocationContext {
            lines: &wanted,
            stock: &stock,
            preferred_location,
        });
        let allocations = match decided {
            Ok(a) => a,
            Err(shortages) => return Ok(Err(shortages)),
        };
        let refused = check(&wanted, &stock, &active, &allocations);
        if !refused.is_empty() {
            return Ok(Err(refused));
        }
        let by_line: HashMap<Uuid, &AllocationLine> =
            wanted.iter().map(|l| (l.line_id, l)).collect();
        let mut rows = Vec::with_capacity(allocations.len());
        let mut reserved = Vec::with_capacity(allocations.len());
        for a in &allocations {
            let Some(line) = by_line.get(&a.line_id) else {
                continue;
            };
            if let Some(l) = levels.get_mut(line.variant_id, a.location_id) {
                l.reserved = l.reserved.saturating_add(a.quantity);
            }
            rows.push(NewAllocation {
                id: hex(Uuid::now_v7()),
                line: hex(a.line_id),
                variant: hex(line.variant_id),
                location: hex(a.location_id),
                quantity: a.quantity,
            });
            reserved.push(json!({ "lineId": a.line_id, "sku": line.sku,
                "location": codes.get(&a.location_id), "quantity": a.quantity }));
        }
        let skus: HashMap<Uuid, String> = lines
            .iter()
            .map(|l| (l.variant_id, l.sku.clone()))
            .collect();
        let (writes, events) = levels.finish(tenant, threshold, &skus, &codes);
        self.write_levels(uow, &writes, false).await?;
        self.close_allocations(uow, held.iter().map(|a| a.id).collect())
            .await?;
        if !rows.is_empty() {
            let mut insert = JsonRows::new(backend);
            let source = insert.from(&rows)?;
            let (t, o, e, now) = (
                insert.param(tenant.0),
                insert.param(order_id),
                insert.param(expires_at),
                insert.param(Utc::now()),
            );
            let sql = format!(
                "INSERT INTO stock_allocations (id, tenant_id, order_id, line_id, variant_id, \
                 location_id, quantity, shipped, released, expires_at, created_at, updated_at) \
                 SELECT {}, {t}, {o}, {}, {}, {}, {}, 0, 0, {e}, {now}, {now} FROM {source}",
                insert.uuid("id"),
                insert.uuid("line"),
                insert.uuid("variant"),
                insert.uuid("location"),
                insert.int("quantity"),
            );
            insert.execute(uow.tx(), sql).await?;
        }
        if !rows.is_empty() || !held.is_empty() {
            uow.record(DomainEvent::new(
                tenant,
                "stock_reservation",
                order_id,
                sequence,
                "vectis.inventory.reserved",
                json!({ "orderId": order_id, "expiresAt": expires_at,
                        "replaced": !held.is_empty(), "lines": reserved }),
            ));
        }
        for e in events {
            uow.record(e);
        }
        Ok(Ok(()))
    }

    /// Releases what order `order_id` still holds (cancelled, back to its cart, or an expired
    /// checkout reservation), or with `only` just these units per line (lines cancelled before
    /// they ship); `sequence` is the order's version at this change. Returns the units
    /// released.
    pub(crate) async fn release_in(
        &self,
        uow: &mut UnitOfWork,
        order_id: Uuid,
        sequence: i64,
        reason: &str,
        only: Option<&HashMap<Uuid, i64>>,
    ) -> AppResult<i64> {
        let tenant = uow.tenant();
        let held = Self::open_allocations(uow.tx(), tenant, order_id).await?;
        let takes: Vec<(&allocation::Model, i64)> = match only {
            None => held.iter().map(|a| (a, a.open())).collect(),
            Some(units) => {
                let mut left = units.clone();
                held.iter()
                    .filter_map(|a| {
                        let want = left.get_mut(&a.line_id)?;
                        let take = a.open().min(*want);
                        *want -= take;
                        (take > 0).then_some((a, take))
                    })
                    .collect()
            }
        };
        if takes.is_empty() {
            return Ok(0);
        }
        let variants: Vec<Uuid> = takes
            .iter()
            .map(|(a, _)| a.variant_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let locked = Self::lock_levels(uow.tx(), tenant, variants.clone(), None).await?;
        let skus: HashMap<Uuid, String> = catalog::variants_by_id(uow.tx(), tenant, variants, true)
            .await?
            .into_iter()
            .map(|v| (v.id, v.sku))
            .collect();
        let codes: HashMap<Uuid, String> = Self::locations_in(uow.tx(), tenant)
            .await?
            .into_iter()
            .map(|l: location::Model| (l.id, l.code))
            .collect();
        let mut levels = Levels::new(locked);
        let mut released = Vec::with_capacity(takes.len());
        let mut units = 0_i64;
        for (a, take) in &takes {
            if let Some(l) = levels.get_mut(a.variant_id, a.location_id) {
                l.reserved = (l.reserved - take).max(0);
            }
            units = units.saturating_add(*take);
            released.push(json!({ "lineId": a.line_id, "sku": skus.get(&a.variant_id),
                "location": codes.get(&a.location_id), "quantity": take }));
        }
        let (writes, _) = levels.finish(tenant, i64::MIN, &skus, &codes);
        self.write_levels(uow, &writes, false).await?;
        if only.is_none() {
            self.close_allocations(uow, takes.iter().map(|(a, _)| a.id).collect())
                .await?;
        } else {
            let rows: Vec<AllocationWrite> = takes
                .iter()
                .map(|(a, take)| AllocationWrite::of(a, a.shipped, a.released + take))
                .collect();
            self.write_allocations(uow, &rows).await?;
        }
        uow.record(DomainEvent::new(
            tenant,
            "stock_reservation",
            order_id,
            sequence,
            "vectis.inventory.released",
            json!({ "orderId": order_id, "reason": reason, "lines": released }),
        ));
        Ok(units)
    }

    /// Orders (by tenant) holding checkout reservations that expired before `now`, oldest
    /// first, at most `limit`.
    pub(crate) async fn expired_reservations(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> AppResult<Vec<(TenantId, Uuid)>> {
        use sea_orm::QuerySelect;
        use sea_orm::sea_query::ExprTrait;
        let tx = self.core.db.read(crate::db::Scope::System).await?;
        let rows: Vec<(Uuid, Uuid)> = allocation::Entity::find()
            .select_only()
            .column(allocation::Column::TenantId)
            .column(allocation::Column::OrderId)
            .filter(allocation::Column::ExpiresAt.lt(now))
            .filter(
                sea_orm::sea_query::Expr::col(allocation::Column::Quantity)
                    .gt(sea_orm::sea_query::Expr::col(allocation::Column::Shipped)
                        .add(sea_orm::sea_query::Expr::col(allocation::Column::Released))),
            )
            .distinct()
            .limit(limit)
            .into_tuple()
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|(t, o)| (TenantId(t), o)).collect())
    }

    /// The allocations of `orders`, for reads.
    pub async fn allocations_of(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<allocation::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(allocation::Entity::find()
                        .filter(allocation::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (allocation::Entity, allocation::Column::OrderId),
                            orders,
                        ))
                        .order_by_asc(allocation::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}

/// The engine's check of a strategy's allocations against the locked levels: every line
/// allocated in full, at known active locations, and no location giving more than its
/// available stock plus what the variant's backorder policy allows. Lines failing it are
/// shortages.
fn check(
    lines: &[AllocationLine],
    stock: &[LocationStock],
    active: &HashSet<Uuid>,
    allocations: &[vectis_strategies::allocation::Allocation],
) -> Vec<Shortage> {
    let mut per_line: HashMap<Uuid, i64> = HashMap::new();
    let mut per_level: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    let by_line: HashMap<Uuid, &AllocationLine> = lines.iter().map(|l| (l.line_id, l)).collect();
    let mut bad: HashSet<Uuid> = HashSet::new();
    for a in allocations {
        let Some(line) = by_line.get(&a.line_id) else {
            continue;
        };
        if a.quantity <= 0 || !active.contains(&a.location_id) {
            bad.insert(a.line_id);
            continue;
        }
        *per_line.entry(a.line_id).or_default() += a.quantity;
        *per_level
            .entry((line.variant_id, a.location_id))
            .or_default() += a.quantity;
    }
    let available: HashMap<(Uuid, Uuid), i64> = stock
        .iter()
        .map(|s| ((s.variant_id, s.location_id), s.available))
        .collect();
    let mut net: HashMap<Uuid, i64> = HashMap::new();
    for s in stock {
        *net.entry(s.variant_id).or_default() += s.available;
    }
    // Units each variant takes beyond what is available, over all its locations.
    let mut beyond: HashMap<Uuid, i64> = HashMap::new();
    for ((variant, location), taken) in &per_level {
        let Some(have) = available.get(&(*variant, *location)) else {
            // A level the engine did not lock.
            for l in lines.iter().filter(|l| l.variant_id == *variant) {
                bad.insert(l.line_id);
            }
            continue;
        };
        *beyond.entry(*variant).or_default() += (taken - have.max(&0)).max(0);
    }
    for line in lines {
        if per_line.get(&line.line_id).copied().unwrap_or(0) != line.quantity {
            bad.insert(line.line_id);
        }
        let over = beyond.get(&line.variant_id).copied().unwrap_or(0);
        let room = backorder_room(
            line.backorder,
            net.get(&line.variant_id).copied().unwrap_or(0),
        );
        if over > room {
            bad.insert(line.line_id);
        }
    }
    lines
        .iter()
        .filter(|l| bad.contains(&l.line_id))
        .map(|l| {
            let have: i64 = stock
                .iter()
                .filter(|s| s.variant_id == l.variant_id)
                .map(|s| s.available.max(0))
                .sum();
            Shortage {
                line_id: l.line_id,
                sku: l.sku.clone(),
                requested: l.quantity,
                available: have.min(l.quantity),
            }
        })
        .collect()
}
