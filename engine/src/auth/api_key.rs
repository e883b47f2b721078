//! API keys for integrators: `Authorization: Bearer vk_…`. A key is shown once at creation
//! and stored only as its SHA-256 hash; it carries scoped permissions, can be revoked, and
//! records when it was last used (at most once a minute, off the request path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::entity::api_key;
use super::{AuthService, Caller, Permission, Principal};
use crate::db::Scope;
use crate::error::{AppError, AppResult};
use crate::events::DomainEvent;
use crate::kernel::{TenantId, hash_key};

/// Every API key starts with this.
pub const PREFIX: &str = "vk_";
/// How long a resolved key is trusted without a database read.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Most keys kept in the cache.
const MAX_CACHED: usize = 10_000;
/// How often `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// An API key as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Id.
    pub id: Uuid,
    /// Name given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Scoped permissions.
    pub permissions: Vec<Permission>,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<api_key::Model> for ApiKey {
    type Error = AppError;
    fn try_from(m: api_key::Model) -> AppResult<Self> {
        Ok(ApiKey {
            permissions: serde_json::from_str(&m.permissions)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("api key {}: {e}", m.id)))?,
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            created_by: m.created_by,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
            created_at: m.created_at,
        })
    }
}

#[derive(Clone)]
struct Cached {
    caller: Option<Caller>,
    loaded: Instant,
    touched: Option<Instant>,
}

/// Resolved keys by hash (revocations through this process take effect at once; through
/// another replica within the cache TTL).
#[derive(Clone, Default)]
pub struct ApiKeyCache(Arc<Mutex<HashMap<String, Cached>>>);

impl AuthService {
    /// Creates an API key; the secret is in the result only.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: &str,
        permissions: &[Permission],
    ) -> AppResult<(ApiKey, String)> {
        caller.require(Permission::ApiKeyWrite)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::validation("name", "must be 1-200 characters"));
        }
        if permissions.is_empty() {
            return Err(AppError::validation(
                "permissions",
                "must name at least one permission",
            ));
        }
        if let Some(p) = permissions.iter().find(|p| !caller.has(**p)) {
            return Err(AppError::validation(
                "permissions",
                format!(
                    "cannot grant {} which the caller does not hold",
                    super::permission_name(*p)
                ),
            ));
        }
        let secret = format!("{PREFIX}{}", super::random_secret());
        let now = Utc::now();
        let id = Uuid::now_v7();
        let mut uow = self.core.begin_for(caller).await?;
        let created = api_key::Entity::insert(api_key::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            name: Set(name.to_owned()),
            prefix: Set(secret.chars().take(11).collect()),
            key_hash: Set(hash_key(&secret)),
            permissions: Set(serde_json::to_string(permissions).map_err(anyhow::Error::from)?),
            created_by: Set(caller.actor()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "api_key",
            id,
            1,
            "vectis.api_key.created",
            serde_json::json!({ "id": id, "name": name, "permissions": permissions }),
        ));
        uow.commit().await?;
        Ok((created.try_into()?, secret))
    }

    /// The tenant's API keys, newest first.
    pub async fn api_keys(&self, caller: &Caller) -> AppResult<Vec<ApiKey>> {
        caller.require(Permission::ApiKeyWrite)?;
        let tenant = caller.tenant;
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(api_key::Entity::find()
                        .filter(api_key::Column::TenantId.eq(tenant.0))
                        .order_by_desc(api_key::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    /// Revokes a key; it stops working at once.
    pub async fn revoke_api_key(&self, caller: &Caller, id: Uuid) -> AppResult<ApiKey> {
        caller.require(Permission::ApiKeyWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        let now = Utc::now();
        let updated = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .col_expr(api_key::Column::UpdatedAt, Expr::value(now))
            .filter(api_key::Column::TenantId.eq(caller.tenant.0))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec_with_returning(uow.tx())
            .await?;
        let Some(revoked) = updated.into_iter().next() else {
            let existing = api_key::Entity::find_by_id(id)
                .filter(api_key::Column::TenantId.eq(caller.tenant.0))
                .one(uow.tx())
                .await?
                .ok_or_else(|| AppError::not_found("ApiKey", id))?;
            return existing.try_into();
        };
        uow.record(DomainEvent::new(
            caller.tenant,
            "api_key",
            id,
            2,
            "vectis.api_key.revoked",
            serde_json::json!({ "id": id }),
        ));
        let hash = revoked.key_hash.clone();
        uow.commit().await?;
        if let Ok(mut cache) = self.api_keys.0.lock() {
            cache.remove(&hash);
        }
        revoked.try_into()
    }

    pub(super) async fn authenticate_api_key(&self, secret: &str) -> AppResult<Caller> {
        let hash = hash_key(secret);
        let now = Instant::now();
        let cached = self
            .api_keys
            .0
            .lock()
            .ok()
            .and_then(|c| c.get(&hash).cloned())
            .filter(|c| now.duration_since(c.loaded) < CACHE_TTL);
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let tx = self.core.db.read(Scope::System).await?;
                let found = api_key::Entity::find()
                    .filter(api_key::Column::KeyHash.eq(hash.clone()))
                    .one(&tx)
                    .await?;
                tx.commit().await?;
                let caller = match found {
                    Some(m) if m.revoked_at.is_none() => {
                        let key = ApiKey::try_from(m.clone())?;
                        Some(Caller {
                            tenant: TenantId(m.tenant_id),
                            principal: Principal::ApiKey {
                                id: key.id,
                                permissions: key.permissions,
                            },
                        })
                    }
                    _ => None,
                };
                let entry = Cached {
                    caller,
                    loaded: now,
                    touched: None,
                };
                // Only valid keys are cached: unknown keys chosen by a caller must not grow
                // the cache. The cache is bounded all the same.
                if entry.caller.is_some()
                    && let Ok(mut cache) = self.api_keys.0.lock()
                {
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    cache.insert(hash.clone(), entry.clone());
                }
                entry
            }
        };
        let caller = entry
            .caller
            .ok_or_else(|| AppError::Unauthenticated("invalid or revoked API key".into()))?;
        if entry
            .touched
            .is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY)
        {
            if let Ok(mut cache) = self.api_keys.0.lock()
                && let Some(e) = cache.get_mut(&hash)
            {
                e.touched = Some(now);
            }
            self.touch(caller.clone());
        }
        Ok(caller)
    }

    fn touch(&self, caller: Caller) {
        let db = self.core.db.clone();
        let Principal::ApiKey { id, .. } = caller.principal else {
            return;
        };
        tokio::spawn(async move {
            let result = async {
                let tx = db.write(Scope::Tenant(caller.tenant)).await?;
                api_key::Entity::update_many()
                    .col_expr(api_key::Column::LastUsedAt, Expr::value(Utc::now()))
                    .filter(api_key::Column::TenantId.eq(caller.tenant.0))
                    .filter(api_key::Column::Id.eq(id))
                    .exec(&tx)
                    .await?;
                tx.commit().await
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(error = %err, "recording API key use");
            }
        });
    }
}
