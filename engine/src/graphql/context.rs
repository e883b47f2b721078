//! Per-request context helpers for resolvers.

use async_graphql::Context;

use crate::auth::{Caller, Permission};
use crate::error::AppError;
use crate::services::Services;

/// The caller, or `UNAUTHENTICATED` when the request has neither a token nor a storefront key.
pub fn caller<'a>(ctx: &'a Context<'_>) -> Result<&'a Caller, async_graphql::Error> {
    ctx.data_opt::<Caller>().ok_or_else(|| {
        AppError::Unauthenticated(
            "send a Bearer access token or an X-Vectis-Storefront-Key header".into(),
        )
        .into()
    })
}

/// The caller, if it holds `permission`.
pub fn require<'a>(
    ctx: &'a Context<'_>,
    permission: Permission,
) -> Result<&'a Caller, async_graphql::Error> {
    let caller = caller(ctx)?;
    caller.require(permission)?;
    Ok(caller)
}

/// The engine's services.
pub fn services<'a>(ctx: &'a Context<'_>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// The client address of the request, when the HTTP layer knows it.
pub fn client_ip(ctx: &Context<'_>) -> Option<crate::auth::throttle::ClientIp> {
    ctx.data_opt::<crate::auth::throttle::ClientIp>().copied()
}
