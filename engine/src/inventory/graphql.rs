//! Inventory GraphQL: stock locations, levels and movements for staff, availability on every
//! variant (batch-loaded), bulk stock changes with per-row errors, backorder policies and the
//! tenant's inventory settings.

use std::collections::HashMap;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vectis_strategies::allocation::Backorder;

use super::entity::{level, location, movement};
use super::service::{
    Availability, Change, InventoryService, MAX_STOCK_ROWS, Settings, Status, StockRow,
    availability, kind, policy_of,
};
use crate::auth::Permission;
use crate::catalog::graphql::Variant;
use crate::catalog::loader::{VariantById, catalog_loader};
use crate::error::{AppError, ItemError};
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::Int64;
use crate::kernel::TenantId;

/// A warehouse or other place stock is kept.
pub struct StockLocationObject(pub location::Model);

#[Object(name = "StockLocation")]
impl StockLocationObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Code, unique in the tenant (used by imports and the inbound topic).
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Country (ISO 3166-1 alpha-2).
    async fn country_code(&self) -> Option<&str> {
        self.0.country_code.as_deref()
    }
    /// Whether it serves new orders (an inactive location keeps its stock).
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// The stock of one variant at one location.
pub struct StockLevelObject(pub level::Model);

#[Object(name = "StockLevel")]
impl StockLevelObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The variant.
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<Variant>> {
        Ok(catalog_loader(ctx)?
            .load_one(VariantById(self.0.variant_id))
            .await?
            .map(Variant))
    }
    /// The location's id.
    async fn location_id(&self) -> ID {
        id(self.0.location_id)
    }
    /// Units on hand.
    async fn on_hand(&self) -> Int64 {
        Int64(self.0.on_hand)
    }
    /// Units reserved for orders, not shipped yet.
    async fn reserved(&self) -> Int64 {
        Int64(self.0.reserved)
    }
    /// On hand minus reserved (negative when backorders were taken).
    async fn available(&self) -> Int64 {
        Int64(self.0.available())
    }
    /// The newest `asOf` applied from an outside system, if any.
    async fn as_of(&self) -> Option<DateTime<Utc>> {
        self.0.as_of
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A change of the quantity on hand.
pub struct StockMovementObject(pub movement::Model);

#[Object(name = "StockMovement")]
impl StockMovementObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// `adjustment`, `import`, `inbound`, `shipment` or `return`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The location's id.
    async fn location_id(&self) -> ID {
        id(self.0.location_id)
    }
    /// Units added (negative: removed).
    async fn quantity(&self) -> Int64 {
        Int64(self.0.quantity)
    }
    /// On hand after it.
    async fn on_hand_after(&self) -> Int64 {
        Int64(self.0.on_hand_after)
    }
    /// Why.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The order it was for (shipments, returns).
    async fn order_id(&self) -> Option<ID> {
        self.0.order_id.map(id)
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Whether a variant can be bought beyond its stock.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum BackorderMode {
    /// Never (the default).
    Deny,
    /// Without limit.
    Allow,
    /// Up to `limit` units beyond the available stock.
    AllowUpTo,
}

/// A variant's backorder policy.
#[derive(SimpleObject)]
pub struct BackorderPolicy {
    /// The mode.
    pub mode: BackorderMode,
    /// For `ALLOW_UP_TO`.
    pub limit: Option<Int64>,
}

impl From<Backorder> for BackorderPolicy {
    fn from(b: Backorder) -> Self {
        match b {
            Backorder::Deny => BackorderPolicy {
                mode: BackorderMode::Deny,
                limit: None,
            },
            Backorder::Allow => BackorderPolicy {
                mode: BackorderMode::Allow,
                limit: None,
            },
            Backorder::UpTo(n) => BackorderPolicy {
                mode: BackorderMode::AllowUpTo,
                limit: Some(Int64(n)),
            },
        }
    }
}

/// In stock, low, out, or not tracked.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum StockStatus {
    /// More than the tenant's low-stock threshold is available.
    InStock,
    /// At or below the threshold.
    LowStock,
    /// Nothing available (see `backorder`).
    OutOfStock,
    /// No stock is recorded for the variant; it always sells.
    NotTracked,
}

/// What a buyer sees of a variant's stock.
#[derive(SimpleObject)]
pub struct StockAvailability {
    /// The status over all active locations.
    pub status: StockStatus,
    /// Units available: for staff with `INVENTORY_READ`, or everyone when the tenant shows
    /// quantities; null otherwise.
    pub quantity: Option<Int64>,
    /// Whether it can be ordered beyond its stock.
    pub backorder: BackorderPolicy,
}

/// Stock of one variant, as the availability loader returns it.
#[derive(Debug, Clone)]
pub struct VariantStock {
    /// Availability over the active locations.
    pub availability: Availability,
    /// Every level (all locations).
    pub levels: Vec<level::Model>,
    /// Whether buyers see quantities.
    pub show_quantities: bool,
}

/// Stock of a variant, by variant id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockOfVariant(pub Uuid);

/// Loads stock for one tenant in batches (one transaction, four queries per batch).
pub struct InventoryLoader {
    service: InventoryService,
    tenant: TenantId,
}

impl Loader<StockOfVariant> for InventoryLoader {
    type Value = VariantStock;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[StockOfVariant],
    ) -> Result<HashMap<StockOfVariant, VariantStock>, async_graphql::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let (levels, policies, locations, settings): (_, _, _, Settings) =
            self.service.stock_of(self.tenant, ids).await?;
        let active: std::collections::HashSet<Uuid> = locations
            .iter()
            .filter(|l| l.active)
            .map(|l| l.id)
            .collect();
        let policies: HashMap<Uuid, Backorder> = policies
            .iter()
            .map(|p| (p.variant_id, policy_of(Some(p))))
            .collect();
        let mut by_variant: HashMap<Uuid, Vec<level::Model>> = HashMap::new();
        for l in levels {
            by_variant.entry(l.variant_id).or_default().push(l);
        }
        Ok(keys
            .iter()
            .map(|k| {
                let levels = by_variant.remove(&k.0).unwrap_or_default();
                let at_active: Vec<level::Model> = levels
                    .iter()
                    .filter(|l| active.contains(&l.location_id))
                    .cloned()
                    .collect();
                let a = availability(
                    &at_active,
                    !levels.is_empty(),
                    policies.get(&k.0).copied().unwrap_or_default(),
                    settings.low_stock_threshold,
                );
                (
                    *k,
                    VariantStock {
                        availability: a,
                        levels,
                        show_quantities: settings.show_quantities,
                    },
                )
            })
            .collect())
    }
}

