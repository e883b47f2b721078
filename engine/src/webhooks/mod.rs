//! Webhooks: tenants register HTTPS endpoints with event-type filters; the consumer turns each
//! matching event into a delivery, and a worker sends it following the Standard Webhooks
//! convention (<https://www.standardwebhooks.com>):
//!
//! - `POST` of the CloudEvents envelope (JSON) with headers `webhook-id` (the event id, the
//!   same on every retry), `webhook-timestamp` (Unix seconds) and `webhook-signature`
//!   (`v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the base64 part of
//!   the endpoint's `whsec_…` secret).
//! - A 2xx answer is success. Anything else (or no answer within
//!   `consumer.webhook_timeout_ms`) is retried with backoff (`consumer.retry_initial_ms`
//!   doubling to `consumer.retry_max_ms`), up to `consumer.max_attempts`; then the delivery is
//!   `FAILED` and can be redelivered by hand.
//! - After `consumer.webhook_disable_after` consecutive failed attempts the endpoint is
//!   disabled (`vectis.webhook_endpoint.disabled`); enabling it again resets the count.
//! - Every attempt is logged (`WebhookDelivery.attemptLog`).

pub mod egress;
pub mod entity;
pub mod graphql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{Caller, Permission};
use crate::db::Scope;
use crate::error::{AppError, AppResult};
use crate::events::envelope::Envelope;
use crate::events::pipeline::{Handler, RetryPolicy, truncate};
use crate::events::{Core, DomainEvent};
use crate::kernel::TenantId;
use entity::{attempt, delivery, endpoint};

/// Most endpoints per tenant.
pub const MAX_ENDPOINTS: usize = 50;
/// Most event-type patterns per endpoint.
pub const MAX_EVENT_TYPES: usize = 100;

/// Delivery states.
pub mod status {
    /// Waiting for its next attempt.
    pub const PENDING: &str = "pending";
    /// Answered with 2xx.
    pub const SUCCEEDED: &str = "succeeded";
    /// Gave up after the last attempt.
    pub const FAILED: &str = "failed";
}

/// The Standard Webhooks signature of `body`: `v1,{base64 HMAC-SHA256}` over
/// `{id}.{timestamp}.{body}` keyed with the decoded part of `secret` after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether `event_type` matches one of `patterns` (`*`, `vectis.cart.*`, exact).
pub fn matches(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == event_type
            || p.strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('.') && event_type.starts_with(prefix))
    })
}

