//! Access and refresh tokens, login of staff users and customers, and the resolution of a
//! request's caller.
//!
//! Access tokens are HS256 JWTs that carry the tenant, the principal kind, permissions and, for
//! company users, the company, location and roles. Refresh tokens are opaque, single-use and
//! stored hashed; each use rotates the token within its family, and presenting a token that was
//! already rotated or revoked revokes the whole family.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api_key::ApiKeyCache;
use super::entity::refresh_token;
use super::throttle::{ClientIp, LoginThrottle};
use super::{
    Caller, CompanyPermission, Membership, Permission, Principal, StaffUser, parse_tenant_token,
    tenant_token, verify_password,
};
use crate::accounts::{AccountsService, Customer};
use crate::companies::CompaniesService;
use crate::config::AuthConfig;
use crate::db::Scope;
use crate::error::{AppError, AppResult};
use crate::events::Core;
use crate::kernel::TenantId;
use crate::tenancy::{Tenant, TenantService};

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Principal id (staff user or customer).
    pub sub: Uuid,
    /// Tenant id.
    pub tid: Uuid,
    /// Principal kind: `staff` or `customer`.
    pub knd: String,
    /// Permissions: staff permissions, or company permissions for company users.
    pub prm: Vec<String>,
    /// Company role codes (company users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rol: Vec<String>,
    /// Company (company users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmp: Option<Uuid>,
    /// Location the company user acts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<Uuid>,
    /// Staff user acting on the customer's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Uuid>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

impl Claims {
    /// The caller these claims describe.
    pub fn caller(&self) -> AppResult<Caller> {
        let invalid = || AppError::Unauthenticated("invalid access token".into());
        fn parse<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, serde_json::Error> {
            serde_json::from_value(serde_json::Value::String(name.to_owned()))
        }
        let principal = match self.knd.as_str() {
            "staff" => Principal::Staff {
                id: self.sub,
                permissions: self
                    .prm
                    .iter()
                    .map(|p| parse::<Permission>(p))
                    .collect::<Result<_, _>>()
                    .map_err(|_| invalid())?,
            },
            "customer" => Principal::Customer {
                id: self.sub,
                membership: match self.cmp {
                    Some(company_id) => Some(Membership {
                        company_id,
                        location_id: self.loc,
                        roles: self.rol.clone(),
                        permissions: self
                            .prm
                            .iter()
                            .map(|p| parse::<CompanyPermission>(p))
                            .collect::<Result<Vec<CompanyPermission>, _>>()
                            .map_err(|_| invalid())?,
                    }),
                    None => None,
                },
                acting_staff: self.act,
            },
            _ => return Err(invalid()),
        };
        Ok(Caller {
            tenant: TenantId(self.tid),
            principal,
        })
    }
}

/// Tokens returned by login and refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// JWT access token for `Authorization: Bearer`.
    pub access_token: String,
    /// When the access token expires.
    pub access_token_expires_at: DateTime<Utc>,
    /// Opaque refresh token (single use).
    pub refresh_token: String,
    /// When the refresh token expires.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// The caller the tokens stand for.
    pub caller: Caller,
}

/// Issues and checks tokens; logs staff users and customers in.
#[derive(Clone)]
pub struct AuthService {
    pub(super) core: Core,
    tenants: TenantService,
    accounts: AccountsService,
    companies: CompaniesService,
    keys: Arc<Keys>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    throttle: LoginThrottle,
    pub(super) api_keys: ApiKeyCache,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

const INVALID_LOGIN: &str = "invalid email or password";
const INVALID_REFRESH: &str = "invalid or expired refresh token";

impl AuthService {
    /// Builds the service; without a configured secret a random one is generated.
    pub fn new(
        core: Core,
        tenants: TenantService,
        accounts: AccountsService,
        companies: CompaniesService,
        config: &AuthConfig,
    ) -> Self {
        let secret = match &config.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => super::random_secret().into_bytes(),
        };
        AuthService {
            core,
            tenants,
            accounts,
            companies,
            keys: Arc::new(Keys {
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
            }),
            access_ttl: Duration::seconds(
                i64::try_from(config.access_token_ttl_secs).unwrap_or(900),
            ),
            refresh_ttl: Duration::seconds(
                i64::try_from(config.refresh_token_ttl_secs).unwrap_or(2_592_000),
            ),
            throttle: LoginThrottle::default(),
            api_keys: ApiKeyCache::default(),
        }
    }