/// The request's inventory loader.
pub type InventoryDataLoader = DataLoader<InventoryLoader, HashMapCache>;

/// A loader for one request of `tenant`.
pub fn request_loader(service: InventoryService, tenant: TenantId) -> InventoryDataLoader {
    DataLoader::with_cache(
        InventoryLoader { service, tenant },
        tokio::spawn,
        HashMapCache::default(),
    )
    .delay(std::time::Duration::from_millis(1))
    .max_batch_size(crate::catalog::loader::MAX_BATCH)
}

async fn stock(ctx: &Context<'_>, variant: Uuid) -> Result<VariantStock> {
    caller(ctx)?;
    ctx.data::<InventoryDataLoader>()?
        .load_one(StockOfVariant(variant))
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no stock loaded")).into())
}

/// `ProductVariant.availability`.
pub async fn variant_availability(ctx: &Context<'_>, variant: Uuid) -> Result<StockAvailability> {
    let s = stock(ctx, variant).await?;
    let staff = caller(ctx)?.has(Permission::InventoryRead);
    let a = s.availability;
    let tracked = a.status != Status::NotTracked;
    Ok(StockAvailability {
        status: match a.status {
            Status::InStock => StockStatus::InStock,
            Status::LowStock => StockStatus::LowStock,
            Status::OutOfStock => StockStatus::OutOfStock,
            Status::NotTracked => StockStatus::NotTracked,
        },
        quantity: (tracked && (staff || s.show_quantities)).then_some(Int64(a.available)),
        backorder: a.backorder.into(),
    })
}

/// `ProductVariant.stockLevels` (`INVENTORY_READ`).
pub async fn variant_levels(ctx: &Context<'_>, variant: Uuid) -> Result<Vec<StockLevelObject>> {
    require(ctx, Permission::InventoryRead)?;
    Ok(stock(ctx, variant)
        .await?
        .levels
        .into_iter()
        .map(StockLevelObject)
        .collect())
}

