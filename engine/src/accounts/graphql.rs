//! Accounts GraphQL: registration, email verification, password reset, address book,
//! customer groups and the staff view of customers.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::Customer;
use super::loader::{AddressesOfCustomer, CustomerById};
use super::service::{AddressEntry, AddressInput, CustomerGroup, NewCustomer};
use crate::accounts::loader::accounts_loader;
use crate::auth::Permission;
use crate::companies::graphql::CompanyUserObject;
use crate::companies::loader::{MembershipsOfCustomer, companies_loader};
use crate::graphql::address::PostalAddressInput;
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::parse_id;

/// The customer of a company membership: customers are this module's, so it resolves here.
#[async_graphql::ComplexObject]
impl CompanyUserObject {
    /// The customer.
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<CustomerObject>> {
        Ok(accounts_loader(ctx)?
            .load_one(CustomerById(self.member.customer_id))
            .await?
            .map(CustomerObject))
    }
}

/// A customer: a B2C shopper or a B2B contact who may belong to companies.
pub struct CustomerObject(pub Customer);

#[Object(name = "Customer")]
impl CustomerObject {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Email.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// First name.
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    /// Last name.
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    /// Phone.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Whether the email was verified.
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }
    /// Whether the customer may log in.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Registration time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The customer group id (pricing scope).
    async fn customer_group_id(&self) -> Option<ID> {
        self.0.customer_group_id.map(|g| ID(g.to_string()))
    }
    /// The address book (the customer themselves, or staff with `CUSTOMER_READ`).
    async fn addresses(&self, ctx: &Context<'_>) -> Result<Vec<AddressObject>> {
        let caller = caller(ctx)?;
        let own = caller
            .require_customer()
            .is_ok_and(|(id, _)| id == self.0.id);
        if !own {
            caller.require(Permission::CustomerRead)?;
        }
        let rows = accounts_loader(ctx)?
            .load_one(AddressesOfCustomer(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(AddressObject).collect())
    }
    /// Company memberships (the customer themselves, or staff with `CUSTOMER_READ`).
    async fn companies(&self, ctx: &Context<'_>) -> Result<Vec<CompanyUserObject>> {
        let caller = caller(ctx)?;
        let own = caller
            .require_customer()
            .is_ok_and(|(id, _)| id == self.0.id);
        if !own {
            caller.require(Permission::CustomerRead)?;
        }
        let rows = companies_loader(ctx)?
            .load_one(MembershipsOfCustomer(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(CompanyUserObject::from).collect())
    }
}

/// A postal address with its label fields.
pub struct AddressObject(pub AddressEntry);

#[Object(name = "Address")]
impl AddressObject {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Recipient.
    async fn full_name(&self) -> &str {
        &self.0.full_name
    }
    /// Company on the label.
    async fn company_name(&self) -> Option<&str> {
        self.0.company_name.as_deref()
    }
    /// Phone.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Default shipping address.
    async fn default_shipping(&self) -> bool {
        self.0.default_shipping
    }
    /// Default billing address.
    async fn default_billing(&self) -> bool {
        self.0.default_billing
    }
    /// First street line.
    async fn street_line1(&self) -> &str {
        &self.0.address.street_line1
    }
    /// Second street line.
    async fn street_line2(&self) -> Option<&str> {
        self.0.address.street_line2.as_deref()
    }
    /// City.
    async fn city(&self) -> &str {
        &self.0.address.city
    }
    /// Postal code.
    async fn postal_code(&self) -> &str {
        &self.0.address.postal_code
    }
    /// Region.
    async fn region(&self) -> Option<&str> {
        self.0.address.region.as_deref()
    }
    /// ISO 3166-1 alpha-2 country code.
    async fn country_code(&self) -> &str {
        &self.0.address.country_code
    }
}

/// A customer group.
#[derive(SimpleObject)]
#[graphql(name = "CustomerGroup")]
pub struct CustomerGroupObject {
    /// Id.
    pub id: ID,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
}

impl From<CustomerGroup> for CustomerGroupObject {
    fn from(g: CustomerGroup) -> Self {
        CustomerGroupObject {
            id: ID(g.id.to_string()),
            code: g.code,
            name: g.name,
        }
    }
}

/// Input of `saveAddress`.
#[derive(InputObject)]
pub struct AddressBookInput {
    /// Recipient.
    pub full_name: String,
    /// Company on the label.
    pub company_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Make it the default shipping address.
    #[graphql(default = false)]
    pub default_shipping: bool,
    /// Make it the default billing address.
    #[graphql(default = false)]
    pub default_billing: bool,
    /// The address.
    pub address: PostalAddressInput,
}

/// Input of `registerCustomer`.
#[derive(InputObject)]
pub struct RegisterCustomerInput {
    /// Email.
    pub email: String,
    /// Password: 8-256 characters with a letter and a digit or symbol.
    pub password: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone.
    pub phone: Option<String>,
}

/// Input of `createCustomer`.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// Email.
    pub email: String,
    /// Initial password (optional).
    pub password: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone.
    pub phone: Option<String>,
}

