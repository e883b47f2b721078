//! Authentication GraphQL: logins, token refresh, logout, `me`, API keys and staff users.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::api_key::ApiKey;
use super::{Caller, CompanyPermission, Permission, Principal, StaffRole, StaffUser, TokenPair};
use crate::accounts::graphql::CustomerObject;
use crate::companies::graphql::CompanyObject;
use crate::error::AppError;
use crate::graphql::context::{caller, client_ip, require, services};
use crate::graphql::ids::parse_id;
use crate::tenancy::Tenant;

/// Kinds of callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PrincipalKind {
    /// Anonymous storefront visitor (storefront key only).
    Storefront,
    /// Staff user.
    Staff,
    /// Customer (B2C or company user).
    Customer,
    /// Integrator API key.
    ApiKey,
}

/// A staff user.
#[derive(SimpleObject)]
#[graphql(name = "StaffUser")]
pub struct StaffUserObject {
    /// Id.
    pub id: ID,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<StaffRole>,
    /// Effective permissions.
    pub permissions: Vec<Permission>,
}

impl From<StaffUser> for StaffUserObject {
    fn from(u: StaffUser) -> Self {
        StaffUserObject {
            id: ID(u.id.to_string()),
            permissions: u.permissions(),
            email: u.email,
            display_name: u.display_name,
            roles: u.roles,
        }
    }
}

/// Who the caller is.
pub struct Viewer(pub Caller);

#[Object]
impl Viewer {
    /// Kind of caller.
    async fn kind(&self) -> PrincipalKind {
        match self.0.principal {
            Principal::Storefront => PrincipalKind::Storefront,
            Principal::Staff { .. } => PrincipalKind::Staff,
            Principal::Customer { .. } => PrincipalKind::Customer,
            Principal::ApiKey { .. } => PrincipalKind::ApiKey,
        }
    }
    /// Tenant.
    async fn tenant_id(&self) -> ID {
        ID(self.0.tenant.to_string())
    }
    /// Staff and API-key permissions.
    async fn permissions(&self) -> Vec<Permission> {
        match &self.0.principal {
            Principal::Staff { permissions, .. } | Principal::ApiKey { permissions, .. } => {
                permissions.clone()
            }
            _ => Vec::new(),
        }
    }
    /// Company permissions of a company user in their current company.
    async fn company_permissions(&self) -> Vec<CompanyPermission> {
        self.0
            .membership()
            .map(|m| m.permissions.clone())
            .unwrap_or_default()
    }
    /// Company role codes of a company user.
    async fn company_roles(&self) -> Vec<String> {
        self.0
            .membership()
            .map(|m| m.roles.clone())
            .unwrap_or_default()
    }
    /// The location a company user acts in (pricing and checkout context).
    async fn location_id(&self) -> Option<ID> {
        self.0
            .membership()
            .and_then(|m| m.location_id)
            .map(|l| ID(l.to_string()))
    }
    /// The staff user acting on the customer's behalf (impersonation).
    async fn acting_staff_id(&self) -> Option<ID> {
        self.0.acting_staff().map(|s| ID(s.to_string()))
    }
    /// The staff user, for staff callers.
    async fn staff(&self, ctx: &Context<'_>) -> Result<Option<StaffUserObject>> {
        let Some(id) = self.0.staff_id() else {
            return Ok(None);
        };
        Ok(services(ctx)
            .auth
            .staff_by_id(self.0.tenant, id)
            .await?
            .map(Into::into))
    }
    /// The customer, for customer callers.
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<CustomerObject>> {
        let Principal::Customer { id, .. } = &self.0.principal else {
            return Ok(None);
        };
        Ok(services(ctx)
            .accounts
            .customer(self.0.tenant, *id)
            .await?
            .map(CustomerObject))
    }
    /// The company a company user acts for.
    async fn company(&self, ctx: &Context<'_>) -> Result<Option<CompanyObject>> {
        if self.0.membership().is_none() {
            return Ok(None);
        }
        Ok(services(ctx)
            .companies
            .my_company(&self.0)
            .await?
            .map(CompanyObject))
    }
}

/// Tokens issued by logins and `refreshToken`.
pub struct AuthPayload(pub TokenPair);