/// The tenant's inventory settings.
#[derive(SimpleObject)]
pub struct InventorySettings {
    /// Variants at or below this many available units are low on stock.
    pub low_stock_threshold: Int64,
    /// Whether buyers see exact quantities.
    pub show_quantities: bool,
    /// Minutes a checkout reservation (`reserveCartStock`) holds stock; null: stock is
    /// reserved when the order is placed.
    pub checkout_reservation_minutes: Option<i32>,
}

impl From<Settings> for InventorySettings {
    fn from(s: Settings) -> Self {
        InventorySettings {
            low_stock_threshold: Int64(s.low_stock_threshold),
            show_quantities: s.show_quantities,
            checkout_reservation_minutes: s.checkout_reservation_minutes,
        }
    }
}

/// Inventory queries.
#[derive(Default)]
pub struct InventoryQuery;

#[Object]
impl InventoryQuery {
    /// Stock locations by code (`INVENTORY_READ`).
    async fn stock_locations(&self, ctx: &Context<'_>) -> Result<Vec<StockLocationObject>> {
        let caller = require(ctx, Permission::InventoryRead)?;
        Ok(services(ctx)
            .inventory
            .locations(caller.tenant)
            .await?
            .into_iter()
            .map(StockLocationObject)
            .collect())
    }

    /// Stock levels, optionally of one location (`INVENTORY_READ`).
    async fn stock_levels(
        &self,
        ctx: &Context<'_>,
        location_id: Option<ID>,
        #[graphql(default = 100, desc = "Page size, 0-1000.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, StockLevelObject, EmptyFields>> {
        let caller = caller(ctx)?;
        let request = page_request(first, after.as_deref(), 1000)?;
        let location = location_id
            .as_ref()
            .map(|l| parse_id("locationId", l))
            .transpose()?;
        let page = services(ctx)
            .inventory
            .levels(caller, location, request)
            .await?;
        Ok(connection(
            &request,
            page,
            |l| l.id,
            StockLevelObject,
            EmptyFields,
        ))
    }

    /// A variant's stock movements, newest first (`INVENTORY_READ`).
    async fn stock_movements(
        &self,
        ctx: &Context<'_>,
        variant_id: ID,
        location_id: Option<ID>,
        #[graphql(default = 50, desc = "How many, 1-500.")] first: i32,
    ) -> Result<Vec<StockMovementObject>> {
        let caller = caller(ctx)?;
        let variant = parse_id("variantId", &variant_id)?;
        let location = location_id
            .as_ref()
            .map(|l| parse_id("locationId", l))
            .transpose()?;
        if !(1..=500).contains(&first) {
            return Err(AppError::validation("first", "must be 1-500").into());
        }
        Ok(services(ctx)
            .inventory
            .movements(caller, variant, location, first as u64)
            .await?
            .into_iter()
            .map(StockMovementObject)
            .collect())
    }

    /// The tenant's inventory settings (`INVENTORY_READ`).
    async fn inventory_settings(&self, ctx: &Context<'_>) -> Result<InventorySettings> {
        let caller = require(ctx, Permission::InventoryRead)?;
        Ok(services(ctx)
            .inventory
            .settings(caller.tenant)
            .await?
            .into())
    }
}

/// One row of `setStockLevels`.
#[derive(InputObject)]
pub struct StockLevelInput {
    /// The variant's SKU.
    pub sku: String,
    /// The stock location's code.
    pub location: String,
    /// Units on hand (0 or more).
    pub on_hand: Int64,
}

/// What a stock change did.
#[derive(SimpleObject)]
pub struct StockChangePayload {
    /// Whether it was applied (all rows, or none).
    pub applied: bool,
    /// Rows that were refused, by index; nothing was applied when there is any.
    pub errors: Vec<ItemError>,
    /// The levels after the change.
    pub levels: Vec<StockLevelObject>,
}

impl From<std::result::Result<Vec<level::Model>, Vec<ItemError>>> for StockChangePayload {
    fn from(r: std::result::Result<Vec<level::Model>, Vec<ItemError>>) -> Self {
        match r {
            Ok(levels) => StockChangePayload {
                applied: true,
                errors: Vec::new(),
                levels: levels.into_iter().map(StockLevelObject).collect(),
            },
            Err(errors) => StockChangePayload {
                applied: false,
                errors,
                levels: Vec::new(),
            },
        }
    }
}

/// Input of `updateInventorySettings`; absent fields keep their value.
#[derive(InputObject)]
pub struct InventorySettingsInput {
    /// Low-stock threshold (0 or more).
    pub low_stock_threshold: Option<Int64>,
    /// Whether buyers see exact quantities.
    pub show_quantities: Option<bool>,
    /// Minutes a checkout reservation holds stock (1-10080); null turns checkout reservations
    /// off.
    pub checkout_reservation_minutes: async_graphql::MaybeUndefined<i32>,
}

