//! The outbox relay: publishes committed outbox rows, oldest first, and marks them published
//! only after the publisher acknowledged them.
//!
//! - **PostgreSQL**: a batch is claimed with `FOR UPDATE SKIP LOCKED`, so relays on several
//!   replicas share the work. A relay leaves out an event when an older unpublished event of
//!   the same aggregate is held by another relay, so per-aggregate order holds across relays.
//!   Relays wake up on `NOTIFY vectis_outbox` (sent by a trigger on every outbox insert) and
//!   poll as a fallback.
//! - **SQLite**: one relay per database file; it polls, and wakes at once on this process's own
//!   commits.
//! - **Failures** (broker down): nothing is marked, the relay retries with backoff (200 ms
//!   doubling to 30 s), the outbox grows, writes go on; `/health` reports the relay degraded
//!   with the backlog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::entity;
use super::envelope::Envelope;
use super::pipeline::Pipeline;
use crate::db::{Db, Scope};

/// Where the relay sends events.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// `kafka` or `in-process`.
    fn name(&self) -> &'static str;

    /// Publishes `events` in order; `Ok` only when every one was acknowledged.
    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()>;
}

/// The all-in-one publisher: hands events straight to the consumer pipeline in this process.
pub struct InProcess(pub Pipeline);

#[async_trait]
impl Publisher for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        for event in events {
            self.0.process(event).await?;
        }
        Ok(())
    }
}

/// What `/health` shows about the relay.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayStatus {
    /// `kafka` or `in-process`.
    pub publisher: &'static str,
    /// The last attempt failed.
    pub degraded: bool,
    /// Why, when degraded.
    pub last_error: Option<String>,
    /// Events published since start.
    pub published: u64,
    /// When the last batch was published.
    pub last_published_at: Option<DateTime<Utc>>,
}

/// The relay.
#[derive(Clone)]
pub struct Relay {
    db: Db,
    publisher: Arc<dyn Publisher>,
    batch: u64,
    poll: Duration,
    wake: Arc<Notify>,
    status: Arc<Mutex<RelayStatus>>,
}

impl Relay {
    /// A relay of `db`'s outbox to `publisher`, `batch` events at a time, polling every `poll`;
    /// `wake` is notified when this process commits events.
    pub fn new(
        db: Db,
        publisher: Arc<dyn Publisher>,
        batch: u64,
        poll: Duration,
        wake: Arc<Notify>,
    ) -> Relay {
        let status = RelayStatus {
            publisher: publisher.name(),
            ..RelayStatus::default()
        };
        Relay {
            db,
            publisher,
            batch: batch.max(1),
            poll,
            wake,
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// Wakes the relay (this process committed events).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A snapshot of the relay's status.
    pub fn status(&self) -> RelayStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Publishes one batch; returns how many events were published.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let result = match self.db.backend() {
            DbBackend::Postgres => self.run_once_claiming().await,
            _ => self.run_once_single().await,
        };
        if let Ok(mut status) = self.status.lock() {
            match &result {
                Ok(count) => {
                    status.degraded = false;
                    status.last_error = None;
                    if *count > 0 {
                        status.published += *count as u64;
                        status.last_published_at = Some(Utc::now());
                    }
                }
                Err(err) => {
                    status.degraded = true;
                    status.last_error = Some(format!("{err:#}"));
                }
            }
        }
        result
    }

    /// PostgreSQL: claim, publish and mark in one transaction.
    async fn run_once_claiming(&self) -> anyhow::Result<usize> {
        let tx = self.db.write(Scope::System).await?;
        let mut rows = entity::Entity::find()
            .filter(entity::Column::PublishedAt.is_null())
            .order_by_asc(entity::Column::Position)
            .limit(self.batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&tx)
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        // Older unpublished events of the same aggregates held by another relay.
        let mine: Vec<i64> = rows.iter().map(|r| r.position).collect();
        let aggregates: Vec<Uuid> = rows.iter().map(|r| r.aggregate_id).collect();
        let max = mine.iter().copied().max().unwrap_or_default();
        #[derive(FromQueryResult)]
        struct Held {
            aggregate_id: Uuid,
            first: i64,
        }
        let held = Held::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT aggregate_id, MIN(position) AS first FROM outbox \
             WHERE published_at IS NULL AND aggregate_id = ANY($1) AND position < $2 \
             AND position <> ALL($3) GROUP BY aggregate_id",
            [aggregates.into(), max.into(), mine.into()],
        ))
        .all(&tx)
        .await?;
        if !held.is_empty() {
            let held: HashMap<Uuid, i64> = held
                .into_iter()
                .map(|h| (h.aggregate_id, h.first))
                .collect();
            rows.retain(|r| {
                held.get(&r.aggregate_id)
                    .is_none_or(|first| r.position < *first)
            });
        }
        let count = self.publish_and_mark(&tx, &rows).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// SQLite: read, publish, then mark in a short write transaction (one relay per file).
    async fn run_once_single(&self) -> anyhow::Result<usize> {
        let tx = self.db.read(Scope::System).await?;
        let rows = entity::Entity::find()
            .filter(entity::Column::PublishedAt.is_null())
            .order_by_asc(entity::Column::Position)
            .limit(self.batch)
            .all(&tx)
            .await?;
        tx.commit().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let events: Vec<Envelope> = rows.iter().map(Envelope::from_row).collect();
        // Published before the write transaction: SQLite has one writer, and the in-process
        // publisher's handlers write.
        self.publisher.publish(&events).await?;
        let tx = self.db.write(Scope::System).await?;
        Self::mark(&tx, &rows).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn publish_and_mark(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        rows: &[entity::Model],
    ) -> anyhow::Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let events: Vec<Envelope> = rows.iter().map(Envelope::from_row).collect();
        self.publisher.publish(&events).await?;
        Self::mark(tx, rows).await?;
        Ok(rows.len())
    }

