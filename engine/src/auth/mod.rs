//! Authentication and authorisation core: staff users with argon2id passwords, short-lived JWT
//! access tokens, rotating refresh tokens, and the [`Caller`] every resolver checks.
//!
//! A request's caller comes from `Authorization: Bearer <jwt>` (staff) or, for anonymous
//! storefront reads, from `X-Vectis-Storefront-Key`. Refresh tokens are opaque random strings,
//! stored hashed; each use rotates the token, and presenting a token that was already rotated or
//! revoked revokes its whole family (a stolen token is useless once either party uses it).

pub mod entity;
pub mod graphql;
mod password;

use std::sync::Arc;

use async_graphql::Enum;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use password::{hash_password, validate_password, verify_password};

use crate::config::AuthConfig;
use crate::error::{AppError, AppResult, code};
use crate::events::{Core, DomainEvent};
use crate::tenancy::{Tenant, TenantId, TenantService, hash_key};
use entity::{refresh_token, staff_user};

/// A permission a staff user may hold.
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
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An anonymous storefront visitor, identified only by the storefront key.
    Storefront,
    /// A staff user with their permissions (from the access token).
    Staff {
        /// Staff user id.
        id: Uuid,
        /// Granted permissions.
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
            Principal::Staff { permissions, .. } => permissions
                .iter()
                .any(|p| *p == permission || *p == Permission::SuperAdmin),
            Principal::Storefront => false,
        }
    }

    /// Fails with `FORBIDDEN` (or `UNAUTHENTICATED` for anonymous callers) unless the caller
    /// holds `permission`.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        match &self.principal {
            _ if self.has(permission) => Ok(()),
            Principal::Storefront => Err(AppError::Unauthenticated(
                "this operation needs a staff login".into(),
            )),
            Principal::Staff { .. } => Err(AppError::Forbidden(
                serde_json::to_value(permission)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            )),
        }
    }

    /// The acting staff user, if any (recorded on events).
    pub fn actor(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::Staff { id, .. } => Some(*id),
            Principal::Storefront => None,
        }
    }
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Staff user id.
    pub sub: Uuid,
    /// Tenant id.
    pub tid: Uuid,
    /// Principal kind (`staff`).
    pub knd: String,
    /// Permissions.
    pub prm: Vec<Permission>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
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
    /// The staff user.
    pub staff: StaffUser,
}

/// A staff user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Login email (lower case).
    pub email: String,
    /// Name shown in admin UIs.
    pub display_name: String,
    /// Granted permissions.
    pub permissions: Vec<Permission>,
}

impl TryFrom<staff_user::Model> for StaffUser {
    type Error = AppError;
    fn try_from(m: staff_user::Model) -> AppResult<Self> {
        Ok(StaffUser {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            email: m.email,
            display_name: m.display_name,
            permissions: serde_json::from_str(&m.permissions)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("staff permissions: {e}")))?,
        })
    }
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

