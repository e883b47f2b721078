//! Shipments: some lines and quantities of an order leave one stock location. Shipping turns
//! reserved stock into shipped stock (on hand and reserved drop together) at that location;
//! shipping more than was ordered, or more than is reserved there, is refused per line.
//!
//! A shipment runs the same statements whatever its size: the location, what the order has
//! shipped and holds (one query each), the levels locked in (variant, location) order, one
//! multi-row write each for levels, movements, allocations and shipment lines, and the
//! shipment row.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::entity::{allocation, shipment, shipment_line};
use super::reserve::ReserveLine;
use super::service::{InventoryService, LevelWrite, MovementRow, kind};
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::error::{AppError, AppResult};
use crate::events::{DomainEvent, UnitOfWork};
use crate::kernel::TenantId;

/// Units of an order line to ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipLine {
    /// The order line.
    pub line_id: Uuid,
    /// Units (positive).
    pub quantity: i64,
}

/// Why a line cannot ship as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRefusal {
    /// `UNKNOWN_LINE`, `EXCEEDS_ORDERED`, `EXCEEDS_RESERVED` or `VALIDATION`.
    pub code: &'static str,
    /// The line.
    pub line_id: Uuid,
    /// Its SKU, when known.
    pub sku: String,
    /// Units asked for.
    pub requested: i64,
    /// Units that could ship (ordered and not shipped, or reserved at the location).
    pub possible: i64,
}

impl LineRefusal {
    /// `UNKNOWN_LINE`: not a line of the order (or of the return).
    pub fn unknown(line_id: Uuid, requested: i64) -> Self {
        LineRefusal {
            code: "UNKNOWN_LINE",
            line_id,
            sku: String::new(),
            requested,
            possible: 0,
        }
    }
}

/// A recorded shipment.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// The shipment.
    pub shipment: shipment::Model,
    /// Whether every unit of the order has now shipped.
    pub complete: bool,
}

#[derive(Serialize)]
struct ShipmentLineRow {
    id: String,
    line: String,
    quantity: i64,
}

/// An allocation's new shipped and released units (written with [`InventoryService::write_allocations`]).
#[derive(Serialize)]
pub(super) struct AllocationWrite {
    id: String,
    order: String,
    line: String,
    variant: String,
    location: String,
    quantity: i64,
    shipped: i64,
    released: i64,
}

/// Shipment states.
pub mod shipment_state {
    /// On its way.
    pub const SHIPPED: &str = "Shipped";
    /// Arrived.
    pub const DELIVERED: &str = "Delivered";
}

impl AllocationWrite {
    pub(super) fn of(a: &allocation::Model, shipped: i64, released: i64) -> Self {
        AllocationWrite {
            id: hex(a.id),
            order: hex(a.order_id),
            line: hex(a.line_id),
            variant: hex(a.variant_id),
            location: hex(a.location_id),
            quantity: a.quantity,
            shipped,
            released,
        }
    }
}

