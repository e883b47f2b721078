//! Approvals: rules per company (a condition on the order and the roles that approve, in
//! tiers), an approval flow per held order with every decision, a monthly spending limit on
//! company users and their spend per calendar month; mail to many recipients of one event.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "approval_rules",
    "approval_flows",
    "approval_decisions",
    "member_spend",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("approval_rules")
                    .col(uuid("company_id"))
                    .col(string_len("name", 200))
                    .col(boolean("active"))
                    // JSON: totalAbove, collectionIds, locationIds, buyerRoles, paymentMethods
                    .col(text("condition"))
                    // JSON: [[{role, count}]]
                    .col(text("tiers"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "approval_rules",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_approval_rules_company",
                "approval_rules",
                &["tenant_id", "company_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("approval_flows")
                    .col(uuid("order_id"))
                    .col(uuid("company_id"))
                    .col(uuid_null("location_id"))
                    .col(uuid_null("buyer_id"))
                    // Pending, Approved, Rejected
                    .col(string_len("state", 16))
                    // JSON: [{ruleId, reason, tiers}]
                    .col(text("requirements"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "approval_flows",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_approval_flows_order",
                "approval_flows",
                &["order_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_approval_flows_state",
                "approval_flows",
                &["tenant_id", "state", "company_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("approval_decisions")
                    .col(uuid("flow_id"))
                    .col(uuid("order_id"))
                    .col(integer("requirement"))
                    .col(integer("tier"))
                    .col(uuid("approver_id"))
                    .col(string_len("role", 64))
                    // approved, rejected
                    .col(string_len("decision", 16))
                    .col(string_len_null("comment", 1000))
                    .foreign_key(&mut fk(
                        "approval_decisions",
                        "flow_id",
                        "approval_flows",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        // One decision per approver and requirement of a flow.
        manager
            .create_index(unique(
                "uq_approval_decisions_approver",
                "approval_decisions",
                &["flow_id", "approver_id", "requirement"],
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("company_members")
                    .add_column(big_integer_null("monthly_spending_limit"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_table("member_spend")
                    .col(uuid("member_id"))
                    // YYYY-MM (UTC)
                    .col(string_len("month", 7))
                    .col(string_len("currency", 3))
                    .col(big_integer("amount"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_member_spend_month",
                "member_spend",
                &["member_id", "month", "currency"],
            ))
            .await?;
        // One email per event, template and recipient (approvers are many).
        manager
            .drop_index(
                Index::drop()
                    .name("uq_mail_queue_event_template")
                    .table("mail_queue")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_mail_queue_event_template_to",
                "mail_queue",
                &["event_id", "template", "to_address"],
            ))
            .await?;
        for table in TABLES {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
