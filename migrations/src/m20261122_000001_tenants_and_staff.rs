use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{index, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenants")
                    .col(pk_uuid("id"))
                    .col(string_len("slug", 64))
                    .col(string_len("name", 200))
                    .col(string_len("storefront_key_hash", 64))
                    .col(char_len("default_currency", 3))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_tenants_slug", "tenants", &["slug"]))
            .await?;
        manager
            .create_index(unique(
                "uq_tenants_storefront_key_hash",
                "tenants",
                &["storefront_key_hash"],
            ))
            .await?;
        crate::rls::enable(manager, "tenants", "id").await?;

        manager
            .create_table(
                tenant_table("staff_users")
                    .col(string_len("email", 320))
                    .col(string_len("display_name", 200))
                    .col(text("password_hash"))
                    .col(text("roles"))
                    .col(text("permissions"))
                    .col(boolean("active"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_staff_users_tenant_email",
                "staff_users",
                &["tenant_id", "email"],
            ))
            .await?;
        crate::rls::enable(manager, "staff_users", "tenant_id").await?;

        manager
            .create_table(
                tenant_table("refresh_tokens")
                    .col(string_len("principal_kind", 16))
                    .col(uuid("principal_id"))
                    .col(uuid_null("company_id"))
                    .col(uuid_null("location_id"))
                    .col(uuid_null("acting_staff_id"))
                    .col(uuid("family_id"))
                    .col(string_len("token_hash", 64))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_refresh_tokens_token_hash",
                "refresh_tokens",
                &["token_hash"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_refresh_tokens_family",
                "refresh_tokens",
                &["tenant_id", "family_id"],
            ))
            .await?;
        crate::rls::enable(manager, "refresh_tokens", "tenant_id").await
    }
}