impl InventoryService {
    /// Stores the shipped and released units of existing allocations, in one statement.
    pub(super) async fn write_allocations(
        &self,
        uow: &UnitOfWork,
        rows: &[AllocationWrite],
    ) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tenant = uow.tenant();
        let mut upsert = JsonRows::new(self.core.db.backend());
        let source = upsert.from(rows)?;
        let (t, ts) = (upsert.param(tenant.0), upsert.param(Utc::now()));
        let sql = format!(
            "INSERT INTO stock_allocations (id, tenant_id, order_id, line_id, variant_id, \
             location_id, quantity, shipped, released, expires_at, created_at, updated_at) \
             SELECT {}, {t}, {}, {}, {}, {}, {}, {}, {}, NULL, {ts}, {ts} FROM {source} \
             WHERE true ON CONFLICT (id) DO UPDATE SET shipped = excluded.shipped, \
             released = excluded.released, updated_at = excluded.updated_at",
            upsert.uuid("id"),
            upsert.uuid("order"),
            upsert.uuid("line"),
            upsert.uuid("variant"),
            upsert.uuid("location"),
            upsert.int("quantity"),
            upsert.int("shipped"),
            upsert.int("released"),
        );
        upsert.execute(uow.tx(), sql).await
    }

    /// Units shipped so far per order line.
    pub(crate) async fn shipped_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        order_id: Uuid,
    ) -> AppResult<HashMap<Uuid, i64>> {
        let mut out = HashMap::new();
        for l in shipment_line::Entity::find()
            .filter(shipment_line::Column::TenantId.eq(tenant.0))
            .filter(shipment_line::Column::OrderId.eq(order_id))
            .all(tx)
            .await?
        {
            *out.entry(l.line_id).or_insert(0) += l.quantity;
        }
        Ok(out)
    }

    /// Ships `lines` of order `order_id` (whose lines are `order_lines`) from the location
    /// with code `location`, inside the caller's unit of work (which holds the order's lock).
    /// Refusals name every line that cannot ship; then nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn ship_in(
        &self,
        uow: &mut UnitOfWork,
        order_id: Uuid,
        order_lines: &[ReserveLine],
        location: &str,
        lines: &[ShipLine],
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> AppResult<Result<Shipped, Vec<LineRefusal>>> {
        let tenant = uow.tenant();
        let Some(at) = Self::locations_in(uow.tx(), tenant)
            .await?
            .into_iter()
            .find(|l| l.code == location.trim())
        else {
            return Err(AppError::not_found("StockLocation", location.trim()));
        };
        let shipped = Self::shipped_in(uow.tx(), tenant, order_id).await?;
        let held: Vec<allocation::Model> = allocation::Entity::find()
            .filter(allocation::Column::TenantId.eq(tenant.0))
            .filter(allocation::Column::OrderId.eq(order_id))
            .order_by_asc(allocation::Column::Id)
            .all(uow.tx())
            .await?;
        let by_line: HashMap<Uuid, &ReserveLine> =
            order_lines.iter().map(|l| (l.line_id, l)).collect();
        let tracked: HashSet<Uuid> = held.iter().map(|a| a.line_id).collect();
        let mut refusals = Vec::new();
        let mut seen = HashSet::new();
        for s in lines {
            let Some(line) = by_line.get(&s.line_id) else {
                refusals.push(LineRefusal::unknown(s.line_id, s.quantity));
                continue;
            };
            let left = line.quantity - shipped.get(&s.line_id).copied().unwrap_or(0);
            let here: i64 = held
                .iter()
                .filter(|a| a.line_id == s.line_id && a.location_id == at.id)
                .map(allocation::Model::open)
                .sum();
            let refusal = |code, possible| LineRefusal {
                code,
                line_id: s.line_id,
                sku: line.sku.clone(),
                requested: s.quantity,
                possible,
            };
            if s.quantity <= 0 || !seen.insert(s.line_id) {
                refusals.push(refusal("VALIDATION", left.max(0)));
            } else if s.quantity > left {
                refusals.push(refusal("EXCEEDS_ORDERED", left.max(0)));
            } else if tracked.contains(&s.line_id) && s.quantity > here {
                refusals.push(refusal("EXCEEDS_RESERVED", here));
            }
        }
        if lines.is_empty() {
            return Err(AppError::validation("lines", "ship at least one line"));
        }
        if !refusals.is_empty() {
            return Ok(Err(refusals));
        }
        // Stock: the levels of the tracked lines at this location, locked in order.
        let quantities: HashMap<Uuid, i64> =
            lines.iter().map(|s| (s.line_id, s.quantity)).collect();
        let variants: Vec<Uuid> = lines
            .iter()
            .filter(|s| tracked.contains(&s.line_id))
            .map(|s| by_line[&s.line_id].variant_id)
            .collect();
        let backend = self.core.db.backend();
        let locked = Self::lock_levels(uow.tx(), tenant, variants, Some(vec![at.id])).await?;
        let mut per_variant: HashMap<Uuid, i64> = HashMap::new();
        for s in lines.iter().filter(|s| tracked.contains(&s.line_id)) {
            *per_variant
                .entry(by_line[&s.line_id].variant_id)
                .or_insert(0) += s.quantity;
        }
        let skus: HashMap<Uuid, &str> = order_lines
            .iter()
            .map(|l| (l.variant_id, l.sku.as_str()))
            .collect();
        let mut writes = Vec::new();
        let mut moves = Vec::new();
        for l in &locked {
            let Some(q) = per_variant.get(&l.variant_id).copied() else {
                continue;
            };
            let on_hand = (l.on_hand - q).max(0);
            let reserved = (l.reserved - q).max(0);
            let version = l.version + 1;
            writes.push(LevelWrite {
                id: hex(l.id),
                variant: hex(l.variant_id),
                location: hex(l.location_id),
                on_hand,
                reserved,
                version,
                as_of: None,
            });
            moves.push(MovementRow {
                id: hex(Uuid::now_v7()),
                variant: hex(l.variant_id),
                location: hex(l.location_id),
                quantity: -q,
                after: on_hand,
            });
            uow.record(DomainEvent::new(
                tenant,
                "stock_level",
                l.id,
                version,
                "vectis.inventory.adjusted",
                json!({ "levelId": l.id, "variantId": l.variant_id,
                    "sku": skus.get(&l.variant_id), "locationId": at.id, "location": at.code,
                    "onHand": on_hand, "reserved": reserved, "available": on_hand - reserved,
                    "change": -q, "kind": kind::SHIPMENT, "reason": null, "orderId": order_id }),
            ));
        }
        self.write_levels(uow, &writes, false).await?;
        // Allocations at this location take the shipped units, oldest first.
        let mut left: HashMap<Uuid, i64> = quantities.clone();
        let mut allocation_writes = Vec::new();
        for a in held
            .iter()
            .filter(|a| a.location_id == at.id && a.open() > 0)
        {
            let Some(want) = left.get_mut(&a.line_id) else {
                continue;
            };
            let take = a.open().min(*want);
            if take == 0 {
                continue;
            }
            *want -= take;
            allocation_writes.push(AllocationWrite::of(a, a.shipped + take, a.released));
        }
        self.write_allocations(uow, &allocation_writes).await?;
        let now = Utc::now();
        self.insert_movements(uow, &moves, kind::SHIPMENT, None, Some(order_id))
            .await?;
        let created = shipment::Entity::insert(shipment::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            order_id: Set(order_id),
            location_id: Set(at.id),
            carrier: Set(carrier),
            tracking_number: Set(tracking_number),
            state: Set(shipment_state::SHIPPED.into()),
            delivered_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await?;
        let rows: Vec<ShipmentLineRow> = lines
            .iter()
            .map(|s| ShipmentLineRow {
                id: hex(Uuid::now_v7()),
                line: hex(s.line_id),
                quantity: s.quantity,
            })
            .collect();
        let mut insert = JsonRows::new(backend);
        let source = insert.from(&rows)?;
        let (t, sh, o, ts) = (
            insert.param(tenant.0),
            insert.param(created.id),
            insert.param(order_id),
            insert.param(now),
        );
        let sql = format!(
            "INSERT INTO shipment_lines (id, tenant_id, shipment_id, order_id, line_id, quantity, \
             created_at, updated_at) SELECT {}, {t}, {sh}, {o}, {}, {}, {ts}, {ts} FROM {source}",
            insert.uuid("id"),
            insert.uuid("line"),
            insert.int("quantity"),
        );
        insert.execute(uow.tx(), sql).await?;
        let complete = order_lines.iter().all(|l| {
            shipped.get(&l.line_id).copied().unwrap_or(0)
                + quantities.get(&l.line_id).copied().unwrap_or(0)
                >= l.quantity
        });
        Ok(Ok(Shipped {
            shipment: created,
            complete,
        }))
    }

    /// Marks a shipment delivered, inside the caller's unit of work (holding its order's
    /// lock); returns it and whether every shipment of the order is delivered now. A
    /// shipment is delivered once: repeating it changes nothing.
    pub(crate) async fn deliver_in(
        &self,
        uow: &UnitOfWork,
        shipment: &shipment::Model,
    ) -> AppResult<(shipment::Model, bool)> {
        let tenant = uow.tenant();
        let now = Utc::now();
        let updated = if shipment.state == shipment_state::DELIVERED {
            shipment.clone()
        } else {
            let mut active: shipment::ActiveModel = shipment.clone().into();
            active.state = Set(shipment_state::DELIVERED.into());
            active.delivered_at = Set(Some(now));
            active.updated_at = Set(now);
            shipment::Entity::update(active).exec(uow.tx()).await?
        };
        let open = shipment::Entity::find()
            .filter(shipment::Column::TenantId.eq(tenant.0))
            .filter(shipment::Column::OrderId.eq(shipment.order_id))
            .filter(shipment::Column::State.ne(shipment_state::DELIVERED))
            .all(uow.tx())
            .await?;
        Ok((updated, open.is_empty()))
    }

    /// A shipment by id.
    pub async fn shipment(&self, tenant: TenantId, id: Uuid) -> AppResult<Option<shipment::Model>> {
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(shipment::Entity::find_by_id(id)
                        .filter(shipment::Column::TenantId.eq(tenant.0))
                        .one(tx)
                        .await?)
                })
            })
            .await
    }

    /// Shipments of `orders` with their lines, oldest first.
    pub async fn shipments_of(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<(shipment::Model, Vec<shipment_line::Model>)>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let shipments = shipment::Entity::find()
                        .filter(shipment::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (shipment::Entity, shipment::Column::OrderId),
                            orders.clone(),
                        ))
                        .order_by_asc(shipment::Column::Id)
                        .all(tx)
                        .await?;
                    let lines = shipment_line::Entity::find()
                        .filter(shipment_line::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (shipment_line::Entity, shipment_line::Column::OrderId),
                            orders,
                        ))
                        .order_by_asc(shipment_line::Column::Id)
                        .all(tx)
                        .await?;
                    let mut by_shipment: HashMap<Uuid, Vec<shipment_line::Model>> = HashMap::new();
                    for l in lines {
                        by_shipment.entry(l.shipment_id).or_default().push(l);
                    }
                    Ok(shipments
                        .into_iter()
                        .map(|s| {
                            let lines = by_shipment.remove(&s.id).unwrap_or_default();
                            (s, lines)
                        })
                        .collect())
                })
            })
            .await
    }
}
