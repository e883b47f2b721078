//! Domain events: recorded in the `outbox` table in the same transaction as the change they
//! describe, then handed to in-process subscribers after the commit.
//!
//! Each event follows the CloudEvents 1.0 attributes: `id` (UUID v7, the idempotency key),
//! `type` (`vectis.product.updated`), `subject` (the aggregate id), `sequence` (per aggregate,
//! equal to the aggregate's version after the change), `tenantid`, `time` and `data`.
//! The outbox is the source of truth; the relay to Kafka reads it.

pub mod contract;
pub mod entity;
pub mod envelope;
pub mod kafka;
pub mod pipeline;
pub mod relay;
pub mod tables;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait};
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::db::{Db, Scope};
use crate::error::AppResult;
use crate::kernel::TenantId;

/// Rows per multi-row outbox insert (11 parameters per row; within SQLite's and PostgreSQL's
/// parameter limits).
const OUTBOX_CHUNK: usize = 2_000;

/// A domain event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainEvent {
    /// Event id (UUID v7): the idempotency key for consumers.
    pub id: Uuid,
    /// Tenant the event belongs to.
    pub tenant_id: TenantId,
    /// Aggregate family, e.g. `product`.
    pub aggregate_type: &'static str,
    /// Aggregate id, the CloudEvents `subject` and the Kafka key.
    pub aggregate_id: Uuid,
    /// Position of the event in its aggregate's history (the aggregate version).
    pub sequence: i64,
    /// Type, e.g. `vectis.product.created`.
    pub event_type: &'static str,
    /// Version of the `data` schema.
    pub schema_version: i32,
    /// Payload.
    pub data: serde_json::Value,
    /// The staff user, customer or API key that caused it, if any.
    pub actor_id: Option<Uuid>,
    /// The staff user acting on behalf of `actor_id` (a sales rep impersonating a buyer).
    pub acting_staff_id: Option<Uuid>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl DomainEvent {
    /// A new event with a fresh id, timestamped now.
    pub fn new(
        tenant_id: TenantId,
        aggregate_type: &'static str,
        aggregate_id: Uuid,
        sequence: i64,
        event_type: &'static str,
        data: serde_json::Value,
    ) -> Self {
        DomainEvent {
            id: Uuid::now_v7(),
            tenant_id,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            schema_version: 1,
            data,
            actor_id: None,
            acting_staff_id: None,
            occurred_at: Utc::now(),
        }
    }
}

/// Delivers committed events to in-process subscribers (projections, the all-in-one relay).
///
/// Subscribers that fall behind by more than the channel capacity miss events and are told so
/// by `RecvError::Lagged`; the outbox remains the complete record.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
    catalog_generation: Arc<std::sync::atomic::AtomicU64>,
    committed: Arc<tokio::sync::Notify>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(16_384);
        EventBus {
            sender,
            catalog_generation: Arc::default(),
            committed: Arc::default(),
        }
    }
}

/// Aggregates whose changes alter what anonymous catalog reads return.
const CATALOG_AGGREGATES: &[&str] = &[
    "product",
    "variant",
    "collection",
    "price_list",
    "stock_location",
    "stock_policy",
];

/// Stock events that can change a variant's availability status as buyers see it (a
/// reservation changes it only when it crosses the threshold, which `low_stock` reports).
const AVAILABILITY_EVENTS: &[&str] = &[
    "vectis.inventory.adjusted",
    "vectis.inventory.low_stock",
    "vectis.inventory.released",
];

