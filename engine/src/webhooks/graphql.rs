//! Webhook GraphQL: endpoints, their delivery log, redelivery.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::entity::{attempt, delivery, endpoint};
use super::{EndpointInput, patterns, status};
use crate::auth::Permission;
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{require, services};
use crate::graphql::ids::parse_id;

/// A webhook endpoint.
pub struct WebhookEndpoint(pub endpoint::Model);

/// Delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Given up after the last attempt (redeliver by hand).
    Failed,
}

impl WebhookDeliveryStatus {
    fn of(value: &str) -> Self {
        match value {
            status::SUCCEEDED => WebhookDeliveryStatus::Succeeded,
            status::FAILED => WebhookDeliveryStatus::Failed,
            _ => WebhookDeliveryStatus::Pending,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => status::PENDING,
            WebhookDeliveryStatus::Succeeded => status::SUCCEEDED,
            WebhookDeliveryStatus::Failed => status::FAILED,
        }
    }
}

#[Object]
impl WebhookEndpoint {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Target URL.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Free text.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Event types it receives: exact (`vectis.cart.created`), a family (`vectis.cart.*`) or
    /// `*`.
    async fn event_types(&self) -> Vec<String> {
        patterns(&self.0)
    }
    /// Whether deliveries are sent.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why it is disabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// Failed attempts since the last success.
    async fn consecutive_failures(&self) -> i32 {
        self.0.consecutive_failures
    }
    /// Created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Deliveries, newest first.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 0-100.")] first: i32,
        after: Option<String>,
        status: Option<WebhookDeliveryStatus>,
    ) -> Result<Connection<IdCursor, WebhookDelivery>> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        let request = page_request(first, after.as_deref(), 100)?;
        let rows = if request.first == 0 {
            Vec::new()
        } else {
            services(ctx)
                .webhooks
                .deliveries(
                    caller.tenant,
                    self.0.id,
                    request.after,
                    request.limit(),
                    status.map(WebhookDeliveryStatus::as_str),
                )
                .await?
        };
        Ok(connection(
            &request,
            request.page(rows, 0),
            |d| d.id,
            WebhookDelivery,
            EmptyFields,
        ))
    }
}

/// One event sent (or to be sent) to one endpoint.
pub struct WebhookDelivery(pub delivery::Model);

/// One HTTP request of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// When.
    pub at: DateTime<Utc>,
    /// The HTTP status, if the endpoint answered.
    pub status_code: Option<i32>,
    /// What went wrong (`HTTP 500`, `timed out`, `could not connect`).
    pub error: Option<String>,
    /// Request duration.
    pub duration_ms: i64,
}

impl From<attempt::Model> for WebhookAttempt {
    fn from(a: attempt::Model) -> Self {
        WebhookAttempt {
            at: a.created_at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

#[Object]
impl WebhookDelivery {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The event id: the `webhook-id` header, the same on every attempt.
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// Event type.
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// State.
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::of(&self.0.status)
    }
    /// Attempts in the current round.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When the next attempt is due.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == status::PENDING)
            .then_some(self.0.next_attempt_at)
            .flatten()
    }
    /// HTTP status of the last attempt.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    /// Error of the last attempt.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it succeeded.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// Created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The request body (the CloudEvents envelope).
    async fn payload(&self) -> &str {
        &self.0.payload
    }
    /// Every attempt, oldest first.
    async fn attempt_log(&self, ctx: &Context<'_>) -> Result<Vec<WebhookAttempt>> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        Ok(services(ctx)
            .webhooks
            .attempts(caller.tenant, self.0.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// `createWebhookEndpoint` input.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Target URL (http or https).
    pub url: String,
    /// Event types: exact, a family (`vectis.cart.*`) or `*`.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
}

/// `updateWebhookEndpoint` input; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// Target URL.
    pub url: Option<String>,
    /// Event types.
    pub event_types: Option<Vec<String>>,
    /// Free text.
    pub description: Option<String>,
    /// Enable (resets the failure count) or disable.
    pub enabled: Option<bool>,
}

/// A new endpoint and its signing secret.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify `webhook-signature` with it. Shown only here.
    pub secret: String,
}

/// Webhook queries.
#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The tenant's webhook endpoints (needs `WEBHOOK_WRITE`).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        Ok(services(ctx)
            .webhooks
            .endpoints(caller)
            .await?
            .into_iter()
            .map(WebhookEndpoint)
            .collect())
    }
}

/// Webhook mutations.
#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers an endpoint for event types; returns its signing secret once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<CreateWebhookEndpointPayload> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        let (endpoint, secret) = services(ctx)
            .webhooks
            .create(
                caller,
                EndpointInput {
                    url: Some(input.url),
                    event_types: Some(input.event_types),
                    description: input.description,
                    enabled: None,
                },
            )
            .await?;
        Ok(CreateWebhookEndpointPayload {
            endpoint: WebhookEndpoint(endpoint),
            secret,
        })
    }

    /// Changes an endpoint.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        let id = parse_id("id", &id)?;
        let updated = services(ctx)
            .webhooks
            .update(
                caller,
                id,
                EndpointInput {
                    url: input.url,
                    event_types: input.event_types,
                    description: input.description,
                    enabled: input.enabled,
                },
            )
            .await?;
        Ok(WebhookEndpoint(updated))
    }

    /// Deletes an endpoint and its delivery log; returns its id.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        let uuid = parse_id("id", &id)?;
        services(ctx).webhooks.delete(caller, uuid).await?;
        Ok(id)
    }

    /// Sends a delivery again now, with a fresh round of attempts.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> Result<WebhookDelivery> {
        let caller = require(ctx, Permission::WebhookWrite)?;
        let id = parse_id("deliveryId", &delivery_id)?;
        Ok(WebhookDelivery(
            services(ctx).webhooks.redeliver(caller, id).await?,
        ))
    }
}