/// Fields of a customer page beyond edges and page info.
#[derive(SimpleObject)]
pub struct CustomerConnectionFields {
    /// Customers matching the filter on all pages.
    pub total_count: u64,
}

/// Accounts queries.
#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// Customers for staff (`CUSTOMER_READ`), oldest first; `search` matches email or last name.
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<Connection<IdCursor, CustomerObject, CustomerConnectionFields>> {
        let caller = require(ctx, Permission::CustomerRead)?;
        let request = page_request(first, after.as_deref(), 100)?;
        let page = services(ctx).accounts.list(caller, search, request).await?;
        let total_count = page.total;
        Ok(connection(
            &request,
            page,
            |c| c.id,
            CustomerObject,
            CustomerConnectionFields { total_count },
        ))
    }

    /// A customer by id (`CUSTOMER_READ`).
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CustomerObject>> {
        let caller = require(ctx, Permission::CustomerRead)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx)
            .accounts
            .customer(caller.tenant, id)
            .await?
            .map(CustomerObject))
    }

    /// Customer groups (`CUSTOMER_READ`).
    async fn customer_groups(&self, ctx: &Context<'_>) -> Result<Vec<CustomerGroupObject>> {
        let caller = require(ctx, Permission::CustomerRead)?;
        Ok(services(ctx)
            .accounts
            .groups(caller.tenant)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// Accounts mutations.
#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Registers a customer in the storefront's tenant and sends a verification email.
    async fn register_customer(
        &self,
        ctx: &Context<'_>,
        input: RegisterCustomerInput,
    ) -> Result<CustomerObject> {
        let caller = caller(ctx)?;
        let created = services(ctx)
            .accounts
            .register(
                caller.tenant,
                NewCustomer {
                    email: input.email,
                    password: Some(input.password),
                    first_name: input.first_name,
                    last_name: input.last_name,
                    phone: input.phone,
                },
            )
            .await?;
        Ok(CustomerObject(created))
    }

    /// Creates a customer for staff (`CUSTOMER_WRITE`). Without a password the customer sets
    /// one through `requestPasswordReset`.
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> Result<CustomerObject> {
        let caller = require(ctx, Permission::CustomerWrite)?;
        let created = services(ctx)
            .accounts
            .create_customer(
                caller,
                NewCustomer {
                    email: input.email,
                    password: input.password,
                    first_name: input.first_name,
                    last_name: input.last_name,
                    phone: input.phone,
                },
            )
            .await?;
        Ok(CustomerObject(created))
    }

    /// Verifies an email with the token from the verification email.
    async fn verify_customer_email(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> Result<CustomerObject> {
        Ok(CustomerObject(
            services(ctx).accounts.verify_email(&token).await?,
        ))
    }

    /// Sends a password-reset email if the address has an account. Always returns true.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let caller = caller(ctx)?;
        services(ctx)
            .accounts
            .request_password_reset(caller.tenant, &email)
            .await?;
        Ok(true)
    }

    /// Sets a new password with the token from the reset email; every session of the account
    /// ends (its refresh tokens stop working).
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> Result<bool> {
        services(ctx).auth.reset_password(&token, &password).await?;
        Ok(true)
    }

    /// Adds an address to the calling customer's address book, or replaces address `id`.
    async fn save_address(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        input: AddressBookInput,
    ) -> Result<AddressObject> {
        let caller = caller(ctx)?;
        let id = id.as_ref().map(|i| parse_id("id", i)).transpose()?;
        let saved = services(ctx)
            .accounts
            .save_address(
                caller,
                id,
                AddressInput {
                    full_name: input.full_name,
                    company_name: input.company_name,
                    phone: input.phone,
                    default_shipping: input.default_shipping,
                    default_billing: input.default_billing,
                    address: input.address.into(),
                },
            )
            .await?;
        Ok(AddressObject(saved))
    }

    /// Removes an address from the calling customer's address book.
    async fn delete_address(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        services(ctx).accounts.delete_address(caller, id).await?;
        Ok(true)
    }

    /// Creates a customer group (`CUSTOMER_WRITE`).
    async fn create_customer_group(
        &self,
        ctx: &Context<'_>,
        code: String,
        name: String,
    ) -> Result<CustomerGroupObject> {
        let caller = require(ctx, Permission::CustomerWrite)?;
        Ok(services(ctx)
            .accounts
            .create_group(caller, &code, &name)
            .await?
            .into())
    }

    /// Puts a customer into a group, or takes them out with `groupId: null` (`CUSTOMER_WRITE`).
    async fn set_customer_group(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        group_id: Option<ID>,
    ) -> Result<CustomerObject> {
        let caller = require(ctx, Permission::CustomerWrite)?;
        let customer = parse_id("customerId", &customer_id)?;
        let group = group_id
            .as_ref()
            .map(|g| parse_id("groupId", g))
            .transpose()?;
        Ok(CustomerObject(
            services(ctx)
                .accounts
                .set_group(caller, customer, group)
                .await?,
        ))
    }
}
