//! Companies GraphQL: companies and divisions, locations, company users, invitations, custom
//! roles, sales reps and impersonation.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::entity::location;
use super::loader::{LocationsOfCompany, MembersOfCompany, SalesRepsOfCompany, companies_loader};
use super::service::{
    CompanySettings, CompanyView, LocationInput, Member, MemberPatch, NewCompany, PaymentTerms,
};
use crate::auth::{CompanyPermission, Permission};
use crate::error::AppError;
use crate::graphql::address::PostalAddressInput;
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::{MoneyObject, PriceInput};

/// Company settings after inheritance from parent companies.
#[derive(SimpleObject)]
pub struct EffectiveCompanySettings {
    /// Payment terms (default `PREPAID`).
    pub payment_terms: PaymentTerms,
    /// Tax exemption.
    pub tax_exempt: bool,
    /// VAT id.
    pub vat_id: Option<String>,
    /// Customer group (pricing scope).
    pub customer_group_id: Option<ID>,
    /// Credit limit.
    pub credit_limit: Option<MoneyObject>,
    /// Current credit exposure.
    pub credit_exposure: Option<MoneyObject>,
    /// Limit minus exposure.
    pub available_credit: Option<MoneyObject>,
}

/// A company or division.
pub struct CompanyObject(pub CompanyView);

