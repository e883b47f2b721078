//! The consumer pipeline: every event goes to each handler that wants it, once.
//!
//! Each event is applied in one transaction scoped to its tenant, each handler in a savepoint
//! that first inserts the `(handler, event id)` row into `inbox`; when the row is already there
//! the handler applied the event before (a redelivery) and nothing happens. Effects and inbox
//! rows commit together, so a crash at any point applies an event completely or not at all. A
//! failing handler rolls back its own savepoint only.
//!
//! A handler that fails is recorded in `event_failures` and retried with exponential backoff
//! (`consumer.retry_initial_ms`, doubling up to `consumer.retry_max_ms`); after
//! `consumer.max_attempts` it is dead: kept in the table for `vectis-consumer dead-letters` and
//! published to the dead-letter topic. A failure never holds back the events behind it (a retried
//! event may therefore be applied after later events of its aggregate; handlers whose effects
//! depend on order compare `sequence`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::envelope::Envelope;
use super::tables::{failure, inbox};
use crate::db::{Db, Scope};
use crate::kernel::TenantId;

/// Something the consumer does with events: a projection, webhook fan-out, mail, a sink.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Stable name, the inbox key (renaming a handler makes it see every event again).
    fn name(&self) -> &str;

    /// Whether the handler wants `event` (no inbox row is written for events it skips).
    fn wants(&self, event: &Envelope) -> bool;

    /// Applies `event` in `tx`, the transaction that also holds the inbox row.
    async fn handle(&self, tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()>;
}

/// Where dead letters go besides `event_failures` (the `vectis.dlq` topic when a broker is
/// configured).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Publishes a dead letter: the original event, the handler and its last error.
    async fn publish(&self, letter: &DeadLetter) -> anyhow::Result<()>;
}

/// A handler run that exhausted its retries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The original event.
    pub event: Envelope,
    /// The handler that failed.
    pub handler: String,
    /// Its last error.
    pub error: String,
    /// How many times it ran.
    pub attempts: i32,
    /// When it was given up.
    pub dead_at: chrono::DateTime<Utc>,
}

/// Retry schedule.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay between retries.
    pub max: Duration,
    /// Runs (the first included) before a failure is dead.
    pub max_attempts: i32,
}

impl RetryPolicy {
    /// The policy of the `[consumer]` settings.
    pub fn from_config(c: &crate::config::ConsumerConfig) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(c.retry_initial_ms),
            max: Duration::from_millis(c.retry_max_ms),
            max_attempts: c.max_attempts,
        }
    }

    /// The delay after the `attempts`-th failed run.
    pub fn delay(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The handlers of the consumer, with their inbox and retry bookkeeping.
#[derive(Clone)]
pub struct Pipeline {
    db: Db,
    handlers: Arc<Vec<Arc<dyn Handler>>>,
    retry: RetryPolicy,
    dead_letters: Option<Arc<dyn DeadLetters>>,
}

/// What happened to one event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Handlers that applied it now.
    pub applied: usize,
    /// Handlers that had applied it before (redelivery).
    pub duplicates: usize,
    /// Handlers that failed (scheduled for retry).
    pub failed: usize,
}

impl Pipeline {
    /// A pipeline over `handlers`.
    pub fn new(db: Db, handlers: Vec<Arc<dyn Handler>>, retry: RetryPolicy) -> Self {
        Pipeline {
            db,
            handlers: Arc::new(handlers),
            retry,
            dead_letters: None,
        }
    }

