//! Authentication GraphQL: login, token refresh, logout.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Permission, TokenPair};
use crate::error::AppError;
use crate::graphql::context::services;

/// A staff user as seen by themselves.
#[derive(SimpleObject)]
pub struct StaffUserObject {
    /// Id.
    pub id: async_graphql::ID,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Permissions.
    pub permissions: Vec<Permission>,
}

/// Tokens issued by `login` and `refreshToken`.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT; send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// When the access token expires.
    pub access_token_expires_at: DateTime<Utc>,
    /// Single-use refresh token; exchange it with `refreshToken` before it expires.
    pub refresh_token: String,
    /// When the refresh token expires.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// The logged-in staff user.
    pub staff: StaffUserObject,
}

impl From<TokenPair> for AuthPayload {
    fn from(pair: TokenPair) -> Self {
        AuthPayload {
            access_token: pair.access_token,
            access_token_expires_at: pair.access_token_expires_at,
            refresh_token: pair.refresh_token,
            refresh_token_expires_at: pair.refresh_token_expires_at,
            staff: StaffUserObject {
                id: async_graphql::ID(pair.staff.id.to_string()),
                email: pair.staff.email,
                display_name: pair.staff.display_name,
                permissions: pair.staff.permissions,
            },
        }
    }
}

/// Authentication mutations (public).
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Logs a staff user in. The tenant is named by `tenant` (its slug) or, when omitted, by
    /// the request's storefront key. Failures never say whether the email exists.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        tenant: Option<String>,
    ) -> Result<AuthPayload> {
        let services = services(ctx);
        let invalid = || AppError::Unauthenticated("invalid email or password".into());
        let tenant = match (tenant, ctx.data_opt::<super::Caller>()) {
            (Some(slug), _) => services.tenants.by_slug(&slug).await?.ok_or_else(invalid)?,
            (None, Some(caller)) => services
                .tenants
                .by_id(caller.tenant)
                .await?
                .ok_or_else(invalid)?,
            (None, None) => {
                return Err(AppError::validation(
                    "tenant",
                    "name the tenant or send an X-Vectis-Storefront-Key header",
                )
                .into());
            }
        };
        Ok(services
            .auth
            .login(&tenant, &email, &password)
            .await?
            .into())
    }

    /// Exchanges a refresh token for new tokens. The old refresh token stops working; using it
    /// again revokes the whole session.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(services(ctx).auth.refresh(&refresh_token).await?.into())
    }

    /// Ends the session of a refresh token. Always succeeds.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        services(ctx).auth.logout(&refresh_token).await?;
        Ok(true)
    }
}
