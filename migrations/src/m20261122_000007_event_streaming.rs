//! Event streaming: the consumer's inbox (idempotent handlers), failed handler runs (retries and
//! dead letters), webhook endpoints, deliveries and attempts, queued mail, the projections the
//! consumer owns, and on PostgreSQL a `NOTIFY vectis_outbox` after every outbox insert so relays
//! wake up at once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::util::{fk, index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per (handler, event) that a handler has applied, written in the handler's
        // own transaction: a redelivered event finds its row and changes nothing.
        manager
            .create_table(
                tenant_join_table("inbox")
                    .col(string_len("handler", 64))
                    .col(uuid("event_id"))
                    .col(timestamp_with_time_zone("processed_at"))
                    .primary_key(Index::create().col("handler").col("event_id"))
                    .to_owned(),
            )
            .await?;
        // A handler run that failed: retried with backoff, then dead (`dead_at` set).
        manager
            .create_table(
                tenant_table("event_failures")
                    .col(string_len("handler", 64))
                    .col(uuid("event_id"))
                    .col(string_len("event_type", 128))
                    .col(text("event"))
                    .col(integer("attempts"))
                    .col(text("last_error"))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(timestamp_with_time_zone_null("dead_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_event_failures_handler_event",
                "event_failures",
                &["handler", "event_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_event_failures_due",
                "event_failures",
                &["dead_at", "next_attempt_at"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("webhook_endpoints")
                    .col(string_len("url", 2048))
                    .col(string_len("description", 500))
                    .col(string_len("secret", 128))
                    .col(text("event_types"))
                    .col(boolean("enabled"))
                    .col(integer("consecutive_failures"))
                    .col(string_len_null("disabled_reason", 500))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_table("webhook_deliveries")
                    .col(uuid("endpoint_id"))
                    .col(uuid("event_id"))
                    .col(string_len("event_type", 128))
                    .col(text("payload"))
                    .col(string_len("status", 16))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(integer_null("last_status_code"))
                    .col(string_len_null("last_error", 500))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .foreign_key(&mut fk(
                        "webhook_deliveries",
                        "endpoint_id",
                        "webhook_endpoints",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_webhook_deliveries_endpoint_event",
                "webhook_deliveries",
                &["endpoint_id", "event_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_webhook_deliveries_due",
                "webhook_deliveries",
                &["status", "next_attempt_at"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("webhook_attempts")
                    .col(uuid("delivery_id"))
                    .col(integer_null("status_code"))
                    .col(string_len_null("error", 500))
                    .col(big_integer("duration_ms"))
                    .foreign_key(&mut fk(
                        "webhook_attempts",
                        "delivery_id",
                        "webhook_deliveries",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_webhook_attempts_delivery",
                "webhook_attempts",
                &["delivery_id", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("mail_queue")
                    .col(uuid("event_id"))
                    .col(string_len("template", 64))
                    .col(string_len("to_address", 320))
                    .col(string_len("subject", 500))
                    .col(text("text_body"))
                    .col(text("html_body"))
                    .col(string_len("status", 16))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(string_len_null("last_error", 500))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_mail_queue_event_template",
                "mail_queue",
                &["event_id", "template"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_mail_queue_due",
                "mail_queue",
                &["status", "next_attempt_at"],
            ))
            .await?;

        // Projections (read models owned by the consumer).
        manager
            .create_table(
                tenant_join_table("proj_catalog_changes")
                    .col(string_len("day", 10))
                    .col(string_len("aggregate_type", 64))
                    .col(big_integer("changes"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("day")
                            .col("aggregate_type"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_join_table("proj_account_counts")
                    .col(big_integer("customers"))
                    .col(big_integer("companies"))
                    .col(big_integer("company_users"))
                    .primary_key(Index::create().col("tenant_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_join_table("proj_cart_activity")
                    // The nil UUID stands for carts without a company (customers, guests).
                    .col(uuid("company_id"))
                    .col(string_len("day", 10))
                    .col(big_integer("carts_created"))
                    .col(big_integer("line_changes"))
                    .col(big_integer("events"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("company_id")
                            .col("day"),
                    )
                    .to_owned(),
            )
            .await?;

        for (table, column) in [
            ("inbox", "tenant_id"),
            ("event_failures", "tenant_id"),
            ("webhook_endpoints", "tenant_id"),
            ("webhook_deliveries", "tenant_id"),
            ("webhook_attempts", "tenant_id"),
            ("mail_queue", "tenant_id"),
            ("proj_catalog_changes", "tenant_id"),
            ("proj_account_counts", "tenant_id"),
            ("proj_cart_activity", "tenant_id"),
        ] {
            crate::rls::enable(manager, table, column).await?;
        }

        if manager.get_database_backend() == DbBackend::Postgres {
            let conn = manager.get_connection();
            conn.execute_unprepared(
                "CREATE FUNCTION vectis_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_notify('vectis_outbox', ''); RETURN NULL; END $$",
            )
            .await?;
            conn.execute_unprepared(
                "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox \
                 FOR EACH STATEMENT EXECUTE FUNCTION vectis_outbox_notify()",
            )
            .await?;
        }
        Ok(())
    }
}
