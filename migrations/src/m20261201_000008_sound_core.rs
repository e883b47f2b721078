//! A sound core: invitations remember what kind of principal sent them (so an invitation dies
//! with its inviter's rights), one-time tokens for account emails move out of events into the
//! notifications module's own table, and the tokens already recorded in the outbox are erased.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::util::{tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `staff`, `customer` or `api_key`; NULL for invitations sent before this migration
        // (treated as sent by staff).
        manager
            .alter_table(
                Table::alter()
                    .table("company_invitations")
                    .add_column(string_len_null("inviter_kind", 16))
                    .to_owned(),
            )
            .await?;
        // Staff users get a version: the sequence of their events.
        manager
            .alter_table(
                Table::alter()
                    .table("staff_users")
                    .add_column(big_integer("version").default(1))
                    .to_owned(),
            )
            .await?;
        // The one-time secret of an account email, written with the event that asks for the
        // email and deleted when the email is queued: the raw token never travels in an event.
        manager
            .create_table(
                tenant_table("mail_tokens")
                    .col(uuid("event_id"))
                    .col(text("token"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_mail_tokens_event", "mail_tokens", &["event_id"]))
            .await?;
        crate::rls::enable(manager, "mail_tokens", "tenant_id").await?;

        let conn = manager.get_connection();
        let scrub = if manager.get_database_backend() == DbBackend::Postgres {
            // The outbox is under row-level security: system mode for this one statement.
            "DO $$ BEGIN \
               PERFORM set_config('app.system', 'on', true); \
               UPDATE outbox SET data = data - 'token' WHERE data ? 'token'; \
               PERFORM set_config('app.system', 'off', true); \
             END $$"
        } else {
            "UPDATE outbox SET data = json_remove(data, '$.token') \
             WHERE json_extract(data, '$.token') IS NOT NULL"
        };
        conn.execute_unprepared(scrub).await?;
        Ok(())
    }
}
