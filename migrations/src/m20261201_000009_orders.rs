//! Orders: what a placed order freezes (its code, placement time, addresses, purchase-order
//! number, payment method, the guest's email, the idempotency key it was placed with), its
//! history of transitions, its payments, and a per-tenant sequence for order codes. State
//! names follow the order process (`Cart`, `Placed`, …).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::util::{index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for column in [
            string_len_null("code", 64),
            timestamp_with_time_zone_null("placed_at"),
            text_null("billing_address"),
            string_len_null("po_number", 100),
            string_len_null("payment_method", 64),
            string_len_null("idempotency_key", 200),
            string_len_null("customer_email", 320),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table("orders")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(unique(
                "uq_orders_tenant_code",
                "orders",
                &["tenant_id", "code"],
            ))
            .await?;
        manager
            .create_index(unique(
                "uq_orders_tenant_idempotency_key",
                "orders",
                &["tenant_id", "idempotency_key"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_tenant_state_placed",
                "orders",
                &["tenant_id", "state", "placed_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_tenant_company",
                "orders",
                &["tenant_id", "company_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("order_transitions")
                    .col(uuid("order_id"))
                    .col(string_len("from_state", 64))
                    .col(string_len("to_state", 64))
                    .col(uuid_null("actor_id"))
                    .col(uuid_null("acting_staff_id"))
                    .col(string_len_null("reason", 500))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_order_transitions_order",
                "order_transitions",
                &["order_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("payments")
                    .col(uuid("order_id"))
                    .col(string_len("method", 64))
                    .col(string_len("state", 32))
                    .col(string_len("currency", 3))
                    .col(big_integer("amount"))
                    .col(big_integer("settled_amount"))
                    .col(big_integer("refunded_amount"))
                    .col(string_len_null("transaction_id", 200))
                    .col(text("metadata"))
                    .col(string_len_null("message", 500))
                    .col(timestamp_with_time_zone_null("due_at"))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ix_payments_order", "payments", &["order_id"]))
            .await?;
        manager
            .create_table(
                tenant_join_table("order_sequences")
                    .col(big_integer("next"))
                    .primary_key(Index::create().col("tenant_id"))
                    .to_owned(),
            )
            .await?;
        for table in ["order_transitions", "payments", "order_sequences"] {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }

        // Carts take the order process's state name.
        let conn = manager.get_connection();
        let rename = if manager.get_database_backend() == DbBackend::Postgres {
            "DO $$ BEGIN \
               PERFORM set_config('app.system', 'on', true); \
               UPDATE orders SET state = 'Cart' WHERE state = 'cart'; \
               PERFORM set_config('app.system', 'off', true); \
             END $$"
        } else {
            "UPDATE orders SET state = 'Cart' WHERE state = 'cart'"
        };
        conn.execute_unprepared(rename).await?;
        Ok(())
    }
}
