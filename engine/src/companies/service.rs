//! Companies, locations, members, roles, invitations and sales reps.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{company, invitation, location, member, role, sales_rep};
use super::vat;
use crate::accounts::service::NewCustomer;
use crate::accounts::{AccountsService, Customer};
use crate::auth::{
    Caller, CompanyPermission, Membership, Permission, Principal, builtin_company_role,
    normalize_email, parse_tenant_token, tenant_token,
};
use crate::db::page::{Page, PageRequest};
use crate::db::{Scope, id_in};
use crate::error::{AppError, AppResult, code};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::kernel::PostalAddress;
use crate::kernel::TenantId;
use crate::kernel::text;

/// Deepest hierarchy (a root company counts as level 1).
pub const MAX_DEPTH: usize = 8;
/// How long an invitation is valid.
pub const INVITATION_TTL_DAYS: i64 = 14;
/// Largest credit limit or spending limit, in minor units.
pub const MAX_LIMIT_MINOR: i64 = 1_000_000_000_000_000;

/// Payment terms of a company or location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum PaymentTerms {
    /// Pay before shipping.
    Prepaid,
    /// Invoice due in 15 days.
    #[graphql(name = "NET15")]
    Net15,
    /// Invoice due in 30 days.
    #[graphql(name = "NET30")]
    Net30,
    /// Invoice due in 60 days.
    #[graphql(name = "NET60")]
    Net60,
}

impl PaymentTerms {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            PaymentTerms::Prepaid => "prepaid",
            PaymentTerms::Net15 => "net15",
            PaymentTerms::Net30 => "net30",
            PaymentTerms::Net60 => "net60",
        }
    }

    /// Parses a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "prepaid" => PaymentTerms::Prepaid,
            "net15" => PaymentTerms::Net15,
            "net30" => PaymentTerms::Net30,
            "net60" => PaymentTerms::Net60,
            _ => return None,
        })
    }
}

/// Settings of a company after inheritance from its ancestors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// Payment terms (default prepaid).
    pub payment_terms: PaymentTerms,
    /// Tax exemption (default false).
    pub tax_exempt: bool,
    /// VAT id.
    pub vat_id: Option<String>,
    /// Customer group (pricing scope).
    pub customer_group_id: Option<Uuid>,
    /// Credit limit and current exposure, from the nearest company that sets a limit.
    pub credit: Option<(Money, Money)>,
}

/// A company and the whole tree it belongs to (one query), so parent, children and inherited
/// settings resolve in memory.
#[derive(Debug, Clone)]
pub struct CompanyView {
    /// The company.
    pub company: company::Model,
    /// All companies of its tree.
    pub tree: std::sync::Arc<Vec<company::Model>>,
}

impl CompanyView {
    fn find(&self, id: Uuid) -> Option<&company::Model> {
        self.tree.iter().find(|c| c.id == id)
    }

    /// The company, its parent, … up to the root.
    pub fn ancestry(&self) -> Vec<&company::Model> {
        ancestry(&self.tree, self.company.id)
    }

    /// Direct divisions.
    pub fn children(&self) -> Vec<company::Model> {
        let mut c: Vec<_> = self
            .tree
            .iter()
            .filter(|c| c.parent_id == Some(self.company.id))
            .cloned()
            .collect();
        c.sort_by(|a, b| a.name.cmp(&b.name));
        c
    }

    /// The parent company.
    pub fn parent(&self) -> Option<CompanyView> {
        let parent = self.company.parent_id.and_then(|p| self.find(p))?;
        Some(CompanyView {
            company: parent.clone(),
            tree: self.tree.clone(),
        })
    }

    /// A view of another company of the same tree.
    pub fn sibling_view(&self, company: company::Model) -> CompanyView {
        CompanyView {
            company,
            tree: self.tree.clone(),
        }
    }

    /// Settings after inheritance: the nearest company (self first) that sets a value wins.
    pub fn effective(&self) -> EffectiveSettings {
        let chain = self.ancestry();
        let payment_terms = chain
            .iter()
            .find_map(|c| c.payment_terms.as_deref().and_then(PaymentTerms::from_code))
            .unwrap_or(PaymentTerms::Prepaid);
        let credit = chain.iter().find_map(|c| {
            let currency: CurrencyCode = c.credit_currency.as_deref()?.parse().ok()?;
            Some((
                Money::new(c.credit_limit?, currency),
                Money::new(c.credit_exposure, currency),
            ))
        });
        EffectiveSettings {
            payment_terms,
            tax_exempt: chain.iter().find_map(|c| c.tax_exempt).unwrap_or(false),
            vat_id: chain.iter().find_map(|c| c.vat_id.clone()),
            customer_group_id: chain.iter().find_map(|c| c.customer_group_id),
            credit,
        }
    }
}

fn ancestry(tree: &[company::Model], id: Uuid) -> Vec<&company::Model> {
    let mut chain = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        let Some(c) = tree.iter().find(|c| c.id == id) else {
            break;
        };
        if chain.len() > MAX_DEPTH * 2 {
            break;
        }
        chain.push(c);
        next = c.parent_id;
    }
    chain
}

fn descendants(tree: &[company::Model], id: Uuid) -> HashSet<Uuid> {
    let mut out = HashSet::from([id]);
    loop {
        let before = out.len();
        for c in tree {
            if c.parent_id.is_some_and(|p| out.contains(&p)) {
                out.insert(c.id);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Input of `createCompany`.
#[derive(Debug, Clone, Default)]
pub struct NewCompany {
    /// Name.
    pub name: String,
    /// Parent for a division.
    pub parent_id: Option<Uuid>,
    /// Settings; `None` inherits (or defaults at the root).
    pub settings: CompanySettings,
}

/// Overridable company settings. In an update, `Some(None)` clears an override.
#[derive(Debug, Clone, Default)]
pub struct CompanySettings {
    /// VAT id.
    pub vat_id: Option<Option<String>>,
    /// Tax exemption.
    pub tax_exempt: Option<Option<bool>>,
    /// Payment terms.
    pub payment_terms: Option<Option<PaymentTerms>>,
    /// Credit limit.
    pub credit_limit: Option<Option<(String, i64)>>,
    /// Customer group.
    pub customer_group_id: Option<Option<Uuid>>,
}

/// Input of a location.
#[derive(Debug, Clone, Default)]
pub struct LocationInput {
    /// Name.
    pub name: String,
    /// Ships here.
    pub is_shipping: bool,
    /// Bills here.
    pub is_billing: bool,
    /// The address.
    pub address: PostalAddress,
    /// VAT id override.
    pub vat_id: Option<String>,
    /// Tax exemption override.
    pub tax_exempt: Option<bool>,
    /// Payment terms override.
    pub payment_terms: Option<PaymentTerms>,
}

/// A company user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Membership id.
    pub id: Uuid,
    /// Company.
    pub company_id: Uuid,
    /// Customer.
    pub customer_id: Uuid,
    /// Role codes.
    pub roles: Vec<String>,
    /// Locations the user may act in (empty: all of the company).
    pub location_ids: Vec<Uuid>,
    /// Spending limit per order.
    pub spending_limit: Option<Money>,
}

impl TryFrom<member::Model> for Member {
    type Error = AppError;
    fn try_from(m: member::Model) -> AppResult<Self> {
        let corrupt = |e: String| AppError::Internal(anyhow::anyhow!("member {}: {e}", m.id));
        Ok(Member {
            id: m.id,
            company_id: m.company_id,
            customer_id: m.customer_id,
            roles: serde_json::from_str(&m.roles).map_err(|e| corrupt(e.to_string()))?,
            location_ids: serde_json::from_str(&m.location_ids)
                .map_err(|e| corrupt(e.to_string()))?,
            spending_limit: match (m.spending_limit, m.spending_currency.as_deref()) {
                (Some(amount), Some(currency)) => Some(Money::new(
                    amount,
                    currency
                        .parse()
                        .map_err(|e: vectis_strategies::MoneyError| corrupt(e.to_string()))?,
                )),
                _ => None,
            },
        })
    }
}

/// A pending or settled invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Id.
    pub id: Uuid,
    /// Company.
    pub company_id: Uuid,
    /// Invited email.
    pub email: String,
    /// Roles to grant.
    pub roles: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Changes to a member; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// New location restriction.
    pub location_ids: Option<Vec<Uuid>>,
    /// New spending limit (`Some(None)` removes it).
    pub spending_limit: Option<Option<(String, i64)>>,
}

/// What an access check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// See the company.
    Read,
    /// Change it: staff need `COMPANY_WRITE`, company users this permission.
    Write(CompanyPermission),
}

/// What a caller may grant in a company: staff with `COMPANY_WRITE` grant any company
/// permission (commercial relationships are the merchant's), a company user only the
/// permissions they hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Any company permission.
    All,
    /// These permissions.
    Only(Vec<CompanyPermission>),
}