/// Issues and checks tokens, manages staff users.
#[derive(Clone)]
pub struct AuthService {
    core: Core,
    tenants: TenantService,
    keys: Arc<Keys>,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

const INVALID_LOGIN: &str = "invalid email or password";
const INVALID_REFRESH: &str = "invalid or expired refresh token";

impl AuthService {
    /// Builds the service; without a configured secret a random one is generated.
    pub fn new(core: Core, tenants: TenantService, config: &AuthConfig) -> Self {
        let secret = match &config.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let mut bytes = vec![0_u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        AuthService {
            core,
            tenants,
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
        }
    }

    /// Resolves the caller from the `Authorization` and storefront-key header values.
    ///
    /// A present but bad bearer token is an error (never silently anonymous); no credentials
    /// at all yield `None`.
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
            let claims = self.verify_access_token(token)?;
            return Ok(Some(Caller {
                tenant: TenantId(claims.tid),
                principal: Principal::Staff {
                    id: claims.sub,
                    permissions: claims.prm,
                },
            }));
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

    /// Checks signature, expiry and kind of an access token.
    pub fn verify_access_token(&self, token: &str) -> AppResult<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthenticated("access token expired".into())
                }
                _ => AppError::Unauthenticated("invalid access token".into()),
            })?;
        if data.claims.knd != "staff" {
            return Err(AppError::Unauthenticated("invalid access token".into()));
        }
        Ok(data.claims)
    }

    fn issue_access_token(&self, staff: &StaffUser) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires = now + self.access_ttl;
        let claims = Claims {
            sub: staff.id,
            tid: staff.tenant_id.0,
            knd: "staff".into(),
            prm: staff.permissions.clone(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
            jti: Uuid::now_v7(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.keys.encoding)
                .map_err(|e| AppError::Internal(e.into()))?;
        Ok((token, expires))
    }

    /// Creates a staff user.
    pub async fn create_staff(
        &self,
        tenant: TenantId,
        email: &str,
        password: &str,
        display_name: &str,
        permissions: &[Permission],
    ) -> AppResult<StaffUser> {
        let email = normalize_email("email", email)?;
        validate_password("password", password)?;
        let hash = hash_password(password)?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let mut uow = self.core.begin(tenant, None).await?;
        let model = staff_user::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            email: Set(email.clone()),
            display_name: Set(display_name.trim().to_owned()),
            password_hash: Set(hash),
            permissions: Set(serde_json::to_string(permissions).map_err(anyhow::Error::from)?),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = staff_user::Entity::insert(model)
            .exec_with_returning(uow.tx())
            .await
            .map_err(|err| {
                if crate::db::is_unique_violation(
                    &err,
                    "uq_staff_users_tenant_email",
                    "staff_users.email",
                ) {
                    AppError::Conflict {
                        code: code::CONFLICT,
                        message: format!("a staff user with email {email} exists already"),
                    }
                } else {
                    err.into()
                }
            })?;
        uow.record(DomainEvent::new(
            tenant,
            "staff_user",
            id,
            1,
            "vectis.staff_user.created",
            serde_json::json!({ "id": id, "email": email, "permissions": permissions }),
        ));
        uow.commit().await?;
        inserted.try_into()
    }

    /// Finds a staff user by email within a tenant.
    pub async fn staff_by_email(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> AppResult<Option<StaffUser>> {
        let email = email.trim().to_lowercase();
        let found = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(staff_user::Entity::find()
                        .filter(staff_user::Column::TenantId.eq(tenant.0))
                        .filter(staff_user::Column::Email.eq(email))
                        .one(tx)
                        .await?)
                })
            })
            .await?;
        found.map(StaffUser::try_from).transpose()
    }

    /// Checks email and password within the tenant named by `tenant_slug` and issues tokens.
    /// Every failure reads the same, so the response does not reveal whether an email exists.
    pub async fn login(
        &self,
        tenant: &Tenant,
        email: &str,
        password: &str,
    ) -> AppResult<TokenPair> {
        let email = email.trim().to_lowercase();
        let tenant_id = tenant.id;
        let user = self
            .core
            .read(tenant_id, |tx| {
                Box::pin(async move {
                    Ok(staff_user::Entity::find()
                        .filter(staff_user::Column::TenantId.eq(tenant_id.0))
                        .filter(staff_user::Column::Email.eq(email))
                        .one(tx)
                        .await?)
                })
            })
            .await?;
        let password = password.to_owned();
        let (user, ok) = tokio::task::spawn_blocking(move || {
            let ok = match &user {
                Some(u) if u.active => verify_password(&password, &u.password_hash),
                // Spend the same time on unknown emails.
                _ => {
                    let _ = verify_password(&password, &password::DUMMY_HASH);
                    false
                }
            };
            (user, ok)
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        let user = match (user, ok) {
            (Some(user), true) => StaffUser::try_from(user)?,
            _ => return Err(AppError::Unauthenticated(INVALID_LOGIN.into())),
        };
        self.issue_pair(user, Uuid::now_v7()).await
    }

    async fn issue_pair(&self, staff: StaffUser, family: Uuid) -> AppResult<TokenPair> {
        let (access_token, access_token_expires_at) = self.issue_access_token(&staff)?;
        let refresh_token = random_token();
        let now = Utc::now();
        let refresh_token_expires_at = now + self.refresh_ttl;
        let tx = self
            .core
            .db
            .write(crate::db::Scope::Tenant(staff.tenant_id))
            .await?;
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(staff.tenant_id.0),
            staff_user_id: Set(staff.id),
            family_id: Set(family),
            token_hash: Set(hash_key(&refresh_token)),
            expires_at: Set(refresh_token_expires_at),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
        tx.commit().await?;
        Ok(TokenPair {
            access_token,
            access_token_expires_at,
            refresh_token: format!("{}.{}", staff.tenant_id.0.simple(), refresh_token),
            refresh_token_expires_at,
            staff,
        })
    }

    fn parse_refresh(token: &str) -> AppResult<(TenantId, &str)> {
        token
            .split_once('.')
            .and_then(|(tenant, secret)| Some((TenantId(Uuid::try_parse(tenant).ok()?), secret)))
            .ok_or_else(|| AppError::Unauthenticated(INVALID_REFRESH.into()))
    }

    /// Exchanges a refresh token for a new pair. The presented token is revoked; presenting a
    /// revoked token revokes its whole family.
    pub async fn refresh(&self, token: &str) -> AppResult<TokenPair> {
        let (tenant, secret) = Self::parse_refresh(token)?;
        let tx = self.core.db.write(crate::db::Scope::Tenant(tenant)).await?;
        let found = refresh_token::Entity::find()
            .filter(refresh_token::Column::TenantId.eq(tenant.0))
            .filter(refresh_token::Column::TokenHash.eq(hash_key(secret)))
            .one(&tx)
            .await?
            .ok_or_else(|| AppError::Unauthenticated(INVALID_REFRESH.into()))?;
        let now = Utc::now();
        if found.revoked_at.is_some() {
            revoke_family(&tx, tenant, found.family_id).await?;
            tx.commit().await?;
            tracing::warn!(family = %found.family_id, "refresh token reuse: family revoked");
            return Err(AppError::Unauthenticated(INVALID_REFRESH.into()));
        }
        if found.expires_at <= now {
            return Err(AppError::Unauthenticated(INVALID_REFRESH.into()));
        }
        let user = staff_user::Entity::find_by_id(found.staff_user_id)
            .filter(staff_user::Column::TenantId.eq(tenant.0))
            .one(&tx)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| AppError::Unauthenticated(INVALID_REFRESH.into()))?;
        let family = found.family_id;
        let mut revoked = found.into_active_model();
        revoked.revoked_at = Set(Some(now));
        revoked.updated_at = Set(now);
        revoked.update(&tx).await?;
        tx.commit().await?;
        self.issue_pair(user.try_into()?, family).await
    }

    /// Revokes the refresh token's family (the session). Unknown tokens are ignored, so logout
    /// is idempotent.
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        let Ok((tenant, secret)) = Self::parse_refresh(token) else {
            return Ok(());
        };
        let tx = self.core.db.write(crate::db::Scope::Tenant(tenant)).await?;
        let found = refresh_token::Entity::find()
            .filter(refresh_token::Column::TenantId.eq(tenant.0))
            .filter(refresh_token::Column::TokenHash.eq(hash_key(secret)))
            .one(&tx)
            .await?;
        if let Some(found) = found {
            revoke_family(&tx, tenant, found.family_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant directory this service authenticates against.
    pub fn tenants(&self) -> &TenantService {
        &self.tenants
    }
}

async fn revoke_family(
    tx: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    family: Uuid,
) -> AppResult<()> {
    let now = Utc::now();
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .col_expr(
            refresh_token::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(refresh_token::Column::TenantId.eq(tenant.0))
        .filter(refresh_token::Column::FamilyId.eq(family))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(tx)
        .await?;
    Ok(())
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
