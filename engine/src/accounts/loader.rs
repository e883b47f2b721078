//! Batch loaders for account and company relations, one per request and tenant.

use std::collections::HashMap;

use uuid::Uuid;

use super::service::AddressEntry;
use super::{AccountsService, Customer};
use crate::companies::CompaniesService;
use crate::companies::entity::location;
use crate::companies::service::Member;
use crate::tenancy::TenantId;

/// Loads customers, address books and company locations for one tenant.
pub struct AccountsLoader {
    accounts: AccountsService,
    companies: CompaniesService,
    tenant: TenantId,
}

impl AccountsLoader {
    /// A loader for `tenant`.
    pub fn new(accounts: AccountsService, companies: CompaniesService, tenant: TenantId) -> Self {
        AccountsLoader {
            accounts,
            companies,
            tenant,
        }
    }
}

/// Customer by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomerById(pub Uuid);
/// Address book of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressesOfCustomer(pub Uuid);
/// Locations of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocationsOfCompany(pub Uuid);
/// Users of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembersOfCompany(pub Uuid);

impl async_graphql::dataloader::Loader<MembersOfCompany> for AccountsLoader {
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

impl async_graphql::dataloader::Loader<CustomerById> for AccountsLoader {
    type Value = Customer;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[CustomerById],
    ) -> Result<HashMap<CustomerById, Customer>, Self::Error> {
        let rows = self
            .accounts
            .customers(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        Ok(rows.into_iter().map(|c| (CustomerById(c.id), c)).collect())
    }
}

impl async_graphql::dataloader::Loader<AddressesOfCustomer> for AccountsLoader {
    type Value = Vec<AddressEntry>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[AddressesOfCustomer],
    ) -> Result<HashMap<AddressesOfCustomer, Vec<AddressEntry>>, Self::Error> {
        let rows = self
            .accounts
            .addresses_of(self.tenant, keys.iter().map(|k| k.0).collect())
            .await?;
        let mut out: HashMap<AddressesOfCustomer, Vec<AddressEntry>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (customer, entry) in rows {
            out.entry(AddressesOfCustomer(customer))
                .or_default()
                .push(entry);
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<LocationsOfCompany> for AccountsLoader {
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

/// The request's accounts loader.
pub type AccountsDataLoader = async_graphql::dataloader::DataLoader<AccountsLoader>;

/// Company memberships of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembershipsOfCustomer(pub Uuid);

impl async_graphql::dataloader::Loader<MembershipsOfCustomer> for AccountsLoader {
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

impl async_graphql::dataloader::Loader<SalesRepsOfCompany> for AccountsLoader {
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