    /// Also publishes dead letters to `sink`.
    pub fn with_dead_letters(mut self, sink: Arc<dyn DeadLetters>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// The handlers' names.
    pub fn handler_names(&self) -> Vec<String> {
        self.handlers.iter().map(|h| h.name().to_owned()).collect()
    }

    /// Hands `event` to every handler that wants it. Returns an error only when the outcome
    /// could not be recorded (the database is unreachable): the caller must then not
    /// acknowledge the event, and deliver it again later.
    pub async fn process(&self, event: &Envelope) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        let wanted: Vec<&Arc<dyn Handler>> =
            self.handlers.iter().filter(|h| h.wants(event)).collect();
        if wanted.is_empty() {
            return Ok(outcome);
        }
        // One transaction per event, a savepoint per handler: a failing handler rolls back
        // only its own savepoint (inbox row and effects), the others commit together.
        let tx = self
            .db
            .write(Scope::Tenant(TenantId(event.tenantid)))
            .await?;
        let mut failures = Vec::new();
        for handler in wanted {
            let savepoint = tx.begin().await?;
            match Self::apply(&savepoint, handler.as_ref(), event).await {
                Ok(true) => {
                    savepoint.commit().await?;
                    outcome.applied += 1;
                }
                Ok(false) => {
                    savepoint.rollback().await?;
                    outcome.duplicates += 1;
                }
                Err(err) => {
                    savepoint.rollback().await?;
                    outcome.failed += 1;
                    tracing::warn!(handler = handler.name(), event = %event.id, event_type = %event.event_type, error = %format!("{err:#}"), "event handler failed; will retry");
                    failures.push((handler.name().to_owned(), err));
                }
            }
        }
        tx.commit().await?;
        for (handler, err) in failures {
            self.record_failure(&handler, event, &err).await?;
        }
        Ok(outcome)
    }

