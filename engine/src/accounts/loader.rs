//! Batch loaders for customers and their address books, one per request and tenant.

use std::collections::HashMap;

use uuid::Uuid;

use async_graphql::Context;

use super::service::AddressEntry;
use super::{AccountsService, Customer};
use crate::kernel::TenantId;

/// Loads customers and address books for one tenant.
pub struct AccountsLoader {
    accounts: AccountsService,
    tenant: TenantId,
}

impl AccountsLoader {
    /// A loader for `tenant`.
    pub fn new(accounts: AccountsService, tenant: TenantId) -> Self {
        AccountsLoader { accounts, tenant }
    }
}

/// Customer by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomerById(pub Uuid);
/// Address book of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressesOfCustomer(pub Uuid);
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

/// The request's accounts loader.
pub type AccountsDataLoader = async_graphql::dataloader::DataLoader<AccountsLoader>;

/// The request's accounts loader (`UNAUTHENTICATED` without a caller).
pub fn accounts_loader<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a AccountsDataLoader> {
    crate::graphql::context::caller(ctx)?;
    ctx.data::<AccountsDataLoader>()
}