impl EventBus {
    /// A receiver of all events committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.sender.subscribe()
    }

    /// Incremented whenever this process commits a catalog change (response caches compare it).
    pub fn catalog_generation(&self) -> u64 {
        self.catalog_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Notified after every commit that wrote outbox rows (wakes the relay).
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    fn publish(&self, events: Vec<DomainEvent>) {
        if !events.is_empty() {
            self.committed.notify_one();
        }
        if events.iter().any(|e| {
            CATALOG_AGGREGATES.contains(&e.aggregate_type)
                || AVAILABILITY_EVENTS.contains(&e.event_type)
        }) {
            self.catalog_generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        for event in events {
            // No subscriber is not an error: the outbox keeps the event.
            let _ = self.sender.send(Arc::new(event));
        }
    }
}

/// An aggregate root table: its rows carry a `version` that every change increments and that
/// is the `sequence` of the change's event.
pub trait Aggregate: sea_orm::EntityTrait
where
    Self::Column: std::str::FromStr,
{
    /// The aggregate family recorded on events (`company`), the CloudEvents `aggregatetype`.
    const TYPE: &'static str;
    /// The name in `NOT_FOUND` errors (`Company`).
    const NAME: &'static str;
    /// The row's version.
    fn version(model: &Self::Model) -> i64;
}

/// Implements [`Aggregate`] for an entity whose model has a `version` column:
/// `aggregate!(company::Entity, "company", "Company");`.
macro_rules! aggregate {
    ($entity:ty, $kind:literal, $name:literal) => {
        impl $crate::events::Aggregate for $entity {
            const TYPE: &'static str = $kind;
            const NAME: &'static str = $name;
            fn version(model: &<$entity as sea_orm::EntityTrait>::Model) -> i64 {
                model.version
            }
        }
    };
}
pub(crate) use aggregate;

/// A write transaction that collects domain events and appends them to the outbox on commit.
///
/// ```text
/// let mut uow = core.begin(tenant, actor).await?;
/// /* write rows with uow.tx() */
/// uow.record(DomainEvent::new(...));
/// uow.commit().await?; // outbox rows and changes commit together; then subscribers hear it
/// ```
pub struct UnitOfWork {
    tx: DatabaseTransaction,
    tenant: TenantId,
    actor: Option<Uuid>,
    acting_staff: Option<Uuid>,
    events: Vec<DomainEvent>,
    bus: EventBus,
}

impl UnitOfWork {
    /// The open transaction.
    pub fn tx(&self) -> &DatabaseTransaction {
        &self.tx
    }

    /// The tenant this unit of work is scoped to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Increments the `version` of aggregate row `id` of entity `E` in this tenant, sets
    /// `updated_at` and the given columns, and returns the row; `NOT_FOUND` (named `what`)
    /// when there is no such row. The new version is the sequence of the event that follows.
    pub async fn bump<E>(
        &self,
        id: Uuid,
        sets: Vec<(E::Column, sea_orm::sea_query::Expr)>,
        what: &'static str,
    ) -> AppResult<E::Model>
    where
        E: sea_orm::EntityTrait,
        E::Column: std::str::FromStr,
    {
        use sea_orm::sea_query::{Expr, ExprTrait};
        use sea_orm::{ColumnTrait, QueryFilter};
        let column = |name: &str| {
            <E::Column as std::str::FromStr>::from_str(name).map_err(|_| {
                crate::error::AppError::Internal(anyhow::anyhow!("{what} has no column {name}"))
            })
        };
        let version = column("version")?;
        let mut update = E::update_many()
            .col_expr(version, Expr::col(version).add(1))
            .col_expr(column("updated_at")?, Expr::value(Utc::now()))
            .filter(column("tenant_id")?.eq(self.tenant.0))
            .filter(column("id")?.eq(id));
        for (column, value) in sets {
            update = update.col_expr(column, value);
        }
        update
            .exec_with_returning(&self.tx)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| crate::error::AppError::not_found(what, id))
    }

    /// The tail of nearly every change: bumps aggregate row `id` (its version, `updated_at`
    /// and `sets`, see [`UnitOfWork::bump`]) and records `event_type` with `data` of the
    /// changed row, at the row's new version. Returns the row.
    pub async fn change<A>(
        &mut self,
        id: Uuid,
        sets: Vec<(A::Column, sea_orm::sea_query::Expr)>,
        event_type: &'static str,
        data: impl FnOnce(&A::Model) -> serde_json::Value,
    ) -> AppResult<A::Model>
    where
        A: Aggregate,
        A::Column: std::str::FromStr,
    {
        let model = self.bump::<A>(id, sets, A::NAME).await?;
        self.record(DomainEvent::new(
            self.tenant,
            A::TYPE,
            id,
            A::version(&model),
            event_type,
            data(&model),
        ));
        Ok(model)
    }

    /// Queues an event; it is written to the outbox at commit.
    pub fn record(&mut self, mut event: DomainEvent) {
        event.actor_id = event.actor_id.or(self.actor);
        event.acting_staff_id = event.acting_staff_id.or(self.acting_staff);
        self.events.push(event);
    }

    /// Writes the queued events to the outbox, commits, then publishes them in-process.
    pub async fn commit(self) -> AppResult<()> {
        let UnitOfWork {
            tx, events, bus, ..
        } = self;
        for chunk in events.chunks(OUTBOX_CHUNK) {
            let rows = chunk.iter().map(|e| entity::ActiveModel {
                position: sea_orm::ActiveValue::NotSet,
                id: Set(e.id),
                tenant_id: Set(e.tenant_id.0),
                aggregate_type: Set(e.aggregate_type.to_owned()),
                aggregate_id: Set(e.aggregate_id),
                sequence: Set(e.sequence),
                event_type: Set(e.event_type.to_owned()),
                schema_version: Set(e.schema_version),
                data: Set(e.data.clone()),
                actor_id: Set(e.actor_id),
                acting_staff_id: Set(e.acting_staff_id),
                occurred_at: Set(e.occurred_at),
                published_at: Set(None),
            });
            entity::Entity::insert_many(rows)
                .exec_without_returning(&tx)
                .await?;
        }
        tx.commit().await?;
        bus.publish(events);
        Ok(())
    }
}

/// What every write service needs: the database and the event bus.
#[derive(Clone)]
pub struct Core {
    /// Database.
    pub db: Db,
    /// In-process event delivery.
    pub bus: EventBus,
}

impl Core {
    /// Begins a unit of work for `tenant`, acting as `actor` (system work passes `None`).
    pub async fn begin(&self, tenant: TenantId, actor: Option<Uuid>) -> AppResult<UnitOfWork> {
        let tx = self.db.write(Scope::Tenant(tenant)).await?;
        Ok(UnitOfWork {
            tx,
            tenant,
            actor,
            acting_staff: None,
            events: Vec::new(),
            bus: self.bus.clone(),
        })
    }

    /// Begins a unit of work in the caller's tenant, recording the caller (and, when a sales rep
    /// acts on behalf of a buyer, the acting staff user) on every event.
    pub async fn begin_for(&self, caller: &crate::auth::Caller) -> AppResult<UnitOfWork> {
        let mut uow = self.begin(caller.tenant, caller.actor()).await?;
        uow.acting_staff = caller.acting_staff();
        Ok(uow)
    }

    /// Runs a read-only closure in a transaction scoped to `tenant`.
    pub async fn read<T, F>(&self, tenant: TenantId, f: F) -> AppResult<T>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> futures::future::BoxFuture<'c, AppResult<T>>
            + Send,
        T: Send,
    {
        let tx = self.db.read(Scope::Tenant(tenant)).await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}