#[Object]
impl AuthPayload {
    /// Short-lived JWT; send as `Authorization: Bearer <accessToken>`.
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }
    /// When the access token expires.
    async fn access_token_expires_at(&self) -> DateTime<Utc> {
        self.0.access_token_expires_at
    }
    /// Single-use refresh token; exchange it with `refreshToken` before it expires.
    async fn refresh_token(&self) -> &str {
        &self.0.refresh_token
    }
    /// When the refresh token expires.
    async fn refresh_token_expires_at(&self) -> DateTime<Utc> {
        self.0.refresh_token_expires_at
    }
    /// Who the tokens stand for.
    async fn viewer(&self) -> Viewer {
        Viewer(self.0.caller.clone())
    }
}

/// An API key (its secret is shown only by `createApiKey`).
#[derive(SimpleObject)]
#[graphql(name = "ApiKey")]
pub struct ApiKeyObject {
    /// Id.
    pub id: ID,
    /// Name.
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Scoped permissions.
    pub permissions: Vec<Permission>,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyObject {
    fn from(k: ApiKey) -> Self {
        ApiKeyObject {
            id: ID(k.id.to_string()),
            name: k.name,
            prefix: k.prefix,
            permissions: k.permissions,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
        }
    }
}

/// A new API key with its secret, shown this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The key.
    pub api_key: ApiKeyObject,
    /// Send as `Authorization: Bearer <secret>`. Not retrievable later.
    pub secret: String,
}

/// Input of `createApiKey`.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// Name, e.g. the integration it serves.
    pub name: String,
    /// Permissions (at most those of the creator).
    pub permissions: Vec<Permission>,
}

/// Input of `createStaffUser`.
#[derive(InputObject)]
pub struct CreateStaffUserInput {
    /// Login email.
    pub email: String,
    /// Initial password.
    pub password: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<StaffRole>,
}

/// Input of `updateStaffUser`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateStaffUserInput {
    /// Display name.
    pub display_name: Option<String>,
    /// Roles (replacing the current ones).
    pub roles: Option<Vec<StaffRole>>,
    /// Whether the user may log in.
    pub active: Option<bool>,
}

/// The tenant named by `tenant` or by the request's storefront key or token.
pub async fn resolve_tenant(ctx: &Context<'_>, tenant: Option<String>) -> Result<Tenant, AppError> {
    let services = services(ctx);
    let invalid = || AppError::Unauthenticated("invalid email or password".into());
    match (tenant, ctx.data_opt::<Caller>()) {
        (Some(slug), _) => services.tenants.by_slug(&slug).await?.ok_or_else(invalid),
        (None, Some(caller)) => services
            .tenants
            .by_id(caller.tenant)
            .await?
            .ok_or_else(invalid),
        (None, None) => Err(AppError::validation(
            "tenant",
            "name the tenant or send an X-Vectis-Storefront-Key header",
        )),
    }
}

