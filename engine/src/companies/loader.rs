//! Batch loaders for company relations (users, locations, memberships of customers, sales
//! reps), one per request and tenant.

use std::collections::HashMap;

use async_graphql::Context;
use uuid::Uuid;

use super::CompaniesService;
use super::entity::location;
use super::service::Member;
use crate::kernel::TenantId;

/// Loads company relations for one tenant.
pub struct CompaniesLoader {
    companies: CompaniesService,
    tenant: TenantId,
}

impl CompaniesLoader {
    /// A loader for `tenant`.
    pub fn new(companies: CompaniesService, tenant: TenantId) -> Self {
        CompaniesLoader { companies, tenant }
    }
}

/// The request's companies loader.
pub type CompaniesDataLoader = async_graphql::dataloader::DataLoader<CompaniesLoader>;

/// The request's companies loader (`UNAUTHENTICATED` without a caller).
pub fn companies_loader<'a>(
    ctx: &'a Context<'_>,
) -> async_graphql::Result<&'a CompaniesDataLoader> {
    crate::graphql::context::caller(ctx)?;
    ctx.data::<CompaniesDataLoader>()
}

/// Locations of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocationsOfCompany(pub Uuid);
/// Users of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembersOfCompany(pub Uuid);

impl async_graphql::dataloader::Loader<MembersOfCompany> for CompaniesLoader {
    type Value = Vec<Member>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[MembersOfCompany],
    ) -> Result<HashMap<MembersOfCompany, Vec<Member>>, Self::Error> {
        let rows = self
            .companies
            .members_of(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        let mut out: HashMap<MembersOfCompany, Vec<Member>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MembersOfCompany(row.company_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<LocationsOfCompany> for CompaniesLoader {
    type Value = Vec<location::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[LocationsOfCompany],
    ) -> Result<HashMap<LocationsOfCompany, Vec<location::Model>>, Self::Error> {
        let rows = self
            .companies
            .locations(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        let mut out: HashMap<LocationsOfCompany, Vec<location::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(LocationsOfCompany(row.company_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// Company memberships of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembershipsOfCustomer(pub Uuid);

impl async_graphql::dataloader::Loader<MembershipsOfCustomer> for CompaniesLoader {
    type Value = Vec<Member>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[MembershipsOfCustomer],
    ) -> Result<HashMap<MembershipsOfCustomer, Vec<Member>>, Self::Error> {
        let rows = self
            .companies
            .memberships_of_many(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        let mut out: HashMap<MembershipsOfCustomer, Vec<Member>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MembershipsOfCustomer(row.customer_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// Sales reps of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SalesRepsOfCompany(pub Uuid);

impl async_graphql::dataloader::Loader<SalesRepsOfCompany> for CompaniesLoader {
    type Value = Vec<Uuid>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[SalesRepsOfCompany],
    ) -> Result<HashMap<SalesRepsOfCompany, Vec<Uuid>>, Self::Error> {
        let rows = self
            .companies
            .sales_reps_of(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        let mut out: HashMap<SalesRepsOfCompany, Vec<Uuid>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (company, staff) in rows {
            out.entry(SalesRepsOfCompany(company))
                .or_default()
                .push(staff);
        }
        Ok(out)
    }
}