    /// Writes the inbox row and applies `handler` in `tx`. `Ok(false)`: applied before.
    async fn apply(
        tx: &DatabaseTransaction,
        handler: &dyn Handler,
        event: &Envelope,
    ) -> anyhow::Result<bool> {
        let inserted = inbox::Entity::insert(inbox::ActiveModel {
            tenant_id: Set(event.tenantid),
            handler: Set(handler.name().to_owned()),
            event_id: Set(event.id),
            processed_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([inbox::Column::Handler, inbox::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
        if inserted == 0 {
            return Ok(false);
        }
        handler.handle(tx, event).await?;
        Ok(true)
    }

    /// Retries one handler in its own transaction, clearing its failure when it succeeds.
    /// `Ok(false)`: applied before.
    async fn run(&self, handler: &dyn Handler, event: &Envelope) -> anyhow::Result<bool> {
        let tx = self
            .db
            .write(Scope::Tenant(TenantId(event.tenantid)))
            .await?;
        let applied = Self::apply(&tx, handler, event).await?;
        failure::Entity::delete_many()
            .filter(failure::Column::Handler.eq(handler.name()))
            .filter(failure::Column::EventId.eq(event.id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn record_failure(
        &self,
        handler: &str,
        event: &Envelope,
        err: &anyhow::Error,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let tx = self
            .db
            .write(Scope::Tenant(TenantId(event.tenantid)))
            .await?;
        failure::Entity::insert(failure::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(event.tenantid),
            created_at: Set(now),
            updated_at: Set(now),
            handler: Set(handler.to_owned()),
            event_id: Set(event.id),
            event_type: Set(event.event_type.clone()),
            event: Set(String::from_utf8_lossy(&event.to_json()).into_owned()),
            attempts: Set(1),
            last_error: Set(truncate(&format!("{err:#}"), 2000)),
            next_attempt_at: Set(Some(now + self.retry.delay(1))),
            dead_at: Set(None),
        })
        // Already failing (a redelivery of a failing event): the retry schedule owns it.
        .on_conflict(
            OnConflict::columns([failure::Column::Handler, failure::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retries the failures that are due; returns how many ran.
    pub async fn retry_due(&self) -> anyhow::Result<usize> {
        let tx = self.db.read(Scope::System).await?;
        let due = failure::Entity::find()
            .filter(failure::Column::DeadAt.is_null())
            .filter(failure::Column::NextAttemptAt.lte(Utc::now()))
            .order_by_asc(failure::Column::NextAttemptAt)
            .limit(100)
            .all(&tx)
            .await?;
        tx.commit().await?;
        let count = due.len();
        for row in due {
            let Some(handler) = self.handlers.iter().find(|h| h.name() == row.handler) else {
                continue;
            };
            let event: Envelope = match serde_json::from_str(&row.event) {
                Ok(event) => event,
                Err(err) => {
                    self.fail_again(&row, &anyhow::anyhow!("unreadable event: {err}"))
                        .await?;
                    continue;
                }
            };
            if let Err(err) = self.run(handler.as_ref(), &event).await {
                self.fail_again(&row, &err).await?;
            }
        }
        Ok(count)
    }

    async fn fail_again(&self, row: &failure::Model, err: &anyhow::Error) -> anyhow::Result<()> {
        let now = Utc::now();
        let attempts = row.attempts.saturating_add(1);
        let error = truncate(&format!("{err:#}"), 2000);
        let dead = attempts >= self.retry.max_attempts;
        let tx = self
            .db
            .write(Scope::Tenant(TenantId(row.tenant_id)))
            .await?;
        failure::Entity::update_many()
            .col_expr(failure::Column::Attempts, Expr::value(attempts))
            .col_expr(failure::Column::LastError, Expr::value(error.clone()))
            .col_expr(failure::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                failure::Column::NextAttemptAt,
                Expr::value((!dead).then(|| now + self.retry.delay(attempts))),
            )
            .col_expr(failure::Column::DeadAt, Expr::value(dead.then_some(now)))
            .filter(failure::Column::Id.eq(row.id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        if dead {
            tracing::error!(handler = %row.handler, event = %row.event_id, error = %error, "event handler gave up; dead letter");
            if let (Some(sink), Ok(event)) = (&self.dead_letters, serde_json::from_str(&row.event))
            {
                let letter = DeadLetter {
                    event,
                    handler: row.handler.clone(),
                    error,
                    attempts,
                    dead_at: now,
                };
                if let Err(err) = sink.publish(&letter).await {
                    tracing::warn!(error = %format!("{err:#}"), "dead letter not published to the topic; it stays in event_failures");
                }
            }
        }
        Ok(())
    }

    /// Dead letters, oldest first (`tenant` narrows to one tenant).
    pub async fn dead_letters(
        &self,
        tenant: Option<TenantId>,
        limit: u64,
    ) -> anyhow::Result<Vec<failure::Model>> {
        let tx = self.db.read(Scope::System).await?;
        let mut query = failure::Entity::find().filter(failure::Column::DeadAt.is_not_null());
        if let Some(tenant) = tenant {
            query = query.filter(failure::Column::TenantId.eq(tenant.0));
        }
        let rows = query
            .order_by_asc(failure::Column::DeadAt)
            .limit(limit)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Schedules dead letters for another round of retries now (all when `ids` is empty);
    /// returns how many.
    pub async fn redrive(&self, ids: &[Uuid]) -> anyhow::Result<u64> {
        let tx = self.db.write(Scope::System).await?;
        let mut update = failure::Entity::update_many()
            .col_expr(
                failure::Column::DeadAt,
                Expr::value(None::<chrono::DateTime<Utc>>),
            )
            .col_expr(failure::Column::Attempts, Expr::value(0))
            .col_expr(failure::Column::NextAttemptAt, Expr::value(Utc::now()))
            .filter(failure::Column::DeadAt.is_not_null());
        if !ids.is_empty() {
            update = update.filter(failure::Column::Id.is_in(ids.iter().copied()));
        }
        let done = update.exec(&tx).await?.rows_affected;
        tx.commit().await?;
        Ok(done)
    }

    /// Retries due failures every `every` until `stop` fires.
    pub async fn run_retries(self, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(err) = self.retry_due().await {
                tracing::warn!(error = %format!("{err:#}"), "retrying failed events");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(7200),
            max_attempts: 10,
        };
        let delays: Vec<u64> = (1..=10).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3840, 7200, 7200]);
        assert_eq!(policy.delay(1_000).as_secs(), 7200);
    }
}
