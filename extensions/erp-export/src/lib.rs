//! An ERP export as a Vectis event sink.
//!
//! Appends every order and cart event (`vectis.order.*`, `vectis.cart.*`) as one JSON line to
//! `{dir}/{tenant id}/{YYYY-MM-DD}.jsonl`, where an ERP import job picks them up. Each line
//! carries the event id, so the import skips a line it has seen (the consumer delivers at least
//! once). The folder is the option `dir` (`[strategies.options.sinks.erp-export] dir = "…"`),
//! else `VECTIS_ERP_EXPORT_DIR`, else `erp-export`.
//!
//! Enable it in a binary that links this crate with `consumer.sinks = ["erp-export"]`.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use vectis_strategies::events::{EventSink, SinkError, SinkEvent};
use vectis_strategies::registry::{Build, Registration, STRATEGIES};

/// Options: `[strategies.options.sinks.erp-export]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    dir: Option<String>,
}

/// The sink's registration.
#[linkme::distributed_slice(STRATEGIES)]
static ERP_EXPORT: Registration = Registration {
    name: "erp-export",
    engine: "^0.1",
    build: Build::EventSink(|options| {
        let settings: Settings = options.parse()?;
        let dir = settings
            .dir
            .or_else(|| std::env::var("VECTIS_ERP_EXPORT_DIR").ok())
            .unwrap_or_else(|| "erp-export".into());
        Ok(Arc::new(ErpExport::new(dir)))
    }),
};

/// Writes order and cart events as JSON lines per tenant and day.
#[derive(Debug, Clone)]
pub struct ErpExport {
    dir: PathBuf,
}

impl ErpExport {
    /// An export into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ErpExport { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl EventSink for ErpExport {
    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("vectis.order.") || event_type.starts_with("vectis.cart.")
    }

    async fn deliver(&self, event: &SinkEvent<'_>) -> Result<(), SinkError> {
        let fail = |what: &str, err: std::io::Error| SinkError(format!("{what}: {err}"));
        let day = event.time.get(..10).unwrap_or("unknown");
        let dir = self.dir.join(event.tenant_id.to_string());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| fail("creating the export folder", e))?;
        let mut line = serde_json::to_vec(&serde_json::json!({
            "eventId": event.id,
            "type": event.event_type,
            "aggregateId": event.aggregate_id,
            "sequence": event.sequence,
            "time": event.time,
            "data": event.data,
        }))
        .map_err(|e| SinkError(e.to_string()))?;
        line.push(b'\n');
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{day}.jsonl")))
            .await
            .map_err(|e| fail("opening the export file", e))?;
        // One write per line: with O_APPEND, lines of concurrent writers do not interleave.
        file.write_all(&line)
            .await
            .map_err(|e| fail("writing", e))?;
        file.sync_data().await.map_err(|e| fail("syncing", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn registered_by_name() {
        let found = vectis_strategies::registry::find(
            vectis_strategies::registry::Slot::EventSink,
            "erp-export",
        );
        assert!(found.is_some());
    }

    #[tokio::test]
    async fn writes_order_and_cart_events_as_json_lines() {
        let dir = std::env::temp_dir().join(format!("erp-export-{}", Uuid::now_v7()));
        let sink = ErpExport::new(&dir);
        let tenant = Uuid::now_v7();
        let data = serde_json::json!({ "cartId": "c1", "lineCount": 3 });
        assert!(sink.wants("vectis.cart.lines_added"));
        assert!(!sink.wants("vectis.product.updated"));
        for sequence in [1, 2] {
            let id = Uuid::now_v7();
            sink.deliver(&SinkEvent {
                id,
                event_type: "vectis.cart.lines_added",
                tenant_id: tenant,
                aggregate_type: "order",
                aggregate_id: "c1",
                sequence,
                time: "2026-11-22T10:00:00.000000Z",
                data: &data,
            })
            .await
            .unwrap();
        }
        let text =
            std::fs::read_to_string(dir.join(tenant.to_string()).join("2026-11-22.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["sequence"], 2);
        assert_eq!(lines[0]["data"]["lineCount"], 3);
        std::fs::remove_dir_all(dir).ok();
    }
}
