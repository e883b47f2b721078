//! Stock from outside systems: a WMS or ERP, usually the source of truth for stock in B2B,
//! writes absolute stock levels to the inbound topic (`vectis.inbound.inventory`);
//! `vectis-consumer` applies them.
//!
//! Message (JSON, `schemaVersion` 1; documented in `asyncapi.yaml`):
//!
//! ```json
//! { "schemaVersion": 1, "messageId": "wms-2026-12-03-0001", "tenant": "demo",
//!   "asOf": "2026-12-03T08:00:00Z",
//!   "levels": [{ "sku": "DIN933-M8-20-ZN", "location": "berlin", "onHand": 420 }] }
//! ```
//!
//! - **Idempotent.** The message id goes into the consumer's inbox in the transaction that
//!   applies it: a redelivered message changes nothing.
//! - **Ordered by time, not by arrival.** A level remembers the newest `asOf` applied to it; a
//!   message older than that (or as old) leaves the level alone, so a delayed message never
//!   overwrites a newer count.
//! - **All or nothing.** A message that cannot be applied (not JSON, another schema version,
//!   an unknown tenant, SKU or location, a negative quantity) applies nothing and is
//!   dead-lettered to the inbound topic's `.dlq` with the reason.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::service::{Change, InventoryService, MAX_STOCK_ROWS, StockRow, kind};
use crate::error::AppResult;
use crate::tenancy::TenantService;

/// The handler name of inbound stock in the inbox.
pub const INBOX_HANDLER: &str = "inbound-inventory";
/// The message schema version this engine reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One inbound message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundStock {
    /// Must be 1.
    pub schema_version: u32,
    /// The sender's id of the message (1-200 characters), the idempotency key.
    pub message_id: String,
    /// The tenant's slug.
    pub tenant: String,
    /// When the levels were counted.
    pub as_of: DateTime<Utc>,
    /// Absolute levels.
    pub levels: Vec<InboundLevel>,
}

/// An absolute stock level.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundLevel {
    /// The variant's SKU.
    pub sku: String,
    /// The stock location's code.
    pub location: String,
    /// Units on hand.
    pub on_hand: i64,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Applied: the levels changed (those older than what they hold were skipped).
    Applied {
        /// Levels changed.
        changed: usize,
        /// Levels left alone because they hold a newer count.
        stale: usize,
    },
    /// Seen before: nothing changed.
    Duplicate,
    /// Cannot be applied; nothing changed. The reason goes with the dead letter.
    Rejected(String),
}

/// The inbox id of a message id.
fn inbox_id(tenant: &str, message_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("{tenant}\n{message_id}").as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

impl InventoryService {
    /// Applies one inbound message (see the module documentation).
    pub async fn apply_inbound(
        &self,
        tenants: &TenantService,
        payload: &[u8],
    ) -> AppResult<Inbound> {
        let message: InboundStock = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Inbound::Rejected(format!(
                    "not an inbound stock message: {e}"
                )));
            }
        };
        if message.schema_version != SCHEMA_VERSION {
            return Ok(Inbound::Rejected(format!(
                "schemaVersion {} is not supported (this engine reads {SCHEMA_VERSION})",
                message.schema_version
            )));
        }
        let id = message.message_id.trim();
        if id.is_empty() || id.chars().count() > 200 {
            return Ok(Inbound::Rejected(
                "messageId must be 1-200 characters".into(),
            ));
        }
        if message.levels.is_empty() || message.levels.len() > MAX_STOCK_ROWS {
            return Ok(Inbound::Rejected(format!(
                "levels: give 1-{MAX_STOCK_ROWS} levels"
            )));
        }
        let Some(tenant) = tenants.by_slug(message.tenant.trim()).await? else {
            return Ok(Inbound::Rejected(format!(
                "no tenant `{}`",
                message.tenant.trim()
            )));
        };
        let mut uow = self.core.begin(tenant.id, None).await?;
        let backend = self.core.db.backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO inbox (tenant_id, handler, event_id, processed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING"
            }
            _ => {
                "INSERT INTO inbox (tenant_id, handler, event_id, processed_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING"
            }
        };
        let inserted = uow
            .tx()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    tenant.id.0.into(),
                    INBOX_HANDLER.into(),
                    inbox_id(&tenant.slug, id).into(),
                    Utc::now().into(),
                ],
            ))
            .await?;
        if inserted.rows_affected() == 0 {
            return Ok(Inbound::Duplicate);
        }
        let n = message.levels.len();
        let rows = message
            .levels
            .into_iter()
            .map(|l| StockRow {
                sku: l.sku,
                location: l.location,
                change: Change::Set(l.on_hand),
            })
            .collect();
        let times = vec![message.as_of; n];
        let reason = format!("message {id}");
        match self
            .change_stock_in(&mut uow, rows, kind::INBOUND, Some(&reason), Some(&times))
            .await?
        {
            Ok(changed) => {
                uow.commit().await?;
                Ok(Inbound::Applied {
                    changed: changed.len(),
                    stale: n - changed.len(),
                })
            }
            Err(errors) => Ok(Inbound::Rejected(
                errors
                    .iter()
                    .take(20)
                    .map(|e| format!("levels[{}]: {}", e.index, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}
