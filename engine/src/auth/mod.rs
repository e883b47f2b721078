//! Authentication and authorisation core.
//!
//! Principals: staff users (admin panels), customers (storefronts; B2B buyers act in one
//! company location), API keys (integrators), and anonymous storefront visitors identified by
//! a storefront key. A request's [`Caller`] comes from `Authorization: Bearer <jwt>`,
//! `Authorization: Bearer vk_…` (API key) or `X-Vectis-Storefront-Key`.
//!
//! - `tokens`: JWT access tokens and rotating refresh tokens (reuse revokes the family).
//! - `staff`: staff users, their roles and login.
//! - `api_key`: integrator keys, hashed at rest, shown once, revocable.
//! - `throttle`: login throttling per account and per client IP.
//! - `graphql`: login, refresh, logout, `me`, API keys, staff users.

pub mod api_key;
pub mod entity;
pub mod graphql;
mod password;
pub mod staff;
pub mod throttle;
pub mod tokens;

use async_graphql::Enum;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use password::{hash_password, validate_password, verify_password};
pub use staff::StaffUser;
pub use tokens::{AuthService, Claims, TokenPair};

use crate::error::{AppError, AppResult};
use crate::kernel::TenantId;

/// A permission of staff users and API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// Everything, including what later permissions will add.
    SuperAdmin,
    /// Read the admin view of the catalog (archived products included).
    CatalogRead,
    /// Create and change products, variants, prices and collections.
    CatalogWrite,
    /// Read customers and customer groups.
    CustomerRead,
    /// Change customers and customer groups.
    CustomerWrite,
    /// Read all companies.
    CompanyRead,
    /// Create and change companies, locations, members and sales-rep assignments.
    CompanyWrite,
    /// Create staff users.
    StaffWrite,
    /// Create and revoke API keys.
    ApiKeyWrite,
    /// Act on behalf of company users of assigned companies (sales reps).
    Impersonate,
    /// Manage webhook endpoints and read their deliveries.
    WebhookWrite,
    /// Read all orders.
    OrderRead,
    /// Change orders: transitions, cancellations, payment settlement, shipments, returns.
    OrderWrite,
    /// Read stock locations, exact stock levels and movements.
    InventoryRead,
    /// Create stock locations, adjust and import stock, set backorder policies and inventory
    /// settings.
    InventoryWrite,
}

/// A staff role: a named set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StaffRole {
    /// All permissions.
    Admin,
    /// The catalog.
    CatalogManager,
    /// Orders, with read access to catalog, customers and companies.
    OrderManager,
    /// Reads and acts for the companies assigned to them.
    SalesRep,
    /// Stock: locations, levels, imports, backorder policies; reads the catalog and orders.
    InventoryManager,
}

impl StaffRole {
    /// The permissions the role grants.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            StaffRole::Admin => &[SuperAdmin],
            StaffRole::CatalogManager => &[CatalogRead, CatalogWrite],
            StaffRole::OrderManager => &[
                CatalogRead,
                CustomerRead,
                CompanyRead,
                OrderRead,
                OrderWrite,
                InventoryRead,
            ],
            StaffRole::SalesRep => &[CatalogRead, Impersonate],
            StaffRole::InventoryManager => &[CatalogRead, OrderRead, InventoryRead, InventoryWrite],
        }
    }
}

/// What a company user may do within their company (and its divisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompanyPermission {
    /// See the company, its divisions and locations.
    ViewCompany,
    /// Invite, change and remove company users; manage custom roles.
    ManageUsers,
    /// Add and change locations.
    ManageLocations,
    /// Place orders (and see and cancel one's own).
    PlaceOrders,
    /// Approve orders of others.
    ApproveOrders,
    /// See all of the company's orders (within its divisions), not only one's own.
    ViewOrders,
    /// Manage the company's approval rules (and its divisions').
    ManageApprovals,
    /// Share requisition lists with the company and change shared ones.
    ManageRequisitionLists,
}

/// The built-in company roles and their permissions; custom roles are stored per company.
pub fn builtin_company_role(code: &str) -> Option<&'static [CompanyPermission]> {
    use CompanyPermission::*;
    Some(match code {
        "admin" => &[
            ViewCompany,
            ManageUsers,
            ManageLocations,
            PlaceOrders,
            ApproveOrders,
            ViewOrders,
            ManageApprovals,
            ManageRequisitionLists,
        ],
        "buyer" => &[ViewCompany, PlaceOrders],
        "approver" => &[ViewCompany, ApproveOrders, ViewOrders],
        "viewer" => &[ViewCompany, ViewOrders],
        _ => return None,
    })
}