#[Object(name = "Company")]
impl CompanyObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.company.id)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.company.name
    }
    /// Parent company id (null for a root company).
    async fn parent_id(&self) -> Option<ID> {
        self.0.company.parent_id.map(id)
    }
    /// Parent company, when the caller may see it (a division's users do not see the parent).
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<CompanyObject>> {
        let Some(parent) = self.0.parent() else {
            return Ok(None);
        };
        let caller = caller(ctx)?;
        if caller.has(Permission::CompanyRead) || caller.has(Permission::CompanyWrite) {
            return Ok(Some(CompanyObject(parent)));
        }
        match services(ctx)
            .companies
            .company(caller, parent.company.id)
            .await
        {
            Ok(view) => Ok(Some(CompanyObject(view))),
            Err(AppError::NotFound { .. } | AppError::Forbidden(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
    /// Divisions.
    async fn children(&self) -> Vec<CompanyObject> {
        self.0
            .children()
            .into_iter()
            .map(|c| CompanyObject(self.0.sibling_view(c)))
            .collect()
    }
    /// VAT id set on this company (not inherited).
    async fn vat_id(&self) -> Option<&str> {
        self.0.company.vat_id.as_deref()
    }
    /// Tax exemption set on this company (null inherits).
    async fn tax_exempt(&self) -> Option<bool> {
        self.0.company.tax_exempt
    }
    /// Payment terms set on this company (null inherits).
    async fn payment_terms(&self) -> Option<PaymentTerms> {
        self.0
            .company
            .payment_terms
            .as_deref()
            .and_then(PaymentTerms::from_code)
    }
    /// Settings after inheritance.
    async fn effective_settings(&self) -> EffectiveCompanySettings {
        let e = self.0.effective();
        let available = e
            .credit
            .and_then(|(limit, exposure)| limit.checked_sub(exposure).ok());
        EffectiveCompanySettings {
            payment_terms: e.payment_terms,
            tax_exempt: e.tax_exempt,
            vat_id: e.vat_id,
            customer_group_id: e.customer_group_id.map(id),
            credit_limit: e.credit.map(|c| c.0.into()),
            credit_exposure: e.credit.map(|c| c.1.into()),
            available_credit: available.map(Into::into),
        }
    }
    /// Version (event sequence).
    async fn version(&self) -> i64 {
        self.0.company.version
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.company.created_at
    }
    /// Locations; a company user restricted to some locations sees only those.
    async fn locations(&self, ctx: &Context<'_>) -> Result<Vec<CompanyLocationObject>> {
        let caller = caller(ctx)?;
        let rows = companies_loader(ctx)?
            .load_one(LocationsOfCompany(self.0.company.id))
            .await?
            .unwrap_or_default();
        let restricted: Option<Vec<Uuid>> = match caller.membership() {
            Some(m) if !m.can(CompanyPermission::ManageLocations) => {
                let member = services(ctx)
                    .companies
                    .memberships_of(caller.tenant, caller.actor().unwrap_or_default())
                    .await?
                    .into_iter()
                    .find(|x| x.company_id == m.company_id);
                member.map(|x| x.location_ids).filter(|l| !l.is_empty())
            }
            _ => None,
        };
        Ok(rows
            .into_iter()
            .filter(|l| restricted.as_ref().is_none_or(|r| r.contains(&l.id)))
            .map(CompanyLocationObject)
            .collect())
    }
    /// Company users (company admins, staff with `COMPANY_READ`, assigned sales reps).
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<CompanyUserObject>> {
        let caller = caller(ctx)?;
        // This company was authorised for reading; users need more of company users.
        if let Some(m) = caller.membership()
            && !m.can(CompanyPermission::ManageUsers)
        {
            return Err(AppError::Forbidden("MANAGE_USERS".into()).into());
        }
        let rows = companies_loader(ctx)?
            .load_one(MembersOfCompany(self.0.company.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(CompanyUserObject::from).collect())
    }
    /// Staff users assigned as sales reps.
    async fn sales_rep_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let caller = caller(ctx)?;
        if caller.membership().is_some() {
            return Ok(Vec::new());
        }
        Ok(companies_loader(ctx)?
            .load_one(SalesRepsOfCompany(self.0.company.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(id)
            .collect())
    }
}

/// A ship-to or bill-to site of a company.
pub struct CompanyLocationObject(pub location::Model);

#[Object(name = "CompanyLocation")]
impl CompanyLocationObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Company.
    async fn company_id(&self) -> ID {
        id(self.0.company_id)
    }
    /// The stock location that serves this location's orders first.
    async fn preferred_stock_location_id(&self) -> Option<ID> {
        self.0.preferred_stock_location_id.map(id)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Goods can be shipped here.
    async fn is_shipping(&self) -> bool {
        self.0.is_shipping
    }
    /// Invoices go here.
    async fn is_billing(&self) -> bool {
        self.0.is_billing
    }
    /// First street line.
    async fn street_line1(&self) -> &str {
        &self.0.street_line1
    }
    /// Second street line.
    async fn street_line2(&self) -> Option<&str> {
        self.0.street_line2.as_deref()
    }
    /// City.
    async fn city(&self) -> &str {
        &self.0.city
    }
    /// Postal code.
    async fn postal_code(&self) -> &str {
        &self.0.postal_code
    }
    /// Region.
    async fn region(&self) -> Option<&str> {
        self.0.region.as_deref()
    }
    /// Country.
    async fn country_code(&self) -> &str {
        &self.0.country_code
    }
    /// VAT id of this location (overrides the company's).
    async fn vat_id(&self) -> Option<&str> {
        self.0.vat_id.as_deref()
    }
    /// Tax exemption of this location (null: the company's).
    async fn tax_exempt(&self) -> Option<bool> {
        self.0.tax_exempt
    }
    /// Payment terms of this location (null: the company's).
    async fn payment_terms(&self) -> Option<PaymentTerms> {
        self.0
            .payment_terms
            .as_deref()
            .and_then(PaymentTerms::from_code)
    }
}

// Its `customer` field is resolved by the accounts module, which owns customers.
/// A customer's membership in a company.
#[derive(SimpleObject)]
#[graphql(name = "CompanyUser", complex)]
pub struct CompanyUserObject {
    /// Company.
    pub company_id: ID,
    /// Customer id.
    pub customer_id: ID,
    /// Role codes (`admin`, `buyer`, `approver`, `viewer` or custom).
    pub roles: Vec<String>,
    /// Locations the user may act in (empty: all).
    pub location_ids: Vec<ID>,
    /// Spending limit per order.
    pub spending_limit: Option<MoneyObject>,
    /// Spending limit per calendar month (UTC).
    pub monthly_spending_limit: Option<MoneyObject>,
    /// The membership as stored.
    #[graphql(skip)]
    pub member: Member,
}

impl From<Member> for CompanyUserObject {
    fn from(m: Member) -> Self {
        CompanyUserObject {
            company_id: id(m.company_id),
            customer_id: id(m.customer_id),
            roles: m.roles.clone(),
            location_ids: m.location_ids.iter().copied().map(id).collect(),
            spending_limit: m.spending_limit.map(Into::into),
            monthly_spending_limit: m.monthly_spending_limit.map(Into::into),
            member: m,
        }
    }
}

/// Overridable company settings; omitted fields stay, `null` clears an override.
#[derive(InputObject, Default)]
pub struct CompanySettingsInput {
    /// VAT id (EU format per country).
    pub vat_id: async_graphql::MaybeUndefined<String>,
    /// Tax exemption.
    pub tax_exempt: async_graphql::MaybeUndefined<bool>,
    /// Payment terms.
    pub payment_terms: async_graphql::MaybeUndefined<PaymentTerms>,
    /// Credit limit.
    pub credit_limit: async_graphql::MaybeUndefined<PriceInput>,
    /// Customer group.
    pub customer_group_id: async_graphql::MaybeUndefined<ID>,
}

fn maybe<T, U>(
    value: async_graphql::MaybeUndefined<T>,
    f: impl FnOnce(T) -> Result<U, AppError>,
) -> Result<Option<Option<U>>, AppError> {
    Ok(match value {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(v) => Some(Some(f(v)?)),
    })
}

impl CompanySettingsInput {
    fn into_settings(self) -> Result<CompanySettings, AppError> {
        Ok(CompanySettings {
            vat_id: maybe(self.vat_id, Ok)?,
            tax_exempt: maybe(self.tax_exempt, Ok)?,
            payment_terms: maybe(self.payment_terms, Ok)?,
            credit_limit: maybe(self.credit_limit, |p| Ok((p.currency, p.amount.0)))?,
            customer_group_id: maybe(self.customer_group_id, |g| parse_id("customerGroupId", &g))?,
        })
    }
}

/// Input of `createCompany`.
#[derive(InputObject)]
pub struct CreateCompanyInput {
    /// Name.
    pub name: String,
    /// Parent, to create a division.
    pub parent_id: Option<ID>,
    /// Settings (unset ones inherit from the parent).
    #[graphql(default)]
    pub settings: CompanySettingsInput,
}

/// Input of `updateCompany`.
#[derive(InputObject)]
pub struct UpdateCompanyInput {
    /// New name.
    pub name: Option<String>,
    /// New parent; `null` makes the company a root.
    pub parent_id: async_graphql::MaybeUndefined<ID>,
    /// Settings to change.
    #[graphql(default)]
    pub settings: CompanySettingsInput,
}

/// Input of `saveCompanyLocation`.
#[derive(InputObject)]
pub struct CompanyLocationInput {
    /// Name.
    pub name: String,
    /// Goods can be shipped here.
    #[graphql(default = true)]
    pub is_shipping: bool,
    /// Invoices go here.
    #[graphql(default = false)]
    pub is_billing: bool,
    /// Address.
    pub address: PostalAddressInput,
    /// VAT id override.
    pub vat_id: Option<String>,
    /// Tax exemption override.
    pub tax_exempt: Option<bool>,
    /// Payment terms override.
    pub payment_terms: Option<PaymentTerms>,
    /// The stock location that serves this location's orders first (staff with
    /// `COMPANY_WRITE`; absent keeps it).
    pub preferred_stock_location_id: Option<ID>,
}

/// Input of `updateCompanyUser`; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateCompanyUserInput {
    /// Roles.
    pub roles: Option<Vec<String>>,
    /// Locations the user may act in (empty: all).
    pub location_ids: Option<Vec<ID>>,
    /// Spending limit per order; `null` removes it. An order above it needs approval.
    pub spending_limit: async_graphql::MaybeUndefined<PriceInput>,
    /// Spending limit per calendar month (UTC), in the same currency; `null` removes it. An
    /// order taking the month's spend above it needs approval.
    pub monthly_spending_limit: async_graphql::MaybeUndefined<PriceInput>,
}

/// An invitation sent by email.
#[derive(SimpleObject)]
pub struct CompanyInvitation {
    /// Id.
    pub id: ID,
    /// Company.
    pub company_id: ID,
    /// Invited email.
    pub email: String,
    /// Roles to grant.
    pub roles: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A company role.
#[derive(SimpleObject)]
pub struct CompanyRole {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Permissions.
    pub permissions: Vec<CompanyPermission>,
}

/// Fields of a company page beyond edges and page info.
#[derive(SimpleObject)]
pub struct CompanyConnectionFields {
    /// Companies visible to the caller on all pages.
    pub total_count: u64,
}

fn ids(field: &str, v: &[ID]) -> Result<Vec<Uuid>, AppError> {
    v.iter().map(|i| parse_id(field, i)).collect()
}

/// Companies queries.
#[derive(Default)]
pub struct CompaniesQuery;

#[Object]
impl CompaniesQuery {
    /// Companies and divisions the caller may read (`COMPANY_READ`; sales reps see their
    /// assigned companies), oldest first.
    async fn companies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<Connection<IdCursor, CompanyObject, CompanyConnectionFields>> {
        let caller = caller(ctx)?;
        let request = page_request(first, after.as_deref(), 100)?;
        let page = services(ctx)
            .companies
            .list(caller, search, request)
            .await?;
        let total_count = page.total;
        Ok(connection(
            &request,
            page,
            |c| c.company.id,
            CompanyObject,
            CompanyConnectionFields { total_count },
        ))
    }

    /// A company by id; unknown and inaccessible companies are both `NOT_FOUND`.
    async fn company(&self, ctx: &Context<'_>, id: ID) -> Result<CompanyObject> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(CompanyObject(
            services(ctx).companies.company(caller, id).await?,
        ))
    }

    /// Users of a company (company admins, staff with `COMPANY_READ`, assigned sales reps).
    async fn company_users(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
    ) -> Result<Vec<CompanyUserObject>> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let rows = services(ctx).companies.members(caller, company).await?;
        Ok(rows.into_iter().map(CompanyUserObject::from).collect())
    }

    /// The company the calling company user acts for.
    async fn my_company(&self, ctx: &Context<'_>) -> Result<Option<CompanyObject>> {
        let caller = caller(ctx)?;
        Ok(services(ctx)
            .companies
            .my_company(caller)
            .await?
            .map(CompanyObject))
    }
}

/// Companies mutations.
#[derive(Default)]
pub struct CompaniesMutation;

#[Object]
impl CompaniesMutation {
    /// Creates a company, or a division under `parentId` (`COMPANY_WRITE`).
    async fn create_company(
        &self,
        ctx: &Context<'_>,
        input: CreateCompanyInput,
    ) -> Result<CompanyObject> {
        let caller = require(ctx, Permission::CompanyWrite)?;
        let parent_id = input
            .parent_id
            .as_ref()
            .map(|p| parse_id("parentId", p))
            .transpose()?;
        let view = services(ctx)
            .companies
            .create(
                caller,
                NewCompany {
                    name: input.name,
                    parent_id,
                    settings: input.settings.into_settings()?,
                },
            )
            .await?;
        Ok(CompanyObject(view))
    }

    /// Renames a company, changes its settings or moves it (`COMPANY_WRITE`).
    async fn update_company(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCompanyInput,
    ) -> Result<CompanyObject> {
        let caller = require(ctx, Permission::CompanyWrite)?;
        let id = parse_id("id", &id)?;
        let parent = maybe(input.parent_id, |p| parse_id("parentId", &p))?;
        let view = services(ctx)
            .companies
            .update(
                caller,
                id,
                input.name,
                parent,
                input.settings.into_settings()?,
            )
            .await?;
        Ok(CompanyObject(view))
    }

    /// Adds a location to a company, or replaces location `id` (staff with `COMPANY_WRITE`,
    /// company users with `MANAGE_LOCATIONS`).
    async fn save_company_location(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        id: Option<ID>,
        input: CompanyLocationInput,
    ) -> Result<CompanyLocationObject> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let id = id.as_ref().map(|i| parse_id("id", i)).transpose()?;
        let warehouse = input
            .preferred_stock_location_id
            .as_ref()
            .map(|w| parse_id("preferredStockLocationId", w))
            .transpose()?;
        if let Some(w) = warehouse
            && !services(ctx)
                .inventory
                .locations(caller.tenant)
                .await?
                .iter()
                .any(|l| l.id == w)
        {
            return Err(crate::error::AppError::not_found("StockLocation", w).into());
        }
        let saved = services(ctx)
            .companies
            .save_location(
                caller,
                company,
                id,
                LocationInput {
                    name: input.name,
                    is_shipping: input.is_shipping,
                    is_billing: input.is_billing,
                    address: input.address.into(),
                    vat_id: input.vat_id,
                    tax_exempt: input.tax_exempt,
                    payment_terms: input.payment_terms,
                    preferred_stock_location_id: warehouse,
                },
            )
            .await?;
        Ok(CompanyLocationObject(saved))
    }

    /// Invites someone by email to a company (company admins, staff with `COMPANY_WRITE`).
    async fn invite_company_user(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        email: String,
        roles: Vec<String>,
        #[graphql(default)] location_ids: Vec<ID>,
    ) -> Result<CompanyInvitation> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let locations = ids("locationIds", &location_ids)?;
        let (inv, _token) = services(ctx)
            .companies
            .invite(caller, company, &email, roles, locations)
            .await?;
        Ok(CompanyInvitation {
            id: id(inv.id),
            company_id: id(inv.company_id),
            email: inv.email,
            roles: inv.roles,
            expires_at: inv.expires_at,
        })
    }

    /// Adds an existing customer to a company without an invitation (`COMPANY_WRITE`).
    async fn add_company_user(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        customer_id: ID,
        roles: Vec<String>,
        #[graphql(default)] location_ids: Vec<ID>,
    ) -> Result<CompanyUserObject> {
        let caller = require(ctx, Permission::CompanyWrite)?;
        let company = parse_id("companyId", &company_id)?;
        let customer = parse_id("customerId", &customer_id)?;
        let locations = ids("locationIds", &location_ids)?;
        let services = services(ctx);
        services
            .accounts
            .customer(caller.tenant, customer)
            .await?
            .ok_or_else(|| AppError::not_found("Customer", customer))?;
        Ok(CompanyUserObject::from(
            services
                .companies
                .add_member(caller, company, customer, roles, locations)
                .await?,
        ))
    }

    /// Changes a company user's roles, locations or spending limit (company admins, staff with
    /// `COMPANY_WRITE`). The last admin keeps the admin role.
    async fn update_company_user(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        customer_id: ID,
        input: UpdateCompanyUserInput,
    ) -> Result<CompanyUserObject> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let customer = parse_id("customerId", &customer_id)?;
        let patch = MemberPatch {
            roles: input.roles,
            location_ids: input
                .location_ids
                .as_deref()
                .map(|l| ids("locationIds", l))
                .transpose()?,
            spending_limit: maybe(input.spending_limit, |p| Ok((p.currency, p.amount.0)))?,
            monthly_spending_limit: maybe(input.monthly_spending_limit, |p| {
                Ok((p.currency, p.amount.0))
            })?,
        };
        Ok(CompanyUserObject::from(
            services(ctx)
                .companies
                .update_member(caller, company, customer, patch)
                .await?,
        ))
    }

    /// Removes a user from a company; the last admin cannot be removed.
    async fn remove_company_user(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        customer_id: ID,
    ) -> Result<bool> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let customer = parse_id("customerId", &customer_id)?;
        services(ctx)
            .companies
            .remove_member(caller, company, customer)
            .await?;
        Ok(true)
    }

    /// Creates a custom role for the company's tree from a permission set (company admins,
    /// staff with `COMPANY_WRITE`).
    async fn create_company_role(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        code: String,
        name: String,
        permissions: Vec<CompanyPermission>,
    ) -> Result<CompanyRole> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let (code, name, permissions) = services(ctx)
            .companies
            .create_role(caller, company, &code, &name, permissions)
            .await?;
        Ok(CompanyRole {
            code,
            name,
            permissions,
        })
    }

    /// Assigns a staff user as sales rep of a company and its divisions (`COMPANY_WRITE`).
    async fn assign_sales_rep(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        staff_user_id: ID,
    ) -> Result<CompanyObject> {
        let caller = require(ctx, Permission::CompanyWrite)?;
        let company = parse_id("companyId", &company_id)?;
        let staff = parse_id("staffUserId", &staff_user_id)?;
        let services = services(ctx);
        services
            .auth
            .staff_by_id(caller.tenant, staff)
            .await?
            .ok_or_else(|| AppError::not_found("StaffUser", staff))?;
        Ok(CompanyObject(
            services
                .companies
                .assign_sales_rep(caller, company, staff, true)
                .await?,
        ))
    }

    /// Ends a sales-rep assignment (`COMPANY_WRITE`).
    async fn unassign_sales_rep(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        staff_user_id: ID,
    ) -> Result<CompanyObject> {
        let caller = require(ctx, Permission::CompanyWrite)?;
        let company = parse_id("companyId", &company_id)?;
        let staff = parse_id("staffUserId", &staff_user_id)?;
        Ok(CompanyObject(
            services(ctx)
                .companies
                .assign_sales_rep(caller, company, staff, false)
                .await?,
        ))
    }
}
