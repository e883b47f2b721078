//! Tenants: the root of isolation. Every domain row carries a `tenant_id`; the tenant of a
//! request comes from the caller's token or, for anonymous storefront calls, from the
//! `X-Vectis-Storefront-Key` header.

pub mod entity;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;
use vectis_strategies::CurrencyCode;

use crate::db::{Db, Scope};
use crate::error::{AppError, AppResult};
pub use crate::kernel::{TenantId, hash_key, hex};

/// A tenant as the rest of the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// URL-safe unique name, e.g. `demo`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Currency used when a request names none.
    pub default_currency: CurrencyCode,
}

impl TryFrom<entity::Model> for Tenant {
    type Error = AppError;
    fn try_from(m: entity::Model) -> AppResult<Tenant> {
        Ok(Tenant {
            id: TenantId(m.id),
            slug: m.slug,
            name: m.name,
            default_currency: m
                .default_currency
                .parse()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("tenant currency: {e}")))?,
        })
    }
}

/// Validates a tenant slug: 2–64 characters of `a-z`, `0-9` and `-`.
pub fn validate_slug(field: &str, slug: &str) -> AppResult<()> {
    let ok = (2..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AppError::validation(
            field,
            "must be 2-64 characters of lower-case letters, digits and '-'",
        ))
    }
}

/// The default currency of `tenant`, read in the caller's transaction (EUR if unreadable).
pub async fn default_currency_in<C: sea_orm::ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
) -> AppResult<CurrencyCode> {
    Ok(entity::Entity::find_by_id(tenant.0)
        .one(tx)
        .await?
        .and_then(|t| t.default_currency.parse().ok())
        .unwrap_or(CurrencyCode::EUR))
}

/// The slug of `tenant`, read in the caller's transaction (empty if unreadable), so that a
/// unit of work never waits for a second pool connection while it holds locks.
pub async fn slug_in<C: sea_orm::ConnectionTrait>(tx: &C, tenant: TenantId) -> AppResult<String> {
    Ok(entity::Entity::find_by_id(tenant.0)
        .one(tx)
        .await?
        .map(|t| t.slug)
        .unwrap_or_default())
}

/// Creates and finds tenants; caches storefront-key lookups.
#[derive(Clone)]
pub struct TenantService {
    db: Db,
    by_key: Arc<RwLock<HashMap<String, Tenant>>>,
}

impl TenantService {
    /// A service over `db`.
    pub fn new(db: Db) -> Self {
        TenantService {
            db,
            by_key: Arc::default(),
        }
    }

    /// Creates a tenant with a storefront key (stored hashed).
    pub async fn create(
        &self,
        slug: &str,
        name: &str,
        storefront_key: &str,
        default_currency: CurrencyCode,
    ) -> AppResult<Tenant> {
        validate_slug("slug", slug)?;
        if storefront_key.len() < 16 {
            return Err(AppError::validation(
                "storefrontKey",
                "must be at least 16 characters",
            ));
        }
        let now = Utc::now();
        let model = entity::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.to_owned()),
            name: Set(name.trim().to_owned()),
            storefront_key_hash: Set(hash_key(storefront_key)),
            default_currency: Set(default_currency.to_string()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let tx = self.db.write(Scope::System).await?;
        let inserted = entity::Entity::insert(model)
            .exec_with_returning(&tx)
            .await
            .map_err(|err| {
                if crate::db::is_unique_violation(&err, "uq_tenants_slug", "tenants.slug") {
                    AppError::Conflict {
                        code: crate::error::code::CONFLICT,
                        message: format!("a tenant with slug `{slug}` exists already"),
                    }
                } else if crate::db::is_unique_violation(
                    &err,
                    "uq_tenants_storefront_key_hash",
                    "tenants.storefront_key_hash",
                ) {
                    AppError::Conflict {
                        code: crate::error::code::CONFLICT,
                        message: "this storefront key is in use".into(),
                    }
                } else {
                    err.into()
                }
            })?;
        tx.commit().await?;
        inserted.try_into()
    }

    /// Finds a tenant by slug.
    pub async fn by_slug(&self, slug: &str) -> AppResult<Option<Tenant>> {
        let tx = self.db.read(Scope::System).await?;
        let found = entity::Entity::find()
            .filter(entity::Column::Slug.eq(slug))
            .one(&tx)
            .await?;
        tx.commit().await?;
        found.map(Tenant::try_from).transpose()
    }

    /// Finds a tenant by id.
    pub async fn by_id(&self, id: TenantId) -> AppResult<Option<Tenant>> {
        let tx = self.db.read(Scope::Tenant(id)).await?;
        let found = entity::Entity::find_by_id(id.0).one(&tx).await?;
        tx.commit().await?;
        found.map(Tenant::try_from).transpose()
    }

    /// Resolves a storefront key to its tenant (cached after the first lookup).
    pub async fn by_storefront_key(&self, key: &str) -> AppResult<Option<Tenant>> {
        let hash = hash_key(key);
        if let Some(t) = self.by_key.read().ok().and_then(|m| m.get(&hash).cloned()) {
            return Ok(Some(t));
        }
        let tx = self.db.read(Scope::System).await?;
        let found = entity::Entity::find()
            .filter(entity::Column::StorefrontKeyHash.eq(hash.clone()))
            .one(&tx)
            .await?;
        tx.commit().await?;
        let tenant = found.map(Tenant::try_from).transpose()?;
        if let (Some(t), Ok(mut cache)) = (&tenant, self.by_key.write()) {
            cache.insert(hash, t.clone());
        }
        Ok(tenant)
    }
}
