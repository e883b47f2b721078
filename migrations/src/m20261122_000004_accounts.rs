//! Identity and B2B accounts: customers, customer groups, addresses, email tokens, companies
//! (a hierarchy) with locations, custom roles, members, invitations, sales-rep assignments and
//! API keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "customer_groups",
    "customers",
    "customer_addresses",
    "email_tokens",
    "companies",
    "company_locations",
    "company_roles",
    "company_members",
    "company_invitations",
    "sales_rep_assignments",
    "api_keys",
];

fn address(table: TableCreateStatement) -> TableCreateStatement {
    let mut table = table;
    table
        .col(string_len("street_line1", 200))
        .col(string_len_null("street_line2", 200))
        .col(string_len("city", 100))
        .col(string_len("postal_code", 20))
        .col(string_len_null("region", 100))
        .col(char_len("country_code", 2));
    table
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("customer_groups")
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_customer_groups_tenant_code",
                "customer_groups",
                &["tenant_id", "code"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("customers")
                    .col(string_len("email", 320))
                    .col(text_null("password_hash"))
                    .col(string_len("first_name", 100))
                    .col(string_len("last_name", 100))
                    .col(string_len_null("phone", 40))
                    .col(uuid_null("customer_group_id"))
                    .col(timestamp_with_time_zone_null("email_verified_at"))
                    .col(string_len("status", 16))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "customers",
                        "customer_group_id",
                        "customer_groups",
                        ForeignKeyAction::SetNull,
                    ))
                    .check((
                        "ck_customers_status",
                        Expr::col("status").is_in(["active", "disabled"]),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_customers_tenant_email",
                "customers",
                &["tenant_id", "email"],
            ))
            .await?;

        manager
            .create_table(
                address(
                    tenant_table("customer_addresses")
                        .col(uuid("customer_id"))
                        .col(string_len("full_name", 200))
                        .col(string_len_null("company_name", 200))
                        .col(string_len_null("phone", 40))
                        .col(boolean("default_shipping"))
                        .col(boolean("default_billing"))
                        .foreign_key(&mut fk(
                            "customer_addresses",
                            "customer_id",
                            "customers",
                            ForeignKeyAction::Cascade,
                        ))
                        .to_owned(),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_customer_addresses_customer",
                "customer_addresses",
                &["tenant_id", "customer_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("email_tokens")
                    .col(uuid("customer_id"))
                    .col(string_len("purpose", 32))
                    .col(string_len("token_hash", 64))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(&mut fk(
                        "email_tokens",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_email_tokens_token_hash",
                "email_tokens",
                &["token_hash"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("companies")
                    .col(uuid_null("parent_id"))
                    .col(uuid("root_id"))
                    .col(string_len("name", 200))
                    .col(string_len_null("vat_id", 20))
                    .col(boolean_null("tax_exempt"))
                    .col(string_len_null("payment_terms", 16))
                    .col(big_integer_null("credit_limit"))
                    .col(char_len_null("credit_currency", 3))
                    .col(big_integer("credit_exposure"))
                    .col(uuid_null("customer_group_id"))
                    .col(string_len("status", 16))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "companies",
                        "parent_id",
                        "companies",
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut fk(
                        "companies",
                        "customer_group_id",
                        "customer_groups",
                        ForeignKeyAction::SetNull,
                    ))
                    .check((
                        "ck_companies_payment_terms",
                        Expr::col("payment_terms")
                            .is_null()
                            .or(Expr::col("payment_terms")
                                .is_in(["prepaid", "net15", "net30", "net60"])),
                    ))
                    .check((
                        "ck_companies_credit_limit_non_negative",
                        Expr::col("credit_limit")
                            .is_null()
                            .or(Expr::col("credit_limit").gte(0)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_companies_root",
                "companies",
                &["tenant_id", "root_id"],
            ))
            .await?;

        manager
            .create_table(
                address(
                    tenant_table("company_locations")
                        .col(uuid("company_id"))
                        .col(string_len("name", 200))
                        .col(boolean("is_shipping"))
                        .col(boolean("is_billing"))
                        .col(string_len_null("vat_id", 20))
                        .col(boolean_null("tax_exempt"))
                        .col(string_len_null("payment_terms", 16))
                        .col(string_len("status", 16))
                        .col(big_integer("version"))
                        .foreign_key(&mut fk(
                            "company_locations",
                            "company_id",
                            "companies",
                            ForeignKeyAction::Cascade,
                        ))
                        .to_owned(),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_company_locations_company",
                "company_locations",
                &["tenant_id", "company_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("company_roles")
                    .col(uuid("company_id"))
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(text("permissions"))
                    .foreign_key(&mut fk(
                        "company_roles",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_company_roles_company_code",
                "company_roles",
                &["company_id", "code"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("company_members")
                    .col(uuid("company_id"))
                    .col(uuid("customer_id"))
                    .col(text("roles"))
                    .col(text("location_ids"))
                    .col(big_integer_null("spending_limit"))
                    .col(char_len_null("spending_currency", 3))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "company_members",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "company_members",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_company_members_company_customer",
                "company_members",
                &["company_id", "customer_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_company_members_customer",
                "company_members",
                &["tenant_id", "customer_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("company_invitations")
                    .col(uuid("company_id"))
                    .col(string_len("email", 320))
                    .col(text("roles"))
                    .col(text("location_ids"))
                    .col(string_len("token_hash", 64))
                    .col(uuid_null("invited_by"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("accepted_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(&mut fk(
                        "company_invitations",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_company_invitations_token_hash",
                "company_invitations",
                &["token_hash"],
            ))
            .await?;

        manager
            .create_table(
                tenant_join_table("sales_rep_assignments")
                    .col(uuid("staff_user_id"))
                    .col(uuid("company_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(
                        Index::create()
                            .name("pk_sales_rep_assignments")
                            .col("staff_user_id")
                            .col("company_id"),
                    )
                    .foreign_key(&mut fk(
                        "sales_rep_assignments",
                        "staff_user_id",
                        "staff_users",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "sales_rep_assignments",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_sales_rep_assignments_company",
                "sales_rep_assignments",
                &["tenant_id", "company_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("api_keys")
                    .col(string_len("name", 200))
                    .col(string_len("prefix", 16))
                    .col(string_len("key_hash", 64))
                    .col(text("permissions"))
                    .col(uuid_null("created_by"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_api_keys_key_hash", "api_keys", &["key_hash"]))
            .await?;

        for table in TABLES {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
