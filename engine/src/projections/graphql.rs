//! GraphQL over the projections (staff and API keys; eventually consistent with the writes).

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::entity::{account_counts, cart_activity, catalog_changes};
use crate::auth::Permission;
use crate::error::AppError;
use crate::graphql::context::{require, services};
use crate::graphql::ids::parse_id;
use crate::graphql::scalars::Int64;

/// Catalog events of one day and aggregate type.
#[derive(SimpleObject)]
pub struct CatalogChangeDay {
    /// Day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// `product`, `variant`, `collection` or `price_list`.
    pub aggregate_type: String,
    /// Number of changes.
    pub changes: Int64,
}

impl From<catalog_changes::Model> for CatalogChangeDay {
    fn from(m: catalog_changes::Model) -> Self {
        CatalogChangeDay {
            day: m.day,
            aggregate_type: m.aggregate_type,
            changes: Int64(m.changes),
        }
    }
}

/// Customers, companies and company users of the tenant.
#[derive(SimpleObject)]
pub struct AccountCounts {
    /// Registered customers.
    pub customers: Int64,
    /// Companies.
    pub companies: Int64,
    /// Company memberships.
    pub company_users: Int64,
}

impl From<account_counts::Model> for AccountCounts {
    fn from(m: account_counts::Model) -> Self {
        AccountCounts {
            customers: Int64(m.customers),
            companies: Int64(m.companies),
            company_users: Int64(m.company_users),
        }
    }
}

/// Cart activity of one company on one day.
#[derive(SimpleObject)]
pub struct CartActivityDay {
    /// Day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// The company; null for carts of customers without a company and guests.
    pub company_id: Option<ID>,
    /// Carts created.
    pub carts_created: Int64,
    /// Line additions, updates and removals (each a mutation, whatever its size).
    pub line_changes: Int64,
    /// Cart events of any kind.
    pub events: Int64,
}

impl From<cart_activity::Model> for CartActivityDay {
    fn from(m: cart_activity::Model) -> Self {
        CartActivityDay {
            day: m.day,
            company_id: (!m.company_id.is_nil()).then(|| ID(m.company_id.to_string())),
            carts_created: Int64(m.carts_created),
            line_changes: Int64(m.line_changes),
            events: Int64(m.events),
        }
    }
}

fn days(days: i32) -> Result<u32> {
    if !(1..=366).contains(&days) {
        return Err(AppError::validation("days", "must be between 1 and 366").into());
    }
    Ok(days as u32)
}

/// Projection queries.
#[derive(Default)]
pub struct ProjectionsQuery;

#[Object]
impl ProjectionsQuery {
    /// Catalog changes per day and aggregate type over the last `days` days (needs
    /// `CATALOG_READ`). Built by the event consumer: it trails the writes by moments.
    async fn catalog_change_feed(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> Result<Vec<CatalogChangeDay>> {
        let caller = require(ctx, Permission::CatalogRead)?;
        let days = self::days(days)?;
        let rows = services(ctx)
            .projections
            .catalog_changes(caller.tenant, days)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Customers, companies and company users (needs `CUSTOMER_READ`), built by the event
    /// consumer.
    async fn account_counts(&self, ctx: &Context<'_>) -> Result<AccountCounts> {
        let caller = require(ctx, Permission::CustomerRead)?;
        Ok(services(ctx)
            .projections
            .account_counts(caller.tenant)
            .await?
            .into())
    }

    /// Cart activity per company and day over the last `days` days, optionally for one
    /// company (needs `COMPANY_READ`), built by the event consumer.
    async fn cart_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
        company_id: Option<ID>,
    ) -> Result<Vec<CartActivityDay>> {
        let caller = require(ctx, Permission::CompanyRead)?;
        let days = self::days(days)?;
        let company = company_id
            .map(|id| parse_id("companyId", &id))
            .transpose()?;
        let rows = services(ctx)
            .projections
            .cart_activity(caller.tenant, days, company)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