impl Grants {
    /// Fails with `FORBIDDEN` (naming the first permission) unless every one of `wanted` may
    /// be granted.
    pub fn check(&self, wanted: &[CompanyPermission]) -> AppResult<()> {
        match self {
            Grants::All => Ok(()),
            Grants::Only(held) => match wanted.iter().find(|p| !held.contains(p)) {
                Some(p) => Err(AppError::Forbidden(crate::auth::permission_name(*p))),
                None => Ok(()),
            },
        }
    }

    /// Whether these are a staff user's grants.
    pub fn is_staff(&self) -> bool {
        *self == Grants::All
    }
}

/// A company the caller may access, and what the caller may grant in it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The company and its tree.
    pub view: CompanyView,
    /// What the caller may grant.
    pub grants: Grants,
}

/// Companies and everything attached to them.
#[derive(Clone)]
pub struct CompaniesService {
    core: Core,
    accounts: AccountsService,
}

fn limit(field: &str, value: Option<(String, i64)>) -> AppResult<Option<(String, i64)>> {
    match value {
        None => Ok(None),
        Some((currency, amount)) => {
            let currency: CurrencyCode =
                currency
                    .parse()
                    .map_err(|e: vectis_strategies::MoneyError| {
                        AppError::validation(field, e.to_string())
                    })?;
            if !(0..=MAX_LIMIT_MINOR).contains(&amount) {
                return Err(AppError::validation(
                    field,
                    format!("must be between 0 and {MAX_LIMIT_MINOR} minor units"),
                ));
            }
            Ok(Some((currency.to_string(), amount)))
        }
    }
}

fn vat_field(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| vat::normalize(&v).map_err(|m| AppError::validation(field, m)))
        .transpose()
}

async fn bump_company(
    uow: &UnitOfWork,
    id: Uuid,
    sets: Vec<(company::Column, Expr)>,
) -> AppResult<company::Model> {
    uow.bump::<company::Entity>(id, sets, "Company").await
}

impl CompaniesService {
    /// A service over `core`, creating customers through `accounts`.
    pub fn new(core: Core, accounts: AccountsService) -> Self {
        CompaniesService { core, accounts }
    }