    /// Resolves the caller from the `Authorization` and storefront-key header values.
    ///
    /// A present but bad bearer token or key is an error (never silently anonymous); no
    /// credentials at all yield `None`.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        storefront_key: Option<&str>,
    ) -> AppResult<Option<Caller>> {
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    AppError::Unauthenticated("Authorization must be `Bearer <token>`".into())
                })?;
            if token.starts_with(super::api_key::PREFIX) {
                return self.authenticate_api_key(token).await.map(Some);
            }
            return self.verify_access_token(token)?.caller().map(Some);
        }
        if let Some(key) = storefront_key {
            let tenant = self
                .tenants
                .by_storefront_key(key)
                .await?
                .ok_or_else(|| AppError::Unauthenticated("unknown storefront key".into()))?;
            return Ok(Some(Caller {
                tenant: tenant.id,
                principal: Principal::Storefront,
            }));
        }
        Ok(None)
    }

    /// Checks signature and expiry of an access token.
    pub fn verify_access_token(&self, token: &str) -> AppResult<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthenticated("access token expired".into())
                }
                _ => AppError::Unauthenticated("invalid access token".into()),
            })
    }

    fn claims_for(&self, caller: &Caller) -> AppResult<Claims> {
        let now = Utc::now();
        let names = |v: Vec<String>| v;
        let (sub, knd, prm, rol, cmp, loc, act) = match &caller.principal {
            Principal::Staff { id, permissions } => (
                *id,
                "staff",
                names(
                    permissions
                        .iter()
                        .map(|p| super::permission_name(*p))
                        .collect(),
                ),
                Vec::new(),
                None,
                None,
                None,
            ),
            Principal::Customer {
                id,
                membership,
                acting_staff,
            } => (
                *id,
                "customer",
                membership
                    .as_ref()
                    .map(|m| {
                        m.permissions
                            .iter()
                            .map(|p| super::permission_name(*p))
                            .collect()
                    })
                    .unwrap_or_default(),
                membership
                    .as_ref()
                    .map(|m| m.roles.clone())
                    .unwrap_or_default(),
                membership.as_ref().map(|m| m.company_id),
                membership.as_ref().and_then(|m| m.location_id),
                *acting_staff,
            ),
            Principal::Storefront | Principal::ApiKey { .. } => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "no tokens for this principal"
                )));
            }
        };
        Ok(Claims {
            sub,
            tid: caller.tenant.0,
            knd: knd.into(),
            prm,
            rol,
            cmp,
            loc,
            act,
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            jti: Uuid::now_v7(),
        })
    }

    /// Issues an access token and a refresh token (in a new family unless `family` is given).
    pub async fn issue(&self, caller: Caller, family: Option<Uuid>) -> AppResult<TokenPair> {
        let tx = self.core.db.write(Scope::Tenant(caller.tenant)).await?;
        let pair = self.issue_in(&tx, caller, family).await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Issues tokens inside an open transaction (the refresh token row is written with it).
    async fn issue_in(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        caller: Caller,
        family: Option<Uuid>,
    ) -> AppResult<TokenPair> {
        let claims = self.claims_for(&caller)?;
        let access_token_expires_at =
            DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.keys.encoding)
                .map_err(|e| AppError::Internal(e.into()))?;
        let (refresh, hash) = tenant_token(caller.tenant);
        let now = Utc::now();
        let refresh_token_expires_at = now + self.refresh_ttl;
        let membership = caller.membership();
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            principal_kind: Set(claims.knd.clone()),
            principal_id: Set(claims.sub),
            company_id: Set(membership.map(|m| m.company_id)),
            location_id: Set(membership.and_then(|m| m.location_id)),
            acting_staff_id: Set(caller.acting_staff()),
            family_id: Set(family.unwrap_or_else(Uuid::now_v7)),
            token_hash: Set(hash),
            expires_at: Set(refresh_token_expires_at),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(tx)
        .await?;
        Ok(TokenPair {
            access_token,
            access_token_expires_at,
            refresh_token: refresh,
            refresh_token_expires_at,
            caller,
        })
    }

    /// Checks email and password of a staff user and issues tokens. Every failure reads the
    /// same, so the response does not reveal whether an email exists.
    pub async fn staff_login(
        &self,
        tenant: &Tenant,
        email: &str,
        password: &str,
        ip: Option<ClientIp>,
    ) -> AppResult<TokenPair> {
        let email = email.trim().to_lowercase();
        let account = format!("staff:{}:{email}", tenant.id);
        let wait = self.throttle.check(&account, ip)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let found = self.staff_credentials(tenant.id, email).await?;
        let (user, hash) = match found {
            Some((user, hash)) if user.active => (Some(user), Some(hash)),
            _ => (None, None),
        };
        if !self.check_password(password, hash).await? {
            self.throttle.failed(&account, ip);
            return Err(AppError::Unauthenticated(INVALID_LOGIN.into()));
        }
        self.throttle.succeeded(&account, ip);
        let user = user.ok_or_else(|| AppError::Unauthenticated(INVALID_LOGIN.into()))?;
        self.issue(staff_caller(&user), None).await
    }

    /// Checks email and password of a customer and issues tokens; a company user acts for
    /// their first company (and its first allowed location) until they choose another.
    pub async fn customer_login(
        &self,
        tenant: &Tenant,
        email: &str,
        password: &str,
        ip: Option<ClientIp>,
    ) -> AppResult<TokenPair> {
        let email = email.trim().to_lowercase();
        let account = format!("customer:{}:{email}", tenant.id);
        let wait = self.throttle.check(&account, ip)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let found = self.accounts.credentials(tenant.id, &email).await?;
        let (customer, hash) = match found {
            Some((customer, hash)) if customer.active => (Some(customer), hash),
            _ => (None, None),
        };
        if !self.check_password(password, hash).await? {
            self.throttle.failed(&account, ip);
            return Err(AppError::Unauthenticated(INVALID_LOGIN.into()));
        }
        self.throttle.succeeded(&account, ip);
        let customer = customer.ok_or_else(|| AppError::Unauthenticated(INVALID_LOGIN.into()))?;
        let membership = self
            .companies
            .membership(tenant.id, customer.id, None, None)
            .await?;
        self.issue(
            customer_caller(tenant.id, &customer, membership, None),
            None,
        )
        .await
    }

    /// Issues tokens for a customer whose identity was proven otherwise (accepted invitation,
    /// impersonation by a sales rep).
    pub async fn customer_session(
        &self,
        tenant: TenantId,
        customer: &Customer,
        company: Option<Uuid>,
        acting_staff: Option<Uuid>,
    ) -> AppResult<TokenPair> {
        let membership = self
            .companies
            .membership(tenant, customer.id, company, None)
            .await?;
        if company.is_some() && membership.is_none() {
            return Err(AppError::not_found("Company", company.unwrap_or_default()));
        }
        self.issue(
            customer_caller(tenant, customer, membership, acting_staff),
            None,
        )
        .await
    }

    /// Accepts a company invitation (creating the account when the email has none, then
    /// `password` and names are required) and logs the new company user in.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> AppResult<TokenPair> {
        let (tenant, customer, company) = self
            .companies
            .accept_invitation(token, password, first_name, last_name)
            .await?;
        self.customer_session(tenant, &customer, Some(company), None)
            .await
    }

    /// Tokens for a sales rep (`IMPERSONATE`, assigned to the company or an ancestor) to act
    /// on behalf of a company user; everything done with them records the rep too.
    pub async fn impersonate(
        &self,
        caller: &Caller,
        company: Uuid,
        customer: Uuid,
    ) -> AppResult<TokenPair> {
        self.companies
            .check_impersonation(caller, company, customer)
            .await?;
        let customer = self
            .accounts
            .customer(caller.tenant, customer)
            .await?
            .filter(|c| c.active)
            .ok_or_else(|| AppError::not_found("Customer", customer))?;
        self.customer_session(caller.tenant, &customer, Some(company), caller.staff_id())
            .await
    }

    /// Reissues the caller's tokens to act in another company or location of theirs.
    pub async fn switch_context(
        &self,
        caller: &Caller,
        company: Uuid,
        location: Option<Uuid>,
    ) -> AppResult<TokenPair> {
        let (customer_id, _) = caller.require_customer()?;
        let customer = self
            .accounts
            .customer(caller.tenant, customer_id)
            .await?
            .filter(|c| c.active)
            .ok_or_else(|| AppError::Unauthenticated("the customer is disabled".into()))?;
        let membership = self
            .companies
            .membership(caller.tenant, customer_id, Some(company), location)
            .await?
            .ok_or_else(|| match location {
                Some(l) => AppError::not_found("CompanyLocation", l),
                None => AppError::not_found("Company", company),
            })?;
        // An impersonation stays within the companies its sales rep is assigned to.
        if let Some(staff) = caller.acting_staff()
            && !self.may_impersonate(caller.tenant, staff, company).await?
        {
            return Err(AppError::not_found("Company", company));
        }
        self.issue(
            customer_caller(
                caller.tenant,
                &customer,
                Some(membership),
                caller.acting_staff(),
            ),
            None,
        )
        .await
    }

    /// Spends the same time on unknown accounts as on known ones.
    async fn check_password(&self, password: &str, hash: Option<String>) -> AppResult<bool> {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                let _ = verify_password(&password, &super::password::DUMMY_HASH);
                false
            }
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))
    }

    /// Exchanges a refresh token for a new pair. The presented token is redeemed with one
    /// conditional update, so of any number of concurrent calls with one token exactly one
    /// succeeds; presenting a token that was already redeemed or revoked (also concurrently)
    /// revokes its whole family, the new token included. The principal is read again, so
    /// disabled users, changed roles and ended impersonations take effect.
    pub async fn refresh(&self, token: &str) -> AppResult<TokenPair> {
        let dead = || AppError::Unauthenticated(INVALID_REFRESH.into());
        let (tenant, hash) = parse_tenant_token(token).ok_or_else(dead)?;
        let grant = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(refresh_token::Entity::find()
                        .filter(refresh_token::Column::TenantId.eq(tenant.0))
                        .filter(refresh_token::Column::TokenHash.eq(hash))
                        .one(tx)
                        .await?)
                })
            })
            .await?
            .ok_or_else(dead)?;
        if grant.expires_at <= Utc::now() && grant.revoked_at.is_none() {
            return Err(dead());
        }
        // Who the tokens will stand for, read before the redemption so that no transaction
        // waits for a second connection.
        let caller = if grant.revoked_at.is_none() {
            self.grant_caller(tenant, &grant).await?
        } else {
            None
        };
        let tx = self.core.db.write(Scope::Tenant(tenant)).await?;
        let redeemed = crate::db::lock::consume::<refresh_token::Entity, _>(
            &tx,
            tenant,
            "revoked_at",
            refresh_token::Column::Id.eq(grant.id),
        )
        .await?;
        match (redeemed, caller) {
            (Some(_), Some(caller)) => {
                let pair = self.issue_in(&tx, caller, Some(grant.family_id)).await?;
                tx.commit().await?;
                Ok(pair)
            }
            (Some(_), None) => {
                // The account was disabled, or the membership or impersonation ended.
                revoke_family(&tx, tenant, grant.family_id).await?;
                tx.commit().await?;
                Err(dead())
            }
            (None, _) => {
                revoke_family(&tx, tenant, grant.family_id).await?;
                tx.commit().await?;
                tracing::warn!(family = %grant.family_id, "refresh token reuse: family revoked");
                Err(dead())
            }
        }
    }

    /// The caller a refresh token's grant stands for now, or `None` when the principal may no
    /// longer have a session (disabled, no longer a member, impersonation ended).
    async fn grant_caller(
        &self,
        tenant: TenantId,
        grant: &refresh_token::Model,
    ) -> AppResult<Option<Caller>> {
        match grant.principal_kind.as_str() {
            "staff" => Ok(self
                .staff_by_id(tenant, grant.principal_id)
                .await?
                .filter(|u| u.active)
                .map(|u| staff_caller(&u))),
            "customer" => {
                let Some(customer) = self
                    .accounts
                    .customer(tenant, grant.principal_id)
                    .await?
                    .filter(|c| c.active)
                else {
                    return Ok(None);
                };
                let membership = match grant.company_id {
                    Some(company) => match self
                        .companies
                        .membership(tenant, customer.id, Some(company), grant.location_id)
                        .await?
                    {
                        Some(m) => Some(m),
                        None => return Ok(None),
                    },
                    None => None,
                };
                if let (Some(staff), Some(company)) = (grant.acting_staff_id, grant.company_id)
                    && !self.may_impersonate(tenant, staff, company).await?
                {
                    return Ok(None);
                }
                Ok(Some(customer_caller(
                    tenant,
                    &customer,
                    membership,
                    grant.acting_staff_id,
                )))
            }
            _ => Ok(None),
        }
    }

    /// Whether staff user `staff` may still act for the company users of `company`: active,
    /// holding `IMPERSONATE`, and assigned to the company or an ancestor (super admins need no
    /// assignment).
    pub async fn may_impersonate(
        &self,
        tenant: TenantId,
        staff: Uuid,
        company: Uuid,
    ) -> AppResult<bool> {
        let Some(user) = self.staff_by_id(tenant, staff).await?.filter(|u| u.active) else {
            return Ok(false);
        };
        let rep = staff_caller(&user);
        if !rep.has(Permission::Impersonate) {
            return Ok(false);
        }
        if rep.has(Permission::SuperAdmin) {
            return Ok(true);
        }
        self.companies.rep_covers(tenant, staff, company).await
    }

    /// The caller as the current state of the database has it: a token names who calls and in
    /// which company and location; what a company user may do there is read again (so a
    /// demotion or removal takes effect at the next request), and an impersonation whose sales
    /// rep was unassigned or disabled ends (`UNAUTHENTICATED`).
    pub async fn current(&self, caller: Caller) -> AppResult<Caller> {
        let Principal::Customer {
            id,
            membership: Some(membership),
            acting_staff,
        } = &caller.principal
        else {
            return Ok(caller);
        };
        if let Some(staff) = acting_staff
            && !self
                .may_impersonate(caller.tenant, *staff, membership.company_id)
                .await?
        {
            return Err(AppError::Unauthenticated(
                "the impersonation has ended".into(),
            ));
        }
        let current = self
            .companies
            .current_membership(
                caller.tenant,
                *id,
                membership.company_id,
                membership.location_id,
            )
            .await?;
        Ok(Caller {
            tenant: caller.tenant,
            principal: Principal::Customer {
                id: *id,
                membership: current,
                acting_staff: *acting_staff,
            },
        })
    }

    /// Sets a new password with a reset token and ends every session of the account, in one
    /// transaction.
    pub async fn reset_password(&self, token: &str, password: &str) -> AppResult<Customer> {
        let (uow, customer) = self.accounts.reset_password(token, password).await?;
        revoke_principal(uow.tx(), customer.tenant_id, "customer", customer.id).await?;
        uow.commit().await?;
        Ok(customer)
    }

    /// Ends every session of the calling staff user or customer ("log out everywhere"):
    /// all their refresh tokens are revoked; access tokens expire on their own.
    pub async fn logout_everywhere(&self, caller: &Caller) -> AppResult<u64> {
        let (kind, id) = match &caller.principal {
            Principal::Staff { id, .. } => ("staff", *id),
            Principal::Customer {
                id,
                acting_staff: None,
                ..
            } => ("customer", *id),
            Principal::Customer { .. } => {
                return Err(AppError::Forbidden("CUSTOMER".into()));
            }
            Principal::Storefront => {
                return Err(AppError::Unauthenticated("log in first".into()));
            }
            Principal::ApiKey { .. } => return Err(AppError::Forbidden("SESSION".into())),
        };
        let tx = self.core.db.write(Scope::Tenant(caller.tenant)).await?;
        let revoked = revoke_principal(&tx, caller.tenant, kind, id).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Revokes the refresh token's family (the session). Unknown tokens are ignored, so logout
    /// is idempotent.
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let Some((tenant, hash)) = parse_tenant_token(token) else {
            return Ok(());
        };
        let tx = self.core.db.write(Scope::Tenant(tenant)).await?;
        let found = refresh_token::Entity::find()
            .filter(refresh_token::Column::TenantId.eq(tenant.0))
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .one(&tx)
            .await?;
        if let Some(found) = found {
            revoke_family(&tx, tenant, found.family_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The caller a staff user's tokens stand for.
pub fn staff_caller(user: &StaffUser) -> Caller {
    Caller {
        tenant: user.tenant_id,
        principal: Principal::Staff {
            id: user.id,
            permissions: user.permissions(),
        },
    }
}

fn customer_caller(
    tenant: TenantId,
    customer: &Customer,
    membership: Option<Membership>,
    acting_staff: Option<Uuid>,
) -> Caller {
    Caller {
        tenant,
        principal: Principal::Customer {
            id: customer.id,
            membership,
            acting_staff,
        },
    }
}

/// Revokes every refresh token of a principal (`staff` or `customer`): all their sessions end
/// at their next refresh. Runs in the caller's transaction.
pub async fn revoke_principal(
    tx: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    kind: &str,
    id: Uuid,
) -> AppResult<u64> {
    revoke(
        tx,
        tenant,
        sea_orm::Condition::all()
            .add(refresh_token::Column::PrincipalKind.eq(kind))
            .add(refresh_token::Column::PrincipalId.eq(id)),
    )
    .await
}

async fn revoke_family(
    tx: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    family: Uuid,
) -> AppResult<u64> {
    revoke(tx, tenant, refresh_token::Column::FamilyId.eq(family)).await
}

/// Revokes the live refresh tokens of `tenant` that match `condition`.
async fn revoke(
    tx: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    condition: impl sea_orm::sea_query::IntoCondition,
) -> AppResult<u64> {
    let now = Utc::now();
    let done = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .col_expr(
            refresh_token::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(refresh_token::Column::TenantId.eq(tenant.0))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(condition)
        .exec(tx)
        .await?;
    Ok(done.rows_affected)
}
