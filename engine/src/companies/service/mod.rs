//! Companies, locations, members, roles, invitations and sales reps: the service, its
//! types, and one file per concern.

mod access;
mod credit;
mod invitations;
mod locations;
mod members;
mod roles;
mod sales_reps;
mod tree;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;

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
    /// That company.
    pub credit_holder: Option<Uuid>,
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
        let holder = chain.iter().find_map(|c| {
            let currency: CurrencyCode = c.credit_currency.as_deref()?.parse().ok()?;
            Some((
                c.id,
                Money::new(c.credit_limit?, currency),
                Money::new(c.credit_exposure, currency),
            ))
        });
        let credit = holder.map(|(_, limit, exposure)| (limit, exposure));
        EffectiveSettings {
            payment_terms,
            tax_exempt: chain.iter().find_map(|c| c.tax_exempt).unwrap_or(false),
            vat_id: chain.iter().find_map(|c| c.vat_id.clone()),
            customer_group_id: chain.iter().find_map(|c| c.customer_group_id),
            credit,
            credit_holder: holder.map(|(id, _, _)| id),
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
    /// The stock location serving this location first (staff only; absent keeps it).
    pub preferred_stock_location_id: Option<Uuid>,
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
    /// Spending limit per calendar month.
    pub monthly_spending_limit: Option<Money>,
}

impl TryFrom<member::Model> for Member {
    type Error = AppError;
    fn try_from(m: member::Model) -> AppResult<Self> {
        let corrupt = |e: String| AppError::Internal(anyhow::anyhow!("member {}: {e}", m.id));
        let limit_of = |amount: Option<i64>| -> AppResult<Option<Money>> {
            match (amount, m.spending_currency.as_deref()) {
                (Some(amount), Some(currency)) => Ok(Some(Money::new(
                    amount,
                    currency
                        .parse()
                        .map_err(|e: vectis_strategies::MoneyError| corrupt(e.to_string()))?,
                ))),
                _ => Ok(None),
            }
        };
        Ok(Member {
            id: m.id,
            company_id: m.company_id,
            customer_id: m.customer_id,
            roles: serde_json::from_str(&m.roles).map_err(|e| corrupt(e.to_string()))?,
            location_ids: serde_json::from_str(&m.location_ids)
                .map_err(|e| corrupt(e.to_string()))?,
            spending_limit: limit_of(m.spending_limit)?,
            monthly_spending_limit: limit_of(m.monthly_spending_limit)?,
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
    /// New spending limit per order (`Some(None)` removes it).
    pub spending_limit: Option<Option<(String, i64)>>,
    /// New spending limit per calendar month (`Some(None)` removes it), in the same currency
    /// as the per-order limit.
    pub monthly_spending_limit: Option<Option<(String, i64)>>,
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
}

fn company_json(c: &company::Model) -> serde_json::Value {
    json!({
        "id": c.id, "name": c.name, "parentId": c.parent_id, "rootId": c.root_id, "vatId": c.vat_id,
        "taxExempt": c.tax_exempt, "paymentTerms": c.payment_terms,
        "creditLimit": c.credit_limit.map(|a| json!({ "amount": a, "currency": c.credit_currency })),
        "customerGroupId": c.customer_group_id, "status": c.status,
    })
}
