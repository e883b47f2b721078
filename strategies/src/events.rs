//! Event sinks: custom destinations for domain events (an ERP export, a data warehouse, a
//! message bus of your own), run by the event consumer next to webhooks and projections.
//!
//! A sink is an [`EventSink`] registered by name in
//! [`STRATEGIES`](crate::registry::STRATEGIES) as a [`Build::EventSink`](crate::registry::Build);
//! linking the crate into the binary is enough for the engine to find it, and
//! `consumer.sinks = ["name"]` (env `VECTIS_CONSUMER_SINKS='["name"]'`) enables it, with
//! settings from `[strategies.options.sinks.<name>]`.
//!
//! ```ignore
//! #[linkme::distributed_slice(vectis_strategies::registry::STRATEGIES)]
//! static MY_SINK: Registration = Registration {
//!     name: "my-sink",
//!     engine: "^0.1",
//!     build: Build::EventSink(|_options| Ok(Arc::new(MySink))),
//! };
//! ```
//!
//! **Contract.** Delivery is at least once: the engine records that a sink handled an event
//! only after [`EventSink::deliver`] returned `Ok`, so after a crash an event may be delivered
//! again, with the same [`SinkEvent::id`] (make the destination idempotent on it). Events of
//! one aggregate arrive in `sequence` order, except for retries. An `Err` is retried with
//! backoff (`consumer.retry_initial_ms` doubling to `consumer.retry_max_ms`), then the event
//! becomes a dead letter for this sink. **Budget:** `deliver` runs on the consumer's path; keep
//! it under a few milliseconds or buffer inside the sink.

use uuid::Uuid;

/// An event as a sink sees it: the CloudEvents attributes and the payload.
#[derive(Debug, Clone, Copy)]
pub struct SinkEvent<'a> {
    /// Event id (UUID v7): the idempotency key.
    pub id: Uuid,
    /// e.g. `vectis.cart.lines_added`.
    pub event_type: &'a str,
    /// The tenant.
    pub tenant_id: Uuid,
    /// Aggregate family, e.g. `order`.
    pub aggregate_type: &'a str,
    /// Aggregate id.
    pub aggregate_id: &'a str,
    /// Position in the aggregate's history.
    pub sequence: i64,
    /// When it happened (RFC 3339, UTC).
    pub time: &'a str,
    /// The payload.
    pub data: &'a serde_json::Value,
}

/// Why a sink could not take an event (it is retried).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A destination for events.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Whether the sink wants events of this type (others are not recorded for it).
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    /// Takes one event. `Ok` means it is durably handed over.
    async fn deliver(&self, event: &SinkEvent<'_>) -> Result<(), SinkError>;
}