/// A customer's membership in a company, as carried by their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The company the customer acts for.
    pub company_id: Uuid,
    /// The location the customer acts in (pricing and checkout context), if chosen.
    pub location_id: Option<Uuid>,
    /// Role codes.
    pub roles: Vec<String>,
    /// Permissions granted by the roles.
    pub permissions: Vec<CompanyPermission>,
}

impl Membership {
    /// Whether the roles grant `permission`.
    pub fn can(&self, permission: CompanyPermission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An anonymous storefront visitor, identified only by the storefront key.
    Storefront,
    /// A staff user with their effective permissions (from the access token).
    Staff {
        /// Staff user id.
        id: Uuid,
        /// Effective permissions.
        permissions: Vec<Permission>,
    },
    /// A customer; B2B customers carry their company membership.
    Customer {
        /// Customer id.
        id: Uuid,
        /// The company context, for company users.
        membership: Option<Membership>,
        /// The staff user acting on the customer's behalf (impersonation), if any.
        acting_staff: Option<Uuid>,
    },
    /// An integrator's API key.
    ApiKey {
        /// Key id.
        id: Uuid,
        /// Scoped permissions.
        permissions: Vec<Permission>,
    },
}

/// The authenticated context of a request: tenant plus principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant every query of this request is scoped to.
    pub tenant: TenantId,
    /// Who acts.
    pub principal: Principal,
}

impl Caller {
    /// Whether the caller holds `permission` (`SUPER_ADMIN` holds all).
    pub fn has(&self, permission: Permission) -> bool {
        match &self.principal {
            Principal::Staff { permissions, .. } | Principal::ApiKey { permissions, .. } => {
                permissions
                    .iter()
                    .any(|p| *p == permission || *p == Permission::SuperAdmin)
            }
            Principal::Storefront | Principal::Customer { .. } => false,
        }
    }

    /// Fails with `UNAUTHENTICATED` for anonymous storefront callers and `FORBIDDEN` for others
    /// unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        match &self.principal {
            _ if self.has(permission) => Ok(()),
            Principal::Storefront => Err(AppError::Unauthenticated(
                "this operation needs a staff login or an API key".into(),
            )),
            _ => Err(AppError::Forbidden(permission_name(permission))),
        }
    }

    /// The acting principal's id (staff user, customer or API key), recorded on events.
    pub fn actor(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::Staff { id, .. }
            | Principal::Customer { id, .. }
            | Principal::ApiKey { id, .. } => Some(*id),
            Principal::Storefront => None,
        }
    }

    /// The staff user acting on behalf of a customer, if any.
    pub fn acting_staff(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::Customer { acting_staff, .. } => *acting_staff,
            _ => None,
        }
    }

    /// The staff user id, if the caller is staff.
    pub fn staff_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::Staff { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The customer id, or `UNAUTHENTICATED`/`FORBIDDEN` when the caller is no customer.
    pub fn require_customer(&self) -> AppResult<(Uuid, Option<&Membership>)> {
        match &self.principal {
            Principal::Customer { id, membership, .. } => Ok((*id, membership.as_ref())),
            Principal::Storefront => Err(AppError::Unauthenticated("log in as a customer".into())),
            _ => Err(AppError::Forbidden("CUSTOMER".into())),
        }
    }

    /// The company membership, if the caller is a company user.
    pub fn membership(&self) -> Option<&Membership> {
        match &self.principal {
            Principal::Customer { membership, .. } => membership.as_ref(),
            _ => None,
        }
    }
}

/// The GraphQL name of a permission, e.g. `CATALOG_WRITE`.
pub fn permission_name<T: Serialize>(permission: T) -> String {
    serde_json::to_value(permission)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Normalises and checks an email address.
pub fn normalize_email(field: &str, email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 320
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::validation(field, "is not a valid email address"))
    }
}

/// A random URL-safe secret of 32 bytes.
pub fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token that names its tenant: `<tenant id, 32 hex>.<secret>`, so it can be redeemed
/// without any other context. Only the secret's hash is stored.
pub fn tenant_token(tenant: TenantId) -> (String, String) {
    let secret = random_secret();
    let hash = crate::kernel::hash_key(&secret);
    (format!("{}.{secret}", tenant.0.simple()), hash)
}

/// Splits a tenant token into the tenant and the hash of its secret.
pub fn parse_tenant_token(token: &str) -> Option<(TenantId, String)> {
    let (tenant, secret) = token.trim().split_once('.')?;
    let tenant = Uuid::try_parse(tenant).ok()?;
    if secret.is_empty() {
        return None;
    }
    Some((TenantId(tenant), crate::kernel::hash_key(secret)))
}