    async fn mark(tx: &sea_orm::DatabaseTransaction, rows: &[entity::Model]) -> anyhow::Result<()> {
        entity::Entity::update_many()
            .col_expr(entity::Column::PublishedAt, Expr::value(Utc::now()))
            .filter(entity::Column::Position.is_in(rows.iter().map(|r| r.position)))
            .exec(tx)
            .await?;
        Ok(())
    }

    /// Number of unpublished events.
    pub async fn backlog(&self) -> anyhow::Result<u64> {
        let tx = self.db.read(Scope::System).await?;
        let count = sea_orm::PaginatorTrait::count(
            entity::Entity::find().filter(entity::Column::PublishedAt.is_null()),
            &tx,
        )
        .await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Runs until `stop` fires: publishes while there is work, then waits for a wake-up (this
    /// process's commits, PostgreSQL notifications) or the poll interval; backs off on errors.
    pub async fn run(self, listen_url: Option<String>, mut stop: watch::Receiver<bool>) {
        if let Some(url) = listen_url {
            let wake = self.wake.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = listen(url, wake) => {}
                    _ = stop.changed() => {}
                }
            });
        }
        let mut backoff = Duration::from_millis(200);
        loop {
            let wait = match self.run_once().await {
                Ok(count) if count as u64 >= self.batch => {
                    backoff = Duration::from_millis(200);
                    Duration::ZERO
                }
                Ok(_) => {
                    backoff = Duration::from_millis(200);
                    self.poll
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?backoff, "outbox relay: publishing failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            if *stop.borrow() {
                return;
            }
            if wait.is_zero() {
                continue;
            }
            let degraded = self.status().degraded;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // Fresh commits wake a healthy relay; a failing one keeps to its backoff.
                _ = self.wake.notified(), if !degraded => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Wakes the relay on `NOTIFY vectis_outbox`; reconnects after errors.
async fn listen(url: String, wake: Arc<Notify>) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen("vectis_outbox").await {
                    tracing::warn!(error = %err, "LISTEN vectis_outbox");
                } else {
                    while listener.recv().await.is_ok() {
                        wake.notify_one();
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "outbox listener: connecting"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Where `events replay` starts.
#[derive(Debug, Clone, Copy)]
pub enum ReplayFrom {
    /// Events that happened at or after this time.
    Time(DateTime<Utc>),
    /// Events at or after this outbox position.
    Position(i64),
}

/// Publishes the outbox history again, oldest first, from `from` (only `tenant`'s events when
/// given), `batch` events at a time, whether published before or not. Events keep their ids,
/// so consumers that saw them already skip them. Returns how many were published.
pub async fn replay(
    db: &Db,
    publisher: &dyn Publisher,
    from: ReplayFrom,
    tenant: Option<Uuid>,
    batch: u64,
) -> anyhow::Result<u64> {
    let mut after = match from {
        ReplayFrom::Position(position) => position.saturating_sub(1),
        ReplayFrom::Time(_) => i64::MIN,
    };
    let mut total = 0;
    loop {
        let tx = db.read(Scope::System).await?;
        let mut query = entity::Entity::find()
            .filter(entity::Column::Position.gt(after))
            .order_by_asc(entity::Column::Position)
            .limit(batch.max(1));
        if let ReplayFrom::Time(since) = from {
            query = query.filter(entity::Column::OccurredAt.gte(since));
        }
        if let Some(tenant) = tenant {
            query = query.filter(entity::Column::TenantId.eq(tenant));
        }
        let rows = query.all(&tx).await?;
        tx.commit().await?;
        let Some(last) = rows.last() else {
            return Ok(total);
        };
        after = last.position;
        let events: Vec<Envelope> = rows.iter().map(Envelope::from_row).collect();
        publisher.publish(&events).await?;
        total += events.len() as u64;
    }
}
