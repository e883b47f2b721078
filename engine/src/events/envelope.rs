//! The wire form of an event: a CloudEvents 1.0 envelope in structured JSON mode, and the Kafka
//! topic and key it travels with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::entity;

/// The CloudEvents `source` prefix; the tenant id follows.
pub const SOURCE_PREFIX: &str = "/vectis/tenants/";

/// A CloudEvents 1.0 envelope, as published to Kafka (value) and handed to handlers.
///
/// Extension attributes: `tenantid`, `sequence` (per-aggregate position, an integer that grows
/// by one with every change of the aggregate), `aggregatetype`, `actorid`, `actingstaffid`,
/// `position` (the event's position in the engine's outbox, for `events replay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always `1.0`.
    pub specversion: String,
    /// Event id (UUID v7): the idempotency key.
    pub id: Uuid,
    /// `/vectis/tenants/{tenant id}`.
    pub source: String,
    /// e.g. `vectis.product.updated`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate id (also the Kafka key).
    pub subject: String,
    /// When the change happened (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// `urn:vectis:event:{type}:v{version}`: names the schema of `data` in `asyncapi.yaml`.
    pub dataschema: String,
    /// The tenant.
    pub tenantid: Uuid,
    /// The aggregate family, e.g. `product`.
    pub aggregatetype: String,
    /// Position in the aggregate's history.
    pub sequence: i64,
    /// Position in the outbox.
    pub position: i64,
    /// Who caused it, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actorid: Option<Uuid>,
    /// The staff user acting on behalf of `actorid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actingstaffid: Option<Uuid>,
    /// The payload.
    pub data: serde_json::Value,
}

impl Envelope {
    /// The envelope of a stored outbox row.
    pub fn from_row(row: &entity::Model) -> Envelope {
        Envelope {
            specversion: "1.0".into(),
            id: row.id,
            source: format!("{SOURCE_PREFIX}{}", row.tenant_id),
            event_type: row.event_type.clone(),
            subject: row.aggregate_id.to_string(),
            time: row.occurred_at,
            datacontenttype: "application/json".into(),
            dataschema: format!(
                "urn:vectis:event:{}:v{}",
                row.event_type, row.schema_version
            ),
            tenantid: row.tenant_id,
            aggregatetype: row.aggregate_type.clone(),
            sequence: row.sequence,
            position: row.position,
            actorid: row.actor_id,
            actingstaffid: row.acting_staff_id,
            data: row.data.clone(),
        }
    }

    /// The aggregate id.
    pub fn aggregate_id(&self) -> Option<Uuid> {
        self.subject.parse().ok()
    }

    /// The JSON value (the Kafka record value, the webhook body).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, numbers and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `ce_*` headers of the binary-mode attributes, duplicated for routing without
    /// parsing the value.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/cloudevents+json".into()),
            ("ce_specversion", self.specversion.clone()),
            ("ce_id", self.id.to_string()),
            ("ce_source", self.source.clone()),
            ("ce_type", self.event_type.clone()),
            ("ce_subject", self.subject.clone()),
            (
                "ce_time",
                self.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
            ("ce_tenantid", self.tenantid.to_string()),
            ("ce_sequence", self.sequence.to_string()),
        ]
    }
}

/// The topic family of an aggregate type: `orders`, `inventory`, `accounts` or `catalog`.
pub fn topic_family(aggregate_type: &str) -> &'static str {
    match aggregate_type {
        "product" | "variant" | "collection" | "price_list" => "catalog",
        "customer" | "customer_group" | "company" | "staff_user" | "api_key" | "tenant"
        | "webhook_endpoint" | "approval_rule" => "accounts",
        "order" | "coupon" | "payment" | "fulfillment" | "quote" | "requisition_list" => "orders",
        t if t.starts_with("stock") || t.starts_with("inventory") || t == "warehouse" => {
            "inventory"
        }
        _ => "other",
    }
}

/// Every topic family the relay publishes to.
pub const TOPIC_FAMILIES: &[&str] = &["orders", "inventory", "accounts", "catalog", "other"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_cover_the_aggregates_in_use() {
        for (aggregate, family) in [
            ("product", "catalog"),
            ("variant", "catalog"),
            ("price_list", "catalog"),
            ("collection", "catalog"),
            ("customer", "accounts"),
            ("company", "accounts"),
            ("approval_rule", "accounts"),
            ("api_key", "accounts"),
            ("order", "orders"),
            ("coupon", "orders"),
            ("quote", "orders"),
            ("requisition_list", "orders"),
            ("stock_level", "inventory"),
            ("something_new", "other"),
        ] {
            assert_eq!(topic_family(aggregate), family, "{aggregate}");
        }
    }
}