/// Authentication queries.
#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The caller: kind, tenant, permissions and, by kind, the staff user, customer or company.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        Ok(Viewer(caller(ctx)?.clone()))
    }

    /// The tenant's API keys, newest first.
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyObject>> {
        let caller = require(ctx, Permission::ApiKeyWrite)?;
        Ok(services(ctx)
            .auth
            .api_keys(caller)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// Authentication mutations.
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Logs a staff user in. The tenant is named by `tenant` (its slug) or, when omitted, by
    /// the request's storefront key. Failures never say whether the email exists; repeated
    /// failures are throttled (`RATE_LIMITED`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        tenant: Option<String>,
    ) -> Result<AuthPayload> {
        let tenant = resolve_tenant(ctx, tenant).await?;
        Ok(AuthPayload(
            services(ctx)
                .auth
                .staff_login(&tenant, &email, &password, client_ip(ctx))
                .await?,
        ))
    }

    /// Logs a customer in (storefronts). A company user acts for their first company and its
    /// first location they may use; `switchCompanyContext` changes that.
    async fn customer_login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        tenant: Option<String>,
    ) -> Result<AuthPayload> {
        let tenant = resolve_tenant(ctx, tenant).await?;
        Ok(AuthPayload(
            services(ctx)
                .auth
                .customer_login(&tenant, &email, &password, client_ip(ctx))
                .await?,
        ))
    }

    /// Exchanges a refresh token for new tokens. The old refresh token stops working; using it
    /// again revokes the whole session.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(AuthPayload(
            services(ctx).auth.refresh(&refresh_token).await?,
        ))
    }

    /// Ends the session of a refresh token. Always succeeds.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        services(ctx).auth.logout(&refresh_token).await?;
        Ok(true)
    }

    /// Ends every session of the calling staff user or customer: all their refresh tokens
    /// stop working (access tokens expire on their own within minutes). Returns how many
    /// sessions ended.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> Result<i32> {
        let caller = caller(ctx)?;
        let ended = services(ctx).auth.logout_everywhere(caller).await?;
        Ok(i32::try_from(ended).unwrap_or(i32::MAX))
    }

    /// New tokens for the calling company user, acting for another of their companies or at
    /// another location.
    async fn switch_company_context(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        location_id: Option<ID>,
    ) -> Result<AuthPayload> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let location = location_id
            .as_ref()
            .map(|l| parse_id("locationId", l))
            .transpose()?;
        Ok(AuthPayload(
            services(ctx)
                .auth
                .switch_context(caller, company, location)
                .await?,
        ))
    }

    /// Accepts an invitation with the token from the email and logs the new company user in.
    /// `password` (and names) are required when the email has no account yet.
    async fn accept_company_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> Result<AuthPayload> {
        Ok(AuthPayload(
            services(ctx)
                .auth
                .accept_invitation(&token, password, first_name, last_name)
                .await?,
        ))
    }

    /// Tokens to act on behalf of a company user: for sales reps assigned to the company
    /// (`IMPERSONATE`). Everything done with them records the acting staff user; the
    /// impersonation ends when the rep is unassigned or disabled.
    async fn impersonate_company_user(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        customer_id: ID,
    ) -> Result<AuthPayload> {
        let caller = require(ctx, Permission::Impersonate)?;
        let company = parse_id("companyId", &company_id)?;
        let customer = parse_id("customerId", &customer_id)?;
        Ok(AuthPayload(
            services(ctx)
                .auth
                .impersonate(caller, company, customer)
                .await?,
        ))
    }

    /// Creates a staff user (`STAFF_WRITE`; the caller must hold every permission of the
    /// roles it gives, so only super admins create admins).
    async fn create_staff_user(
        &self,
        ctx: &Context<'_>,
        input: CreateStaffUserInput,
    ) -> Result<StaffUserObject> {
        let caller = require(ctx, Permission::StaffWrite)?;
        let user = services(ctx)
            .auth
            .create_staff(
                caller.tenant,
                Some(caller),
                &input.email,
                &input.password,
                &input.display_name,
                &input.roles,
            )
            .await?;
        Ok(user.into())
    }

    /// Changes a staff user's name, roles or whether they may log in (`STAFF_WRITE`; the
    /// caller must hold every permission of the roles involved). Changing roles or disabling
    /// ends the user's sessions.
    async fn update_staff_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateStaffUserInput,
    ) -> Result<StaffUserObject> {
        let caller = require(ctx, Permission::StaffWrite)?;
        let id = parse_id("id", &id)?;
        let user = services(ctx)
            .auth
            .update_staff(
                caller,
                id,
                super::staff::StaffPatch {
                    display_name: input.display_name,
                    roles: input.roles,
                    active: input.active,
                },
            )
            .await?;
        Ok(user.into())
    }

    /// Creates an API key for an integrator. The secret is in the result only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        let caller = require(ctx, Permission::ApiKeyWrite)?;
        let (key, secret) = services(ctx)
            .auth
            .create_api_key(caller, &input.name, &input.permissions)
            .await?;
        Ok(CreatedApiKey {
            api_key: key.into(),
            secret,
        })
    }

    /// Revokes an API key; it stops working at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKeyObject> {
        let caller = require(ctx, Permission::ApiKeyWrite)?;
        let id: Uuid = parse_id("id", &id)?;
        Ok(services(ctx).auth.revoke_api_key(caller, id).await?.into())
    }
}
