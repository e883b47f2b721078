//! Projections: read models the consumer builds from events, queryable through GraphQL.
//!
//! Each projection is an upsert of counters in the handler's transaction (with the inbox row),
//! so a redelivered event never counts twice. They are sums, so the order of events does not
//! change the result. Order and sales projections slot in the same way: a table, a `match`
//! arm in [`Projections::handle`], a query.
//!
//! - catalog change feed: catalog events per day and aggregate type;
//! - account counts: customers, companies and company users of the tenant;
//! - cart activity: carts created, line changes and cart events per company and day.

pub mod entity;
pub mod graphql;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::error::AppResult;
use crate::events::Core;
use crate::events::envelope::{Envelope, topic_family};
use crate::events::pipeline::Handler;
use crate::kernel::TenantId;
use entity::{account_counts, cart_activity, catalog_changes};

/// The projections handler.
pub struct Projections;

#[async_trait]
impl Handler for Projections {
    fn name(&self) -> &str {
        "projections"
    }

    fn wants(&self, event: &Envelope) -> bool {
        topic_family(&event.aggregatetype) == "catalog"
            || event.event_type.starts_with("vectis.cart.")
            || matches!(
                event.event_type.as_str(),
                "vectis.account.registered"
                    | "vectis.company.created"
                    | "vectis.company.user_joined"
                    | "vectis.company.user_removed"
            )
    }

    async fn handle(&self, tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        let day = event.time.format("%Y-%m-%d").to_string();
        if topic_family(&event.aggregatetype) == "catalog" {
            catalog_changes::Entity::insert(catalog_changes::ActiveModel {
                tenant_id: Set(event.tenantid),
                day: Set(day),
                aggregate_type: Set(event.aggregatetype.clone()),
                changes: Set(1),
            })
            .on_conflict(
                OnConflict::columns([
                    catalog_changes::Column::TenantId,
                    catalog_changes::Column::Day,
                    catalog_changes::Column::AggregateType,
                ])
                .value(
                    catalog_changes::Column::Changes,
                    Expr::cust("proj_catalog_changes.changes + 1"),
                )
                .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
            return Ok(());
        }
        if event.event_type.starts_with("vectis.cart.") {
            let company = event
                .data
                .get("companyId")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(Uuid::nil());
            let created = i64::from(event.event_type == "vectis.cart.created");
            let lines = i64::from(event.event_type.starts_with("vectis.cart.lines_"));
            cart_activity::Entity::insert(cart_activity::ActiveModel {
                tenant_id: Set(event.tenantid),
                company_id: Set(company),
                day: Set(day),
                carts_created: Set(created),
                line_changes: Set(lines),
                events: Set(1),
            })
            .on_conflict(
                OnConflict::columns([
                    cart_activity::Column::TenantId,
                    cart_activity::Column::CompanyId,
                    cart_activity::Column::Day,
                ])
                .values([
                    (
                        cart_activity::Column::CartsCreated,
                        Expr::cust(format!("proj_cart_activity.carts_created + {created}")),
                    ),
                    (
                        cart_activity::Column::LineChanges,
                        Expr::cust(format!("proj_cart_activity.line_changes + {lines}")),
                    ),
                    (
                        cart_activity::Column::Events,
                        Expr::cust("proj_cart_activity.events + 1"),
                    ),
                ])
                .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
            return Ok(());
        }
        let (customers, companies, users) = match event.event_type.as_str() {
            "vectis.account.registered" => (1, 0, 0),
            "vectis.company.created" => (0, 1, 0),
            "vectis.company.user_joined" => (0, 0, 1),
            "vectis.company.user_removed" => (0, 0, -1),
            _ => return Ok(()),
        };
        account_counts::Entity::insert(account_counts::ActiveModel {
            tenant_id: Set(event.tenantid),
            customers: Set(customers),
            companies: Set(companies),
            company_users: Set(users),
        })
        .on_conflict(
            OnConflict::column(account_counts::Column::TenantId)
                .values([
                    (
                        account_counts::Column::Customers,
                        Expr::cust(format!("proj_account_counts.customers + {customers}")),
                    ),
                    (
                        account_counts::Column::Companies,
                        Expr::cust(format!("proj_account_counts.companies + {companies}")),
                    ),
                    (
                        account_counts::Column::CompanyUsers,
                        Expr::cust(format!("proj_account_counts.company_users + {users}")),
                    ),
                ])
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
        Ok(())
    }
}

/// Reads the projections.
#[derive(Clone)]
pub struct ProjectionsService {
    core: Core,
}

impl ProjectionsService {
    /// The service.
    pub fn new(core: Core) -> Self {
        ProjectionsService { core }
    }

    fn since(days: u32) -> String {
        (Utc::now() - Duration::days(i64::from(days.saturating_sub(1))))
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Catalog changes of the last `days` days (today included), oldest first.
    pub async fn catalog_changes(
        &self,
        tenant: TenantId,
        days: u32,
    ) -> AppResult<Vec<catalog_changes::Model>> {
        let since = Self::since(days);
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(catalog_changes::Entity::find()
                        .filter(catalog_changes::Column::TenantId.eq(tenant.0))
                        .filter(catalog_changes::Column::Day.gte(since))
                        .order_by_asc(catalog_changes::Column::Day)
                        .order_by_asc(catalog_changes::Column::AggregateType)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// The tenant's account counts (zeros before the first account event).
    pub async fn account_counts(&self, tenant: TenantId) -> AppResult<account_counts::Model> {
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(account_counts::Entity::find_by_id(tenant.0)
                        .one(tx)
                        .await?
                        .unwrap_or(account_counts::Model {
                            tenant_id: tenant.0,
                            customers: 0,
                            companies: 0,
                            company_users: 0,
                        }))
                })
            })
            .await
    }

    /// Cart activity of the last `days` days, per company (`None`: carts without a company
    /// are the nil id), oldest first.
    pub async fn cart_activity(
        &self,
        tenant: TenantId,
        days: u32,
        company: Option<Uuid>,
    ) -> AppResult<Vec<cart_activity::Model>> {
        let since = Self::since(days);
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let mut query = cart_activity::Entity::find()
                        .filter(cart_activity::Column::TenantId.eq(tenant.0))
                        .filter(cart_activity::Column::Day.gte(since));
                    if let Some(company) = company {
                        query = query.filter(cart_activity::Column::CompanyId.eq(company));
                    }
                    Ok(query
                        .order_by_asc(cart_activity::Column::Day)
                        .order_by_asc(cart_activity::Column::CompanyId)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}