    async fn load_tree(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        id: Uuid,
    ) -> AppResult<Option<CompanyView>> {
        let Some(found) = company::Entity::find_by_id(id)
            .filter(company::Column::TenantId.eq(tenant.0))
            .one(tx)
            .await?
        else {
            return Ok(None);
        };
        let tree = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::RootId.eq(found.root_id))
            .all(tx)
            .await?;
        Ok(Some(CompanyView {
            company: found,
            tree: std::sync::Arc::new(tree),
        }))
    }

    async fn assigned(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        staff: Uuid,
    ) -> AppResult<HashSet<Uuid>> {
        Ok(sales_rep::Entity::find()
            .select_only()
            .column(sales_rep::Column::CompanyId)
            .filter(sales_rep::Column::TenantId.eq(tenant.0))
            .filter(sales_rep::Column::StaffUserId.eq(staff))
            .into_tuple::<Uuid>()
            .all(tx)
            .await?
            .into_iter()
            .collect())
    }

    /// Loads a company with its tree if the caller may access it as `need` says. A company the
    /// caller may not see is reported as not found, so ids cannot be probed.
    pub async fn authorize(
        &self,
        tx: &DatabaseTransaction,
        caller: &Caller,
        id: Uuid,
        need: Need,
    ) -> AppResult<CompanyView> {
        Ok(self.access(tx, caller, id, need).await?.view)
    }

    /// Like [`Self::authorize`], with what the caller may grant. A company user's rights are
    /// read from their membership as it is in this transaction, never from token claims, so a
    /// demotion or removal takes effect at once.
    pub async fn access(
        &self,
        tx: &DatabaseTransaction,
        caller: &Caller,
        id: Uuid,
        need: Need,
    ) -> AppResult<Access> {
        let not_found = || AppError::not_found("Company", id);
        match &caller.principal {
            Principal::Storefront => {
                Err(AppError::Unauthenticated("log in to see companies".into()))
            }
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                let allowed = match need {
                    Need::Read => {
                        caller.has(Permission::CompanyRead) || caller.has(Permission::CompanyWrite)
                    }
                    Need::Write(_) => caller.has(Permission::CompanyWrite),
                };
                if !allowed && !caller.has(Permission::Impersonate) {
                    let missing = if need == Need::Read {
                        Permission::CompanyRead
                    } else {
                        Permission::CompanyWrite
                    };
                    return Err(AppError::Forbidden(crate::auth::permission_name(missing)));
                }
                let view = Self::load_tree(tx, caller.tenant, id)
                    .await?
                    .ok_or_else(not_found)?;
                let writes = caller.has(Permission::CompanyWrite);
                let grants = if writes {
                    Grants::All
                } else {
                    Grants::Only(Vec::new())
                };
                if allowed {
                    return Ok(Access { view, grants });
                }
                // A sales rep reads the companies assigned to them, with their divisions.
                let staff = caller.staff_id().ok_or_else(not_found)?;
                let assigned = Self::assigned(tx, caller.tenant, staff).await?;
                let covered = view.ancestry().iter().any(|c| assigned.contains(&c.id));
                match (covered, need) {
                    (true, Need::Read) => Ok(Access { view, grants }),
                    (true, Need::Write(_)) => Err(AppError::Forbidden("COMPANY_WRITE".into())),
                    (false, _) => Err(not_found()),
                }
            }
            Principal::Customer {
                id: customer,
                membership,
                ..
            } => {
                let claimed = membership.as_ref().ok_or_else(not_found)?;
                let membership = Self::current_membership_in(
                    tx,
                    caller.tenant,
                    *customer,
                    claimed.company_id,
                    claimed.location_id,
                )
                .await?
                .ok_or_else(not_found)?;
                let view = Self::load_tree(tx, caller.tenant, id)
                    .await?
                    .ok_or_else(not_found)?;
                if !view
                    .ancestry()
                    .iter()
                    .any(|c| c.id == membership.company_id)
                {
                    return Err(not_found());
                }
                let permission = match need {
                    Need::Read => CompanyPermission::ViewCompany,
                    Need::Write(p) => p,
                };
                if membership.can(permission) {
                    Ok(Access {
                        view,
                        grants: Grants::Only(membership.permissions),
                    })
                } else if membership.can(CompanyPermission::ViewCompany) {
                    Err(AppError::Forbidden(crate::auth::permission_name(
                        permission,
                    )))
                } else {
                    Err(not_found())
                }
            }
        }
    }

    /// The membership of `customer` in `company` as stored now (roles and the permissions
    /// they grant today), acting at `location` if the member may still use it. `None` when
    /// the customer is no longer a member. One statement, two with custom roles.
    pub async fn current_membership_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        customer: Uuid,
        company: Uuid,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        let Some(row) = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CustomerId.eq(customer))
            .filter(member::Column::CompanyId.eq(company))
            .one(tx)
            .await?
        else {
            return Ok(None);
        };
        let m = Member::try_from(row)?;
        let permissions = Self::permissions_of(tx, tenant, company, &m.roles).await?;
        Ok(Some(Membership {
            company_id: company,
            location_id: location
                .filter(|l| m.location_ids.is_empty() || m.location_ids.contains(l)),
            roles: m.roles,
            permissions,
        }))
    }

    /// [`Self::current_membership_in`] in a transaction of its own.
    pub async fn current_membership(
        &self,
        tenant: TenantId,
        customer: Uuid,
        company: Uuid,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        self.core
            .read(tenant, |tx| {
                Box::pin(Self::current_membership_in(
                    tx, tenant, customer, company, location,
                ))
            })
            .await
    }

    /// The permissions `roles` grant in `company`'s tree (built-in roles without a statement;
    /// custom roles with one lookup of the tree's roles).
    async fn permissions_of<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        company: Uuid,
        roles: &[String],
    ) -> AppResult<Vec<CompanyPermission>> {
        let mut permissions: Vec<CompanyPermission> = Vec::new();
        let mut custom = Vec::new();
        for r in roles {
            match builtin_company_role(r) {
                Some(p) => permissions.extend_from_slice(p),
                None => custom.push(r.clone()),
            }
        }
        if !custom.is_empty() {
            let roots = company::Entity::find()
                .select_only()
                .column(company::Column::RootId)
                .filter(company::Column::TenantId.eq(tenant.0))
                .filter(company::Column::Id.eq(company))
                .into_query();
            let rows = role::Entity::find()
                .filter(role::Column::TenantId.eq(tenant.0))
                .filter(role::Column::CompanyId.in_subquery(roots))
                .filter(role::Column::Code.is_in(custom))
                .all(tx)
                .await?;
            for r in rows {
                let granted: Vec<CompanyPermission> = serde_json::from_str(&r.permissions)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("role {}: {e}", r.id)))?;
                permissions.extend(granted);
            }
        }
        permissions.sort_by_key(|p| *p as u8);
        permissions.dedup();
        Ok(permissions)
    }

    /// Locks the membership set of `company`'s tree (the root company's row) for the rest of
    /// the unit of work: members, roles and invitations of one tree change one at a time, so
    /// invariants such as "at least one admin" hold under concurrency.
    async fn lock_tree(uow: &UnitOfWork, company: Uuid) -> AppResult<()> {
        let root: Option<Uuid> = company::Entity::find()
            .select_only()
            .column(company::Column::RootId)
            .filter(company::Column::TenantId.eq(uow.tenant().0))
            .filter(company::Column::Id.eq(company))
            .into_tuple()
            .one(uow.tx())
            .await?;
        if let Some(root) = root {
            crate::db::lock::lock::<company::Entity, _>(uow.tx(), uow.tenant(), root).await?;
        }
        Ok(())
    }

    /// Whether staff user `staff` is assigned to `company` or one of its ancestors.
    pub async fn rep_covers(
        &self,
        tenant: TenantId,
        staff: Uuid,
        company: Uuid,
    ) -> AppResult<bool> {
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let covered = match Self::load_tree(&tx, tenant, company).await? {
            Some(view) => {
                let assigned = Self::assigned(&tx, tenant, staff).await?;
                view.ancestry().iter().any(|c| assigned.contains(&c.id))
            }
            None => false,
        };
        tx.commit().await?;
        Ok(covered)
    }

    /// Checks that a company exists in the unit of work's tenant.
    pub async fn ensure_company_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<()> {
        company::Entity::find_by_id(id)
            .filter(company::Column::TenantId.eq(uow.tenant().0))
            .one(uow.tx())
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found("Company", id))
    }

    /// Checks that a company location exists in the unit of work's tenant.
    pub async fn ensure_location_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<()> {
        location::Entity::find_by_id(id)
            .filter(location::Column::TenantId.eq(uow.tenant().0))
            .one(uow.tx())
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found("CompanyLocation", id))
    }

    /// A company the caller may read.
    pub async fn company(&self, caller: &Caller, id: Uuid) -> AppResult<CompanyView> {
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let view = self.authorize(&tx, caller, id, Need::Read).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The caller's own company (company users).
    pub async fn my_company(&self, caller: &Caller) -> AppResult<Option<CompanyView>> {
        let (_, membership) = caller.require_customer()?;
        match membership {
            Some(m) => self.company(caller, m.company_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// A page of the companies the caller may read, by id; sales reps see their assignments.
    pub async fn list(
        &self,
        caller: &Caller,
        search: Option<String>,
        page: PageRequest,
    ) -> AppResult<Page<CompanyView>> {
        let everything =
            caller.has(Permission::CompanyRead) || caller.has(Permission::CompanyWrite);
        if !everything && !caller.has(Permission::Impersonate) {
            caller.require(Permission::CompanyRead)?;
        }
        let tenant = caller.tenant;
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let mut filter = company::Entity::find().filter(company::Column::TenantId.eq(tenant.0));
        if !everything {
            let staff = caller.staff_id().unwrap_or_default();
            let assigned: Vec<Uuid> = Self::assigned(&tx, tenant, staff)
                .await?
                .into_iter()
                .collect();
            // Assigned companies and every company of their trees; divisions outside an
            // assigned subtree are filtered below.
            let roots: Vec<Uuid> = company::Entity::find()
                .select_only()
                .column(company::Column::RootId)
                .filter(company::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    self.core.db.backend(),
                    (company::Entity, company::Column::Id),
                    assigned,
                ))
                .into_tuple::<Uuid>()
                .all(&tx)
                .await?;
            filter = filter.filter(id_in(
                self.core.db.backend(),
                (company::Entity, company::Column::RootId),
                roots,
            ));
        }
        if let Some(pattern) =
            crate::db::contains_pattern("search", search.as_deref().unwrap_or(""))?
        {
            filter = filter.filter(
                Expr::expr(sea_orm::sea_query::Func::lower(Expr::col((
                    company::Entity,
                    company::Column::Name,
                ))))
                .like(LikeExpr::new(pattern).escape('\\')),
            );
        }
        let candidates = filter.order_by_asc(company::Column::Id).all(&tx).await?;
        let roots: HashSet<Uuid> = candidates.iter().map(|c| c.root_id).collect();
        let trees = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (company::Entity, company::Column::RootId),
                roots.into_iter().collect(),
            ))
            .all(&tx)
            .await?;
        let assigned = match caller.staff_id() {
            Some(staff) if !everything => Some(Self::assigned(&tx, tenant, staff).await?),
            _ => None,
        };
        tx.commit().await?;
        let mut by_root: HashMap<Uuid, Vec<company::Model>> = HashMap::new();
        for c in trees {
            by_root.entry(c.root_id).or_default().push(c);
        }
        let by_root: HashMap<Uuid, std::sync::Arc<Vec<company::Model>>> = by_root
            .into_iter()
            .map(|(k, v)| (k, std::sync::Arc::new(v)))
            .collect();
        let visible: Vec<CompanyView> = candidates
            .into_iter()
            .filter_map(|c| {
                let tree = by_root.get(&c.root_id)?.clone();
                Some(CompanyView { company: c, tree })
            })
            .filter(|v| match &assigned {
                Some(assigned) => v.ancestry().iter().any(|c| assigned.contains(&c.id)),
                None => true,
            })
            .collect();
        let total = visible.len() as u64;
        let rows: Vec<CompanyView> = visible
            .into_iter()
            .filter(|v| page.after.is_none_or(|a| v.company.id > a))
            .take(usize::try_from(page.limit()).unwrap_or(usize::MAX))
            .collect();
        Ok(page.page(rows, total))
    }

    async fn apply_settings(
        &self,
        uow: &UnitOfWork,
        settings: &CompanySettings,
    ) -> AppResult<Vec<(company::Column, Expr)>> {
        let mut sets = Vec::new();
        if let Some(vat_id) = &settings.vat_id {
            sets.push((
                company::Column::VatId,
                Expr::value(vat_field("vatId", vat_id.clone())?),
            ));
        }
        if let Some(tax_exempt) = settings.tax_exempt {
            sets.push((company::Column::TaxExempt, Expr::value(tax_exempt)));
        }
        if let Some(terms) = settings.payment_terms {
            sets.push((
                company::Column::PaymentTerms,
                Expr::value(terms.map(|t| t.code().to_owned())),
            ));
        }
        if let Some(credit) = &settings.credit_limit {
            let credit = limit("creditLimit", credit.clone())?;
            sets.push((
                company::Column::CreditLimit,
                Expr::value(credit.as_ref().map(|c| c.1)),
            ));
            sets.push((
                company::Column::CreditCurrency,
                Expr::value(credit.map(|c| c.0)),
            ));
        }
        if let Some(group) = settings.customer_group_id {
            if let Some(group) = group {
                self.accounts.ensure_group_in(uow, group).await?;
            }
            sets.push((company::Column::CustomerGroupId, Expr::value(group)));
        }
        Ok(sets)
    }

    /// Creates a company, or a division under `parent_id`.
    pub async fn create(&self, caller: &Caller, input: NewCompany) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let name = text::name("name", &input.name, 200)?;
        let mut uow = self.core.begin_for(caller).await?;
        let id = Uuid::now_v7();
        let root_id = match input.parent_id {
            Some(parent) => {
                let view = self
                    .authorize(
                        uow.tx(),
                        caller,
                        parent,
                        Need::Write(CompanyPermission::ManageUsers),
                    )
                    .await?;
                if view.ancestry().len() >= MAX_DEPTH {
                    return Err(AppError::validation(
                        "parentId",
                        format!("a hierarchy has at most {MAX_DEPTH} levels"),
                    ));
                }
                view.company.root_id
            }
            None => id,
        };
        let sets = self.apply_settings(&uow, &input.settings).await?;
        let now = Utc::now();
        company::Entity::insert(company::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            parent_id: Set(input.parent_id),
            root_id: Set(root_id),
            name: Set(name.clone()),
            vat_id: Set(None),
            tax_exempt: Set(None),
            payment_terms: Set(None),
            credit_limit: Set(None),
            credit_currency: Set(None),
            credit_exposure: Set(0),
            customer_group_id: Set(None),
            status: Set("active".into()),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await?;
        uow.change::<company::Entity>(id, sets, "vectis.company.created", |created| {
            company_json(created)
        })
        .await?;
        let view = Self::load_tree(uow.tx(), caller.tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Renames a company, changes its settings or moves it under another parent (`Some(None)`
    /// makes it a root). Moves that would create a cycle or exceed the depth are refused.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        name: Option<String>,
        parent: Option<Option<Uuid>>,
        settings: CompanySettings,
    ) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let name = name.map(|n| text::name("name", &n, 200)).transpose()?;
        let mut uow = self.core.begin_for(caller).await?;
        let view = self
            .authorize(
                uow.tx(),
                caller,
                id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        let mut sets = self.apply_settings(&uow, &settings).await?;
        if let Some(name) = &name {
            sets.push((company::Column::Name, Expr::value(name.clone())));
        }
        if let Some(new_parent) = parent {
            let subtree = descendants(&view.tree, id);
            let new_root = match new_parent {
                None => id,
                Some(p) if subtree.contains(&p) => {
                    return Err(AppError::validation(
                        "parentId",
                        "a company cannot be placed under itself or one of its divisions",
                    ));
                }
                Some(p) => {
                    let target = self
                        .authorize(
                            uow.tx(),
                            caller,
                            p,
                            Need::Write(CompanyPermission::ManageUsers),
                        )
                        .await?;
                    let subtree_depth = subtree
                        .iter()
                        .map(|d| ancestry(&view.tree, *d).len() - view.ancestry().len() + 1)
                        .max()
                        .unwrap_or(1);
                    if target.ancestry().len() + subtree_depth > MAX_DEPTH {
                        return Err(AppError::validation(
                            "parentId",
                            format!("a hierarchy has at most {MAX_DEPTH} levels"),
                        ));
                    }
                    target.company.root_id
                }
            };
            sets.push((company::Column::ParentId, Expr::value(new_parent)));
            if new_root != view.company.root_id {
                let moved: Vec<Uuid> = subtree.into_iter().filter(|d| *d != id).collect();
                sets.push((company::Column::RootId, Expr::value(new_root)));
                if !moved.is_empty() {
                    company::Entity::update_many()
                        .col_expr(company::Column::RootId, Expr::value(new_root))
                        .filter(company::Column::TenantId.eq(caller.tenant.0))
                        .filter(id_in(
                            self.core.db.backend(),
                            (company::Entity, company::Column::Id),
                            moved.clone(),
                        ))
                        .exec(uow.tx())
                        .await?;
                }
            }
        }
        uow.change::<company::Entity>(id, sets, "vectis.company.updated", |updated| {
            company_json(updated)
        })
        .await?;
        let view = Self::load_tree(uow.tx(), caller.tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Locations of companies (for loaders), ordered by name.
    pub async fn locations(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<location::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(location::Entity::find()
                        .filter(location::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (location::Entity, location::Column::CompanyId),
                            companies,
                        ))
                        .order_by_asc(location::Column::Name)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Adds a location to a company, or replaces location `id`.
    pub async fn save_location(
        &self,
        caller: &Caller,
        company_id: Uuid,
        id: Option<Uuid>,
        input: LocationInput,
    ) -> AppResult<location::Model> {
        let mut uow = self.core.begin_for(caller).await?;
        let access = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageLocations),
            )
            .await?;
        let name = text::name("name", &input.name, 200)?;
        let postal = input.address.validated()?;
        let mut vat_id = vat_field("vatId", input.vat_id)?;
        let mut tax_exempt = input.tax_exempt;
        let mut payment_terms = input.payment_terms.map(|t| t.code().to_owned());
        let current = match id {
            Some(id) => Some(
                crate::db::lock::lock::<location::Entity, _>(uow.tx(), caller.tenant, id)
                    .await?
                    .filter(|l| l.company_id == company_id)
                    .ok_or_else(|| AppError::not_found("CompanyLocation", id))?,
            ),
            None => None,
        };
        // Tax treatment and payment terms are commercial terms: the merchant's (staff with
        // `COMPANY_WRITE`). A company user leaves them out (they stay as they are) and cannot
        // set or change them.
        if !access.grants.is_staff() {
            let (cur_vat, cur_exempt, cur_terms) = current
                .as_ref()
                .map(|l| (l.vat_id.clone(), l.tax_exempt, l.payment_terms.clone()))
                .unwrap_or_default();
            let changes = |given: bool, same: bool| given && !same;
            if changes(vat_id.is_some(), vat_id == cur_vat)
                || changes(tax_exempt.is_some(), tax_exempt == cur_exempt)
                || changes(payment_terms.is_some(), payment_terms == cur_terms)
            {
                return Err(AppError::Rejected {
                    code: code::FORBIDDEN,
                    message: "a location's VAT id, tax exemption and payment terms are set by \
                              the merchant (COMPANY_WRITE)"
                        .into(),
                });
            }
            vat_id = cur_vat;
            tax_exempt = cur_exempt;
            payment_terms = cur_terms;
        }
        let now = Utc::now();
        let location_id = id.unwrap_or_else(Uuid::now_v7);
        let model = location::ActiveModel {
            id: Set(location_id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            name: Set(name),
            is_shipping: Set(input.is_shipping),
            is_billing: Set(input.is_billing),
            vat_id: Set(vat_id),
            tax_exempt: Set(tax_exempt),
            payment_terms: Set(payment_terms),
            status: Set("active".into()),
            version: Set(1),
            street_line1: Set(postal.street_line1),
            street_line2: Set(postal.street_line2),
            city: Set(postal.city),
            postal_code: Set(postal.postal_code),
            region: Set(postal.region),
            country_code: Set(postal.country_code),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let saved = if id.is_some() {
            let mut model = model;
            model.version = sea_orm::ActiveValue::NotSet;
            model.created_at = sea_orm::ActiveValue::NotSet;
            location::Entity::update(model).exec(uow.tx()).await?
        } else {
            location::Entity::insert(model)
                .exec_with_returning(uow.tx())
                .await?
        };
        uow
            .change::<company::Entity>(company_id, Vec::new(), if id.is_some() { "vectis.company.location_updated" } else { "vectis.company.location_added" }, |_| json!({ "companyId": company_id, "locationId": location_id, "name": saved.name, "countryCode": saved.country_code,
                    "isShipping": saved.is_shipping, "isBilling": saved.is_billing }))
            .await?;
        uow.commit().await?;
        Ok(saved)
    }

    async fn role_permissions(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        root: Uuid,
    ) -> AppResult<HashMap<String, Vec<CompanyPermission>>> {
        let custom = role::Entity::find()
            .filter(role::Column::TenantId.eq(tenant.0))
            .filter(role::Column::CompanyId.eq(root))
            .all(tx)
            .await?;
        let mut out = HashMap::new();
        for r in custom {
            let permissions: Vec<CompanyPermission> = serde_json::from_str(&r.permissions)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("role {}: {e}", r.id)))?;
            out.insert(r.code, permissions);
        }
        for code in ["admin", "buyer", "approver", "viewer"] {
            if let Some(p) = builtin_company_role(code) {
                out.insert(code.to_owned(), p.to_vec());
            }
        }
        Ok(out)
    }

    /// The membership a customer acts with: in `company` (or their first company) and at
    /// `location` (or the first location they may use). `None` when they are no member.
    pub async fn membership(
        &self,
        tenant: TenantId,
        customer: Uuid,
        company: Option<Uuid>,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let mut q = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CustomerId.eq(customer))
            .order_by_asc(member::Column::Id);
        if let Some(company) = company {
            q = q.filter(member::Column::CompanyId.eq(company));
        }
        let Some(row) = q.one(&tx).await? else {
            return Ok(None);
        };
        let m = Member::try_from(row)?;
        let Some(view) = Self::load_tree(&tx, tenant, m.company_id).await? else {
            return Ok(None);
        };
        let roles = Self::role_permissions(&tx, tenant, view.company.root_id).await?;
        let subtree: Vec<Uuid> = descendants(&view.tree, m.company_id).into_iter().collect();
        let locations = location::Entity::find()
            .select_only()
            .column(location::Column::Id)
            .filter(location::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (location::Entity, location::Column::CompanyId),
                subtree,
            ))
            .order_by_asc(location::Column::Id)
            .into_tuple::<Uuid>()
            .all(&tx)
            .await?;
        tx.commit().await?;
        let allowed: Vec<Uuid> = locations
            .into_iter()
            .filter(|l| m.location_ids.is_empty() || m.location_ids.contains(l))
            .collect();
        let location_id = match location {
            Some(l) if allowed.contains(&l) => Some(l),
            Some(_) => return Ok(None),
            None => allowed.first().copied(),
        };
        let mut permissions: Vec<CompanyPermission> = m
            .roles
            .iter()
            .filter_map(|r| roles.get(r))
            .flatten()
            .copied()
            .collect();
        permissions.sort_by_key(|p| *p as u8);
        permissions.dedup();
        Ok(Some(Membership {
            company_id: m.company_id,
            location_id,
            roles: m.roles,
            permissions,
        }))
    }

    /// Checks that `roles` exist in the tree of `root` and returns the permissions they grant.
    async fn check_roles(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        root: Uuid,
        roles: &[String],
    ) -> AppResult<Vec<CompanyPermission>> {
        if roles.is_empty() {
            return Err(AppError::validation("roles", "name at least one role"));
        }
        let known = Self::role_permissions(tx, tenant, root).await?;
        if let Some(unknown) = roles.iter().find(|r| !known.contains_key(*r)) {
            return Err(AppError::validation(
                "roles",
                format!("unknown role `{unknown}`"),
            ));
        }
        let mut granted: Vec<CompanyPermission> = roles
            .iter()
            .filter_map(|r| known.get(r))
            .flatten()
            .copied()
            .collect();
        granted.sort_by_key(|p| *p as u8);
        granted.dedup();
        Ok(granted)
    }

    async fn check_locations(
        &self,
        tx: &DatabaseTransaction,
        view: &CompanyView,
        ids: &[Uuid],
    ) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let subtree: Vec<Uuid> = descendants(&view.tree, view.company.id)
            .into_iter()
            .collect();
        let known: HashSet<Uuid> = location::Entity::find()
            .select_only()
            .column(location::Column::Id)
            .filter(location::Column::TenantId.eq(view.company.tenant_id))
            .filter(id_in(
                self.core.db.backend(),
                (location::Entity, location::Column::CompanyId),
                subtree,
            ))
            .into_tuple::<Uuid>()
            .all(tx)
            .await?
            .into_iter()
            .collect();
        match ids.iter().find(|id| !known.contains(id)) {
            Some(missing) => Err(AppError::not_found("CompanyLocation", missing)),
            None => Ok(()),
        }
    }

    /// Invites someone by email to a company with roles (and optionally restricted to
    /// locations), granting at most what the caller holds. The token goes only into the
    /// invitation email (the event carries the invitation's id).
    pub async fn invite(
        &self,
        caller: &Caller,
        company_id: Uuid,
        email: &str,
        roles: Vec<String>,
        location_ids: Vec<Uuid>,
    ) -> AppResult<(Invitation, String)> {
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let Access { view, grants } = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        let email = normalize_email("email", email)?;
        let granted =
            Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, &roles).await?;
        grants.check(&granted)?;
        self.check_locations(uow.tx(), &view, &location_ids).await?;
        if let Some(existing) = self.accounts.find_by_email_in(&uow, &email).await? {
            let already = member::Entity::find()
                .filter(member::Column::TenantId.eq(caller.tenant.0))
                .filter(member::Column::CompanyId.eq(company_id))
                .filter(member::Column::CustomerId.eq(existing.id))
                .one(uow.tx())
                .await?;
            if already.is_some() {
                return Err(AppError::Conflict {
                    code: code::CONFLICT,
                    message: "this person is a member of the company already".into(),
                });
            }
        }
        let (token, hash) = tenant_token(caller.tenant);
        let now = Utc::now();
        let expires_at = now + Duration::days(INVITATION_TTL_DAYS);
        let id = Uuid::now_v7();
        invitation::Entity::insert(invitation::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            email: Set(email.clone()),
            roles: Set(serde_json::to_string(&roles).map_err(anyhow::Error::from)?),
            location_ids: Set(serde_json::to_string(&location_ids).map_err(anyhow::Error::from)?),
            token_hash: Set(hash),
            invited_by: Set(caller.actor()),
            inviter_kind: Set(Some(
                match caller.principal {
                    Principal::Customer { .. } => "customer",
                    Principal::ApiKey { .. } => "api_key",
                    _ => "staff",
                }
                .to_owned(),
            )),
            expires_at: Set(expires_at),
            accepted_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let updated = bump_company(&uow, company_id, Vec::new()).await?;
        let event = DomainEvent::new(
            caller.tenant,
            "company",
            company_id,
            updated.version,
            "vectis.company.user_invited",
            json!({ "companyId": company_id, "companyName": updated.name, "invitationId": id, "email": email,
                    "roles": roles, "expiresAt": expires_at }),
        );
        crate::notifications::keep_token(uow.tx(), caller.tenant, event.id, &token).await?;
        uow.record(event);
        uow.commit().await?;
        Ok((
            Invitation {
                id,
                company_id,
                email,
                roles,
                expires_at,
            },
            token,
        ))
    }

    /// Accepts an invitation: creates the customer if the email has no account (then
    /// `password` and names are required) and makes them a member.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> AppResult<(TenantId, Customer, Uuid)> {
        let invalid =
            || AppError::validation("token", "the invitation is invalid, expired or used");
        let (tenant, hash) = parse_tenant_token(token).ok_or_else(invalid)?;
        let mut uow = self.core.begin(tenant, None).await?;
        let company_of: Option<Uuid> = invitation::Entity::find()
            .select_only()
            .column(invitation::Column::CompanyId)
            .filter(invitation::Column::TenantId.eq(tenant.0))
            .filter(invitation::Column::TokenHash.eq(hash.clone()))
            .into_tuple()
            .one(uow.tx())
            .await?;
        Self::lock_tree(&uow, company_of.ok_or_else(invalid)?).await?;
        // Single use: of concurrent acceptances exactly one redeems the invitation.
        let inv = crate::db::lock::consume::<invitation::Entity, _>(
            uow.tx(),
            tenant,
            "accepted_at",
            sea_orm::Condition::all()
                .add(invitation::Column::TokenHash.eq(hash))
                .add(invitation::Column::RevokedAt.is_null())
                .add(invitation::Column::ExpiresAt.gt(Utc::now())),
        )
        .await?
        .ok_or_else(invalid)?;
        // An invitation carries at most its inviter's rights, as they are now: it dies with
        // the inviter's membership or with the rights it would grant.
        if inv.inviter_kind.as_deref() == Some("customer") {
            let roles: Vec<String> = serde_json::from_str(&inv.roles).unwrap_or_default();
            let inviter = inv.invited_by.unwrap_or_default();
            if !self
                .inviter_may_grant(uow.tx(), tenant, inviter, inv.company_id, &roles)
                .await?
            {
                return Err(invalid());
            }
        }
        let customer = match self.accounts.find_by_email_in(&uow, &inv.email).await? {
            Some(existing) => {
                if let Some(password) = &password
                    && self
                        .accounts
                        .credentials(tenant, &inv.email)
                        .await?
                        .is_some_and(|(_, h)| h.is_none())
                {
                    self.accounts
                        .set_initial_password_in(&mut uow, existing.id, password)
                        .await?;
                }
                existing
            }
            None => {
                let password = password.ok_or_else(|| {
                    AppError::validation("password", "is required for a new account")
                })?;
                self.accounts
                    .create_in(
                        &mut uow,
                        NewCustomer {
                            email: inv.email.clone(),
                            password: Some(password),
                            first_name: first_name.unwrap_or_default(),
                            last_name: last_name.unwrap_or_default(),
                            phone: None,
                        },
                        true,
                    )
                    .await?
            }
        };
        let now = Utc::now();
        let membership_id = Uuid::now_v7();
        member::Entity::insert(member::ActiveModel {
            id: Set(membership_id),
            tenant_id: Set(tenant.0),
            company_id: Set(inv.company_id),
            customer_id: Set(customer.id),
            roles: Set(inv.roles.clone()),
            location_ids: Set(inv.location_ids.clone()),
            spending_limit: Set(None),
            spending_currency: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_company_members_company_customer",
            "company_members.company_id",
            "this person is a member of the company already",
        ))?;
        uow.change::<company::Entity>(inv.company_id, Vec::new(), "vectis.company.user_joined", |_| {
            json!({ "companyId": inv.company_id, "customerId": customer.id, "email": customer.email,
                    "roles": serde_json::from_str::<serde_json::Value>(&inv.roles).unwrap_or_default() })
        })
        .await?;
        uow.commit().await?;
        Ok((tenant, customer, inv.company_id))
    }

    /// Whether company user `inviter` still holds `MANAGE_USERS` and every permission of
    /// `roles` through a membership in `company` or one of its ancestors.
    async fn inviter_may_grant(
        &self,
        tx: &DatabaseTransaction,
        tenant: TenantId,
        inviter: Uuid,
        company: Uuid,
        roles: &[String],
    ) -> AppResult<bool> {
        let Some(view) = Self::load_tree(tx, tenant, company).await? else {
            return Ok(false);
        };
        let wanted = match Self::check_roles(tx, tenant, view.company.root_id, roles).await {
            Ok(wanted) => wanted,
            Err(AppError::Validation { .. }) => return Ok(false),
            Err(other) => return Err(other),
        };
        for c in view.ancestry() {
            if let Some(m) = Self::current_membership_in(tx, tenant, inviter, c.id, None).await?
                && m.can(CompanyPermission::ManageUsers)
                && Grants::Only(m.permissions).check(&wanted).is_ok()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Members of a company (company admins, staff with `COMPANY_READ`, assigned sales reps).
    pub async fn members(&self, caller: &Caller, company_id: Uuid) -> AppResult<Vec<Member>> {
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let need = if caller.membership().is_some() {
            Need::Write(CompanyPermission::ManageUsers)
        } else {
            Need::Read
        };
        self.authorize(&tx, caller, company_id, need).await?;
        let rows = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .order_by_asc(member::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        rows.into_iter().map(Member::try_from).collect()
    }

    async fn members_where(
        &self,
        tenant: TenantId,
        column: member::Column,
        ids: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        let backend = self.core.db.backend();
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(member::Entity::find()
                        .filter(member::Column::TenantId.eq(tenant.0))
                        .filter(id_in(backend, (member::Entity, column), ids))
                        .order_by_asc(member::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// Members of several companies (for loaders; the caller checked access).
    pub async fn members_of(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CompanyId, companies)
            .await
    }

    /// Memberships of several customers (for loaders).
    pub async fn memberships_of_many(
        &self,
        tenant: TenantId,
        customers: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CustomerId, customers)
            .await
    }

    /// Sales reps of several companies (for loaders): `(company, staff user)` pairs.
    pub async fn sales_reps_of(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<(Uuid, Uuid)>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(sales_rep::Entity::find()
                        .select_only()
                        .column(sales_rep::Column::CompanyId)
                        .column(sales_rep::Column::StaffUserId)
                        .filter(sales_rep::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (sales_rep::Entity, sales_rep::Column::CompanyId),
                            companies,
                        ))
                        .into_tuple::<(Uuid, Uuid)>()
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// The companies a customer belongs to.
    pub async fn memberships_of(&self, tenant: TenantId, customer: Uuid) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CustomerId, vec![customer])
            .await
    }

    /// The member row of `customer` in the accessed company, if the caller may change it: a
    /// company user changes only members whose rights they hold themselves.
    async fn member_within(
        &self,
        uow: &UnitOfWork,
        view: &CompanyView,
        grants: &Grants,
        customer: Uuid,
    ) -> AppResult<member::Model> {
        let row = member::Entity::find()
            .filter(member::Column::TenantId.eq(uow.tenant().0))
            .filter(member::Column::CompanyId.eq(view.company.id))
            .filter(member::Column::CustomerId.eq(customer))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("CompanyUser", customer))?;
        if !grants.is_staff() {
            let roles: Vec<String> = serde_json::from_str(&row.roles).unwrap_or_default();
            let held =
                Self::check_roles(uow.tx(), uow.tenant(), view.company.root_id, &roles).await;
            match held {
                Ok(held) => grants.check(&held)?,
                Err(AppError::Validation { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(row)
    }

    async fn admins_after(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        company_id: Uuid,
        changed: Uuid,
        new_roles: Option<&[String]>,
    ) -> AppResult<usize> {
        let rows = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .all(tx)
            .await?;
        let mut admins = 0;
        for row in rows {
            let roles: Vec<String> = if row.customer_id == changed {
                match new_roles {
                    Some(r) => r.to_vec(),
                    None => continue,
                }
            } else {
                serde_json::from_str(&row.roles).unwrap_or_default()
            };
            if roles.iter().any(|r| r == "admin") {
                admins += 1;
            }
        }
        Ok(admins)
    }

    fn last_admin() -> AppError {
        AppError::validation("roles", "a company keeps at least one admin")
    }

    /// Changes a member's roles, locations or spending limit. The last admin cannot lose the
    /// admin role.
    pub async fn update_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
        patch: MemberPatch,
    ) -> AppResult<Member> {
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let Access { view, grants } = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        let current = self
            .member_within(&uow, &view, &grants, customer_id)
            .await?;
        let own = caller.actor() == Some(customer_id);
        if own && patch.spending_limit.is_some() && !grants.is_staff() {
            return Err(AppError::Rejected {
                code: code::FORBIDDEN,
                message: "company users cannot change their own spending limit".into(),
            });
        }
        let mut sets: Vec<(member::Column, Expr)> = Vec::new();
        if let Some(roles) = &patch.roles {
            let granted =
                Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, roles).await?;
            grants.check(&granted)?;
            let was_admin = serde_json::from_str::<Vec<String>>(&current.roles)
                .unwrap_or_default()
                .iter()
                .any(|r| r == "admin");
            if was_admin
                && Self::admins_after(
                    uow.tx(),
                    caller.tenant,
                    company_id,
                    customer_id,
                    Some(roles),
                )
                .await?
                    == 0
            {
                return Err(Self::last_admin());
            }
            sets.push((
                member::Column::Roles,
                Expr::value(serde_json::to_string(roles).map_err(anyhow::Error::from)?),
            ));
        }
        if let Some(locations) = &patch.location_ids {
            self.check_locations(uow.tx(), &view, locations).await?;
            sets.push((
                member::Column::LocationIds,
                Expr::value(serde_json::to_string(locations).map_err(anyhow::Error::from)?),
            ));
        }
        if let Some(spending) = patch.spending_limit {
            let spending = limit("spendingLimit", spending)?;
            sets.push((
                member::Column::SpendingLimit,
                Expr::value(spending.as_ref().map(|s| s.1)),
            ));
            sets.push((
                member::Column::SpendingCurrency,
                Expr::value(spending.map(|s| s.0)),
            ));
        }
        let mut update = member::Entity::update_many()
            .col_expr(
                member::Column::Version,
                Expr::col(member::Column::Version).add(1),
            )
            .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(member::Column::Id.eq(current.id));
        for (column, value) in sets {
            update = update.col_expr(column, value);
        }
        let updated = update
            .exec_with_returning(uow.tx())
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("CompanyUser", customer_id))?;
        let result = Member::try_from(updated)?;
        uow
            .change::<company::Entity>(company_id, Vec::new(), "vectis.company.user_updated", |_| json!({ "companyId": company_id, "customerId": customer_id, "roles": result.roles,
                    "locationIds": result.location_ids,
                    "spendingLimit": result.spending_limit.map(|m| json!({"amount": m.amount, "currency": m.currency})) }))
            .await?;
        uow.commit().await?;
        Ok(result)
    }

    /// Removes a member from a company; the last admin cannot be removed.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
    ) -> AppResult<()> {
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let Access { view, grants } = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        let current = self
            .member_within(&uow, &view, &grants, customer_id)
            .await?;
        let was_admin = serde_json::from_str::<Vec<String>>(&current.roles)
            .unwrap_or_default()
            .iter()
            .any(|r| r == "admin");
        if was_admin
            && Self::admins_after(uow.tx(), caller.tenant, company_id, customer_id, None).await?
                == 0
        {
            return Err(Self::last_admin());
        }
        member::Entity::delete_many()
            .filter(member::Column::Id.eq(current.id))
            .exec(uow.tx())
            .await?;
        // Invitations the member sent into this company's subtree die with the membership.
        invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(invitation::Column::TenantId.eq(caller.tenant.0))
            .filter(invitation::Column::InvitedBy.eq(customer_id))
            .filter(invitation::Column::InviterKind.eq("customer"))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(id_in(
                self.core.db.backend(),
                (invitation::Entity, invitation::Column::CompanyId),
                descendants(&view.tree, company_id).into_iter().collect(),
            ))
            .exec(uow.tx())
            .await?;
        uow.change::<company::Entity>(
            company_id,
            Vec::new(),
            "vectis.company.user_removed",
            |_| json!({ "companyId": company_id, "customerId": customer_id }),
        )
        .await?;
        uow.commit().await?;
        Ok(())
    }

    /// Adds a member directly (staff and seeding), without an invitation.
    pub async fn add_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
        roles: Vec<String>,
        location_ids: Vec<Uuid>,
    ) -> AppResult<Member> {
        caller.require(Permission::CompanyWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let view = self
            .authorize(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, &roles).await?;
        self.check_locations(uow.tx(), &view, &location_ids).await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let row = member::Entity::insert(member::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            customer_id: Set(customer_id),
            roles: Set(serde_json::to_string(&roles).map_err(anyhow::Error::from)?),
            location_ids: Set(serde_json::to_string(&location_ids).map_err(anyhow::Error::from)?),
            spending_limit: Set(None),
            spending_currency: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(|err| {
            let text = err.to_string();
            if text.contains("FOREIGN KEY") || text.contains("foreign key") {
                AppError::not_found("Customer", customer_id)
            } else {
                crate::db::conflict(
                    "uq_company_members_company_customer",
                    "company_members.company_id",
                    "this person is a member of the company already",
                )(err)
            }
        })?;
        uow.change::<company::Entity>(
            company_id,
            Vec::new(),
            "vectis.company.user_joined",
            |_| json!({ "companyId": company_id, "customerId": customer_id, "roles": roles }),
        )
        .await?;
        uow.commit().await?;
        Member::try_from(row)
    }

    /// Creates a custom role for a company tree from a permission set.
    pub async fn create_role(
        &self,
        caller: &Caller,
        company_id: Uuid,
        code_: &str,
        name: &str,
        permissions: Vec<CompanyPermission>,
    ) -> AppResult<(String, String, Vec<CompanyPermission>)> {
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let Access { view, grants } = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        grants.check(&permissions)?;
        let code_ = crate::catalog::service::validate_code("code", &code_.to_lowercase())?;
        if builtin_company_role(&code_).is_some() {
            return Err(AppError::validation("code", "is a built-in role"));
        }
        if permissions.is_empty() {
            return Err(AppError::validation(
                "permissions",
                "name at least one permission",
            ));
        }
        let name = text::name("name", name, 200)?;
        let now = Utc::now();
        role::Entity::insert(role::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(view.company.root_id),
            code: Set(code_.clone()),
            name: Set(name.clone()),
            permissions: Set(serde_json::to_string(&permissions).map_err(anyhow::Error::from)?),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_company_roles_company_code",
            "company_roles.company_id",
            format!("role `{code_}` exists already"),
        ))?;
        uow
            .change::<company::Entity>(view.company.root_id, Vec::new(), "vectis.company.role_created", |_| json!({ "companyId": view.company.root_id, "code": code_, "name": name, "permissions": permissions }))
            .await?;
        uow.commit().await?;
        Ok((code_, name, permissions))
    }

    /// Assigns a sales rep (a staff user of the tenant, checked by the caller) to a company.
    pub async fn assign_sales_rep(
        &self,
        caller: &Caller,
        company_id: Uuid,
        staff: Uuid,
        assign: bool,
    ) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        self.authorize(
            uow.tx(),
            caller,
            company_id,
            Need::Write(CompanyPermission::ManageUsers),
        )
        .await?;
        let existing = sales_rep::Entity::find()
            .filter(sales_rep::Column::TenantId.eq(caller.tenant.0))
            .filter(sales_rep::Column::StaffUserId.eq(staff))
            .filter(sales_rep::Column::CompanyId.eq(company_id))
            .one(uow.tx())
            .await?;
        let changed = match (assign, existing.is_some()) {
            (true, false) => {
                sales_rep::Entity::insert(sales_rep::ActiveModel {
                    tenant_id: Set(caller.tenant.0),
                    staff_user_id: Set(staff),
                    company_id: Set(company_id),
                    created_at: Set(Utc::now()),
                })
                .exec_without_returning(uow.tx())
                .await?;
                true
            }
            (false, true) => {
                sales_rep::Entity::delete_many()
                    .filter(sales_rep::Column::TenantId.eq(caller.tenant.0))
                    .filter(sales_rep::Column::StaffUserId.eq(staff))
                    .filter(sales_rep::Column::CompanyId.eq(company_id))
                    .exec(uow.tx())
                    .await?;
                true
            }
            _ => false,
        };
        if changed {
            let event = if assign {
                "vectis.company.sales_rep_assigned"
            } else {
                "vectis.company.sales_rep_unassigned"
            };
            uow.change::<company::Entity>(
                company_id,
                Vec::new(),
                event,
                |_| json!({ "companyId": company_id, "staffUserId": staff }),
            )
            .await?;
        }
        let view = Self::load_tree(uow.tx(), caller.tenant, company_id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", company_id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Checks that the caller may act on behalf of `customer` in `company`: a staff user with
    /// `IMPERSONATE` assigned to the company (or an ancestor), or a super admin; the customer
    /// must be a member.
    pub async fn check_impersonation(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer: Uuid,
    ) -> AppResult<()> {
        caller.require(Permission::Impersonate)?;
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let view = self.authorize(&tx, caller, company_id, Need::Read).await?;
        if !caller.has(Permission::SuperAdmin) {
            let staff = caller
                .staff_id()
                .ok_or_else(|| AppError::Forbidden("IMPERSONATE".into()))?;
            let assigned = Self::assigned(&tx, caller.tenant, staff).await?;
            if !view.ancestry().iter().any(|c| assigned.contains(&c.id)) {
                return Err(AppError::not_found("Company", company_id));
            }
        }
        let is_member = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .filter(member::Column::CustomerId.eq(customer))
            .count(&tx)
            .await?
            > 0;
        tx.commit().await?;
        if is_member {
            Ok(())
        } else {
            Err(AppError::not_found("CompanyUser", customer))
        }
    }
}

fn company_json(c: &company::Model) -> serde_json::Value {
    json!({
        "id": c.id, "name": c.name, "parentId": c.parent_id, "rootId": c.root_id, "vatId": c.vat_id,
        "taxExempt": c.tax_exempt, "paymentTerms": c.payment_terms,
        "creditLimit": c.credit_limit.map(|a| json!({ "amount": a, "currency": c.credit_currency })),
        "customerGroupId": c.customer_group_id, "status": c.status,
    })
}