fn validate_patterns(patterns: &[String]) -> AppResult<()> {
    if patterns.is_empty() || patterns.len() > MAX_EVENT_TYPES {
        return Err(AppError::validation(
            "eventTypes",
            format!("give between 1 and {MAX_EVENT_TYPES} event types"),
        ));
    }
    for p in patterns {
        let ok = p == "*"
            || (p.len() <= 128
                && p.starts_with("vectis.")
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' || c == '*'
                })
                && (!p.contains('*') || (p.ends_with(".*") && p.matches('*').count() == 1)));
        if !ok {
            return Err(AppError::validation(
                "eventTypes",
                format!(
                    "`{p}` is not an event type (e.g. vectis.cart.created), a family (vectis.cart.*) or *"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_url(url: &str, egress: &egress::EgressPolicy) -> AppResult<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| AppError::validation("url", "is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http")
        || parsed.host_str().is_none_or(str::is_empty)
        || url.len() > 2048
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(AppError::validation(
            "url",
            "must be an http(s) URL without credentials, at most 2048 characters",
        ));
    }
    egress
        .check_url(&parsed)
        .map_err(|m| AppError::validation("url", m))
}

fn new_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The event types an endpoint wants.
pub fn patterns(model: &endpoint::Model) -> Vec<String> {
    serde_json::from_str(&model.event_types).unwrap_or_default()
}

/// What `createWebhookEndpoint` / `updateWebhookEndpoint` take.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    /// Target URL.
    pub url: Option<String>,
    /// Type patterns.
    pub event_types: Option<Vec<String>>,
    /// Free text.
    pub description: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Webhook endpoints and deliveries.
#[derive(Clone)]
pub struct WebhooksService {
    core: Core,
    egress: egress::EgressPolicy,
}

fn endpoint_json(e: &endpoint::Model) -> serde_json::Value {
    json!({ "id": e.id, "url": e.url, "description": e.description, "eventTypes": patterns(e), "enabled": e.enabled })
}

impl WebhooksService {
    /// The service; endpoint URLs must pass `egress`.
    pub fn new(core: Core, egress: egress::EgressPolicy) -> Self {
        WebhooksService { core, egress }
    }

    /// Registers an endpoint; returns it with its secret (shown this once).
    pub async fn create(
        &self,
        caller: &Caller,
        input: EndpointInput,
    ) -> AppResult<(endpoint::Model, String)> {
        caller.require(Permission::WebhookWrite)?;
        let url = input.url.unwrap_or_default();
        validate_url(&url, &self.egress)?;
        let patterns = input.event_types.unwrap_or_default();
        validate_patterns(&patterns)?;
        let description = input.description.unwrap_or_default();
        if description.chars().count() > 500 {
            return Err(AppError::validation(
                "description",
                "is longer than 500 characters",
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let count = endpoint::Entity::find()
            .filter(endpoint::Column::TenantId.eq(caller.tenant.0))
            .count(uow.tx())
            .await?;
        if count >= MAX_ENDPOINTS as u64 {
            return Err(AppError::Rejected {
                code: "LIMIT_REACHED",
                message: format!("a tenant has at most {MAX_ENDPOINTS} webhook endpoints"),
            });
        }
        let now = Utc::now();
        let secret = new_secret();
        let created = endpoint::Entity::insert(endpoint::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            created_at: Set(now),
            updated_at: Set(now),
            url: Set(url),
            description: Set(description),
            secret: Set(secret.clone()),
            event_types: Set(serde_json::to_string(&patterns).unwrap_or_default()),
            enabled: Set(true),
            consecutive_failures: Set(0),
            disabled_reason: Set(None),
            version: Set(1),
        })
        .exec_with_returning(uow.tx())
        .await?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "webhook_endpoint",
            created.id,
            1,
            "vectis.webhook_endpoint.created",
            endpoint_json(&created),
        ));
        uow.commit().await?;
        Ok((created, secret))
    }

    /// Changes an endpoint; enabling it resets its failure count.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        input: EndpointInput,
    ) -> AppResult<endpoint::Model> {
        caller.require(Permission::WebhookWrite)?;
        let mut sets: Vec<(endpoint::Column, sea_orm::sea_query::SimpleExpr)> = Vec::new();
        if let Some(url) = input.url {
            validate_url(&url, &self.egress)?;
            sets.push((endpoint::Column::Url, Expr::value(url)));
        }
        if let Some(patterns) = input.event_types {
            validate_patterns(&patterns)?;
            sets.push((
                endpoint::Column::EventTypes,
                Expr::value(serde_json::to_string(&patterns).unwrap_or_default()),
            ));
        }
        if let Some(description) = input.description {
            if description.chars().count() > 500 {
                return Err(AppError::validation(
                    "description",
                    "is longer than 500 characters",
                ));
            }
            sets.push((endpoint::Column::Description, Expr::value(description)));
        }
        if let Some(enabled) = input.enabled {
            sets.push((endpoint::Column::Enabled, Expr::value(enabled)));
            if enabled {
                sets.push((endpoint::Column::ConsecutiveFailures, Expr::value(0)));
                sets.push((
                    endpoint::Column::DisabledReason,
                    Expr::value(None::<String>),
                ));
            } else {
                sets.push((
                    endpoint::Column::DisabledReason,
                    Expr::value(Some("disabled by staff".to_owned())),
                ));
            }
        }
        let mut uow = self.core.begin_for(caller).await?;
        let updated = uow
            .change::<endpoint::Entity>(id, sets, "vectis.webhook_endpoint.updated", |updated| {
                endpoint_json(updated)
            })
            .await?;
        uow.commit().await?;
        Ok(updated)
    }

    /// Deletes an endpoint with its deliveries.
    pub async fn delete(&self, caller: &Caller, id: Uuid) -> AppResult<()> {
        caller.require(Permission::WebhookWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        let deleted = uow
            .bump::<endpoint::Entity>(id, Vec::new(), "WebhookEndpoint")
            .await?;
        endpoint::Entity::delete_many()
            .filter(endpoint::Column::TenantId.eq(caller.tenant.0))
            .filter(endpoint::Column::Id.eq(id))
            .exec(uow.tx())
            .await?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "webhook_endpoint",
            id,
            deleted.version,
            "vectis.webhook_endpoint.deleted",
            json!({ "id": id }),
        ));
        uow.commit().await
    }

    /// The tenant's endpoints, oldest first.
    pub async fn endpoints(&self, caller: &Caller) -> AppResult<Vec<endpoint::Model>> {
        caller.require(Permission::WebhookWrite)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(endpoint::Entity::find()
                        .filter(endpoint::Column::TenantId.eq(tenant.0))
                        .order_by_asc(endpoint::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// A page of an endpoint's deliveries, newest first: `first + 1` rows after cursor
    /// `before` (a delivery id), optionally in one status.
    pub async fn deliveries(
        &self,
        tenant: TenantId,
        endpoint_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
        status: Option<&'static str>,
    ) -> AppResult<Vec<delivery::Model>> {
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let mut query = delivery::Entity::find()
                        .filter(delivery::Column::TenantId.eq(tenant.0))
                        .filter(delivery::Column::EndpointId.eq(endpoint_id));
                    if let Some(before) = before {
                        query = query.filter(delivery::Column::Id.lt(before));
                    }
                    if let Some(status) = status {
                        query = query.filter(delivery::Column::Status.eq(status));
                    }
                    Ok(query
                        .order_by_desc(delivery::Column::Id)
                        .limit(limit)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// The attempts of a delivery, oldest first.
    pub async fn attempts(
        &self,
        tenant: TenantId,
        delivery_id: Uuid,
    ) -> AppResult<Vec<attempt::Model>> {
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(attempt::Entity::find()
                        .filter(attempt::Column::TenantId.eq(tenant.0))
                        .filter(attempt::Column::DeliveryId.eq(delivery_id))
                        .order_by_asc(attempt::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Sends a delivery again now (whatever its state), with a fresh round of attempts.
    pub async fn redeliver(&self, caller: &Caller, id: Uuid) -> AppResult<delivery::Model> {
        caller.require(Permission::WebhookWrite)?;
        let tx = self.core.db.write(Scope::Tenant(caller.tenant)).await?;
        let updated = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(status::PENDING))
            .col_expr(delivery::Column::Attempts, Expr::value(0))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(Utc::now()))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(delivery::Column::TenantId.eq(caller.tenant.0))
            .filter(delivery::Column::Id.eq(id))
            .exec_with_returning(&tx)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("WebhookDelivery", id))?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// The pipeline handler that turns events into deliveries for matching endpoints.
pub struct WebhookFanout;

#[async_trait]
impl Handler for WebhookFanout {
    fn name(&self) -> &str {
        "webhooks"
    }

    fn wants(&self, _: &Envelope) -> bool {
        true
    }

    async fn handle(&self, tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        let endpoints = endpoint::Entity::find()
            .filter(endpoint::Column::TenantId.eq(event.tenantid))
            .filter(endpoint::Column::Enabled.eq(true))
            .all(tx)
            .await?;
        let now = Utc::now();
        let body = String::from_utf8(event.to_json())?;
        let rows: Vec<delivery::ActiveModel> = endpoints
            .iter()
            .filter(|e| matches(&patterns(e), &event.event_type))
            .map(|e| delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(event.tenantid),
                created_at: Set(now),
                updated_at: Set(now),
                endpoint_id: Set(e.id),
                event_id: Set(event.id),
                event_type: Set(event.event_type.clone()),
                payload: Set(body.clone()),
                status: Set(status::PENDING.into()),
                attempts: Set(0),
                next_attempt_at: Set(Some(now)),
                last_status_code: Set(None),
                last_error: Set(None),
                delivered_at: Set(None),
            })
            .collect();
        if !rows.is_empty() {
            delivery::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([delivery::Column::EndpointId, delivery::Column::EventId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(tx)
                .await?;
        }
        Ok(())
    }
}

/// Sends due deliveries.
#[derive(Clone)]
pub struct Deliverer {
    core: Core,
    client: reqwest::Client,
    egress: egress::EgressPolicy,
    retry: RetryPolicy,
    timeout: Duration,
    disable_after: i32,
}

struct Sent {
    status_code: Option<i32>,
    error: Option<String>,
    duration_ms: i64,
}

impl Deliverer {
    /// A deliverer with the consumer's retry policy. Names resolve through the egress guard
    /// (the address checked is the address connected to); redirects are not followed and
    /// proxies from the environment are not used.
    pub fn new(
        core: Core,
        egress: egress::EgressPolicy,
        retry: RetryPolicy,
        timeout: Duration,
        disable_after: i32,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(egress.resolver()))
            .user_agent(concat!("Vectis-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            core,
            client,
            egress,
            retry,
            timeout,
            disable_after,
        })
    }

    /// Claims up to 50 due deliveries (leasing them for the request timeout, so other
    /// workers skip them) and sends them, 8 at a time; returns how many were sent.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let db = &self.core.db;
        let now = Utc::now();
        let tx = db.write(Scope::System).await?;
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(status::PENDING))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(delivery::Column::NextAttemptAt)
            .limit(50);
        if db.backend() == DbBackend::Postgres {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let due = query.all(&tx).await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
        let endpoint_ids: Vec<Uuid> = due.iter().map(|d| d.endpoint_id).collect();
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(now + self.timeout + Duration::from_secs(30)),
            )
            .filter(delivery::Column::Id.is_in(ids))
            .exec(&tx)
            .await?;
        let endpoints = endpoint::Entity::find()
            .filter(endpoint::Column::Id.is_in(endpoint_ids))
            .all(&tx)
            .await?;
        tx.commit().await?;
        let count = due.len();
        let work = due.into_iter().filter_map(|d| {
            let e = endpoints.iter().find(|e| e.id == d.endpoint_id)?.clone();
            Some((d, e))
        });
        use futures::StreamExt;
        futures::stream::iter(work)
            .map(|(d, e)| async move {
                if !e.enabled {
                    // Held until the endpoint is enabled again.
                    return self.hold(&d).await;
                }
                let sent = self.send(&e, &d).await;
                self.record(&e, &d, sent).await
            })
            .buffer_unordered(8)
            .for_each(|result| async move {
                if let Err(err) = result {
                    tracing::warn!(error = %format!("{err:#}"), "recording a webhook attempt");
                }
            })
            .await;
        Ok(count)
    }

    async fn send(&self, e: &endpoint::Model, d: &delivery::Model) -> Sent {
        let started = Instant::now();
        let timestamp = Utc::now().timestamp();
        let id = d.event_id.to_string();
        // IP-literal URLs bypass the resolver: check them here (the guard may have been
        // switched on since the endpoint was registered).
        let target = reqwest::Url::parse(&e.url).map_err(|_| egress::REFUSED);
        if let Err(refused) = target.and_then(|u| self.egress.check_url(&u)) {
            return Sent {
                status_code: None,
                error: Some(refused.to_owned()),
                duration_ms: 0,
            };
        }
        let Some(signature) = sign(&e.secret, &id, timestamp, d.payload.as_bytes()) else {
            return Sent {
                status_code: None,
                error: Some("the endpoint's secret is unreadable".into()),
                duration_ms: 0,
            };
        };
        let result = self
            .client
            .post(&e.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let duration_ms = started.elapsed().as_millis() as i64;
        match result {
            Ok(response) if response.status().is_success() => Sent {
                status_code: Some(i32::from(response.status().as_u16())),
                error: None,
                duration_ms,
            },
            Ok(response) => Sent {
                status_code: Some(i32::from(response.status().as_u16())),
                error: Some(format!("HTTP {}", response.status().as_u16())),
                duration_ms,
            },
            // One message for every failure without an HTTP answer: the log shows status and
            // timing, never connection details (which would map the target's network).
            Err(_) => Sent {
                status_code: None,
                error: Some("no HTTP response".to_owned()),
                duration_ms,
            },
        }
    }

    async fn hold(&self, d: &delivery::Model) -> anyhow::Result<()> {
        let tx = self
            .core
            .db
            .write(Scope::Tenant(TenantId(d.tenant_id)))
            .await?;
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(None::<chrono::DateTime<Utc>>),
            )
            .col_expr(
                delivery::Column::LastError,
                Expr::value("endpoint disabled"),
            )
            .filter(delivery::Column::Id.eq(d.id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record(
        &self,
        e: &endpoint::Model,
        d: &delivery::Model,
        sent: Sent,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let tenant = TenantId(d.tenant_id);
        let mut uow = self.core.begin(tenant, None).await?;
        let tx = uow.tx();
        attempt::Entity::insert(attempt::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(d.tenant_id),
            created_at: Set(now),
            updated_at: Set(now),
            delivery_id: Set(d.id),
            status_code: Set(sent.status_code),
            error: Set(sent.error.as_deref().map(|e| truncate(e, 500))),
            duration_ms: Set(sent.duration_ms),
        })
        .exec_without_returning(tx)
        .await?;
        let attempts = d.attempts.saturating_add(1);
        let ok = sent.error.is_none();
        let (state, next) = if ok {
            (status::SUCCEEDED, None)
        } else if attempts >= self.retry.max_attempts {
            (status::FAILED, None)
        } else {
            (status::PENDING, Some(now + self.retry.delay(attempts)))
        };
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(state))
            .col_expr(delivery::Column::Attempts, Expr::value(attempts))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(next))
            .col_expr(
                delivery::Column::LastStatusCode,
                Expr::value(sent.status_code),
            )
            .col_expr(
                delivery::Column::LastError,
                Expr::value(sent.error.as_deref().map(|e| truncate(e, 500))),
            )
            .col_expr(
                delivery::Column::DeliveredAt,
                Expr::value(ok.then_some(now)),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(d.id))
            .exec(tx)
            .await?;
        let failures = if ok {
            Expr::value(0)
        } else {
            Expr::col(endpoint::Column::ConsecutiveFailures).add(1)
        };
        let updated = endpoint::Entity::update_many()
            .col_expr(endpoint::Column::ConsecutiveFailures, failures)
            .filter(endpoint::Column::Id.eq(e.id))
            .exec_with_returning(tx)
            .await?;
        if let Some(endpoint) = updated.into_iter().next()
            && endpoint.enabled
            && endpoint.consecutive_failures >= self.disable_after
        {
            let reason = format!(
                "disabled after {} consecutive failed attempts",
                endpoint.consecutive_failures
            );
            uow.change::<endpoint::Entity>(
                e.id,
                vec![
                    (endpoint::Column::Enabled, Expr::value(false)),
                    (
                        endpoint::Column::DisabledReason,
                        Expr::value(reason.clone()),
                    ),
                ],
                "vectis.webhook_endpoint.disabled",
                |_| json!({ "id": e.id, "url": e.url, "reason": reason }),
            )
            .await?;
        }
        uow.commit().await?;
        Ok(())
    }

    /// Sends due deliveries every `every` (at once while there are more) until `stop` fires.
    pub async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            let wait = match self.run_once().await {
                Ok(50..) => Duration::ZERO,
                Ok(_) => every,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "webhook deliveries");
                    every
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The deliverer for the consumer's and the webhooks' settings.
pub fn deliverer(
    core: Core,
    config: &crate::config::ConsumerConfig,
    webhooks: &crate::config::WebhooksConfig,
) -> anyhow::Result<Arc<Deliverer>> {
    Ok(Arc::new(Deliverer::new(
        core,
        egress::EgressPolicy {
            allow_private: webhooks.allow_private_targets,
        },
        RetryPolicy::from_config(config),
        Duration::from_millis(config.webhook_timeout_ms),
        config.webhook_disable_after,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("nope", "id", 1, b""), None);
    }

    #[test]
    fn patterns_match_types_families_and_everything() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches(&p(&["*"]), "vectis.cart.created"));
        assert!(matches(&p(&["vectis.cart.*"]), "vectis.cart.created"));
        assert!(!matches(&p(&["vectis.cart.*"]), "vectis.cartography.x"));
        assert!(matches(
            &p(&["vectis.product.updated"]),
            "vectis.product.updated"
        ));
        assert!(!matches(
            &p(&["vectis.product.updated"]),
            "vectis.product.created"
        ));
        assert!(validate_patterns(&p(&["vectis.cart.*", "*", "vectis.a_b.c"])).is_ok());
        for bad in ["cart.*", "vectis.*.x", "vectis.Cart", "", "vectis.cart.**"] {
            assert!(validate_patterns(&p(&[bad])).is_err(), "{bad}");
        }
        assert!(validate_patterns(&[]).is_err());
    }
}