/// Inventory mutations.
#[derive(Default)]
pub struct InventoryMutation;

#[Object]
impl InventoryMutation {
    /// Creates a stock location (`INVENTORY_WRITE`).
    async fn create_stock_location(
        &self,
        ctx: &Context<'_>,
        code: String,
        name: String,
        country_code: Option<String>,
    ) -> Result<StockLocationObject> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        Ok(StockLocationObject(
            services(ctx)
                .inventory
                .create_location(caller, &code, &name, country_code.as_deref())
                .await?,
        ))
    }

    /// Renames, deactivates or reactivates a stock location (`INVENTORY_WRITE`).
    async fn update_stock_location(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
        active: Option<bool>,
    ) -> Result<StockLocationObject> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        let id = parse_id("id", &id)?;
        Ok(StockLocationObject(
            services(ctx)
                .inventory
                .update_location(caller, id, name.as_deref(), active)
                .await?,
        ))
    }

    /// Sets units on hand per SKU and location (`INVENTORY_WRITE`), up to 10,000 rows: all
    /// or nothing, with per-row errors (unknown SKU or location, negative, repeated).
    async fn set_stock_levels(
        &self,
        ctx: &Context<'_>,
        rows: Vec<StockLevelInput>,
        reason: Option<String>,
    ) -> Result<StockChangePayload> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        if rows.len() > MAX_STOCK_ROWS {
            return Err(AppError::validation(
                "rows",
                format!("at most {MAX_STOCK_ROWS} rows per call"),
            )
            .into());
        }
        let rows = rows
            .into_iter()
            .map(|r| StockRow {
                sku: r.sku,
                location: r.location,
                change: Change::Set(r.on_hand.0),
            })
            .collect();
        Ok(services(ctx)
            .inventory
            .change_stock(caller, rows, kind::IMPORT, reason)
            .await?
            .into())
    }

    /// Adds (or, negative, removes) units on hand of one SKU at one location
    /// (`INVENTORY_WRITE`), recorded with the reason in the movement history. Removing more
    /// than is on hand is refused (`NEGATIVE_STOCK`).
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        sku: String,
        location: String,
        delta: Int64,
        reason: String,
    ) -> Result<StockChangePayload> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        let reason = crate::kernel::text::text("reason", &reason, 500)?;
        let rows = vec![StockRow {
            sku,
            location,
            change: Change::Add(delta.0),
        }];
        Ok(services(ctx)
            .inventory
            .change_stock(caller, rows, kind::ADJUSTMENT, Some(reason))
            .await?
            .into())
    }

    /// Sets whether a variant can be ordered beyond its stock (`INVENTORY_WRITE`).
    async fn set_backorder_policy(
        &self,
        ctx: &Context<'_>,
        sku: String,
        mode: BackorderMode,
        limit: Option<Int64>,
    ) -> Result<BackorderPolicy> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        let backorder = match (mode, limit) {
            (BackorderMode::Deny, None) => Backorder::Deny,
            (BackorderMode::Allow, None) => Backorder::Allow,
            (BackorderMode::AllowUpTo, Some(n)) => Backorder::UpTo(n.0),
            (BackorderMode::AllowUpTo, None) => {
                return Err(AppError::validation("limit", "ALLOW_UP_TO needs a limit").into());
            }
            (_, Some(_)) => {
                return Err(
                    AppError::validation("limit", "a limit goes with ALLOW_UP_TO only").into(),
                );
            }
        };
        Ok(services(ctx)
            .inventory
            .set_backorder(caller, &sku, backorder)
            .await?
            .into())
    }

    /// Changes the tenant's inventory settings (`INVENTORY_WRITE`).
    async fn update_inventory_settings(
        &self,
        ctx: &Context<'_>,
        input: InventorySettingsInput,
    ) -> Result<InventorySettings> {
        let caller = require(ctx, Permission::InventoryWrite)?;
        let minutes = match input.checkout_reservation_minutes {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(m) => Some(Some(m)),
        };
        Ok(services(ctx)
            .inventory
            .update_settings(
                caller,
                input.low_stock_threshold.map(|t| t.0),
                input.show_quantities,
                minutes,
            )
            .await?
            .into())
    }
}
