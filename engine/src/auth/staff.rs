//! Staff users: admin-panel users with roles (and optional extra permissions).

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::staff_user;
use super::{Caller, Permission, StaffRole, hash_password, normalize_email, validate_password};
use crate::error::{AppError, AppResult};
use crate::events::DomainEvent;
use crate::kernel::TenantId;

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
    /// Roles.
    pub roles: Vec<StaffRole>,
    /// Permissions granted beyond the roles.
    pub extra_permissions: Vec<Permission>,
    /// Whether the user may log in.
    pub active: bool,
}

impl StaffUser {
    /// Permissions from the roles plus the extra ones, without duplicates.
    pub fn permissions(&self) -> Vec<Permission> {
        let mut all: Vec<Permission> = self
            .roles
            .iter()
            .flat_map(|r| r.permissions().iter().copied())
            .chain(self.extra_permissions.iter().copied())
            .collect();
        let mut seen = std::collections::HashSet::new();
        all.retain(|p| seen.insert(*p));
        all
    }
}

impl TryFrom<staff_user::Model> for StaffUser {
    type Error = AppError;
    fn try_from(m: staff_user::Model) -> AppResult<Self> {
        let corrupt =
            |e: serde_json::Error| AppError::Internal(anyhow::anyhow!("staff user {}: {e}", m.id));
        Ok(StaffUser {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            roles: serde_json::from_str(&m.roles).map_err(corrupt)?,
            extra_permissions: serde_json::from_str(&m.permissions).map_err(corrupt)?,
            email: m.email,
            display_name: m.display_name,
            active: m.active,
        })
    }
}

/// Changes to a staff user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StaffPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New roles.
    pub roles: Option<Vec<StaffRole>>,
    /// Whether the user may log in.
    pub active: Option<bool>,
}

/// Fails with `FORBIDDEN` (naming the permission) unless `caller` holds every permission
/// that `roles` grant.
pub fn grantable(caller: &Caller, roles: &[StaffRole]) -> AppResult<()> {
    match roles
        .iter()
        .flat_map(|r| r.permissions().iter())
        .find(|p| !caller.has(**p))
    {
        Some(p) => Err(AppError::Forbidden(super::permission_name(*p))),
        None => Ok(()),
    }
}

impl super::AuthService {
    /// Creates a staff user. With `by` given, the caller needs `STAFF_WRITE`; `None` is the
    /// command line and seeding.
    pub async fn create_staff(
        &self,
        tenant: TenantId,
        by: Option<&Caller>,
        email: &str,
        password: &str,
        display_name: &str,
        roles: &[StaffRole],
    ) -> AppResult<StaffUser> {
        if let Some(caller) = by {
            caller.require(Permission::StaffWrite)?;
            // A principal grants only what it holds: every permission of every role.
            grantable(caller, roles)?;
        }
        let email = normalize_email("email", email)?;
        validate_password("password", password)?;
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::validation(
                "displayName",
                "must be 1-200 characters",
            ));
        }
        let hash = hash_password(password)?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let mut uow = match by {
            Some(caller) => self.core.begin_for(caller).await?,
            None => self.core.begin(tenant, None).await?,
        };
        let model = staff_user::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            email: Set(email.clone()),
            display_name: Set(name.to_owned()),
            password_hash: Set(hash),
            roles: Set(serde_json::to_string(roles).map_err(anyhow::Error::from)?),
            permissions: Set("[]".into()),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        };
        let inserted = staff_user::Entity::insert(model)
            .exec_with_returning(uow.tx())
            .await
            .map_err(crate::db::conflict(
                "uq_staff_users_tenant_email",
                "staff_users.email",
                "a staff user with this email exists already",
            ))?;
        uow.record(DomainEvent::new(
            tenant,
            "staff_user",
            id,
            1,
            "vectis.staff_user.created",
            serde_json::json!({ "id": id, "email": email, "roles": roles }),
        ));
        uow.commit().await?;
        inserted.try_into()
    }

    /// Changes a staff user's name, roles or whether they may log in (`STAFF_WRITE`). The
    /// caller must hold every permission of the user's roles before and after the change, and
    /// cannot disable themselves. Changing roles or disabling ends the user's sessions
    /// (refresh tokens); a disabled sales rep's impersonations end at once.
    pub async fn update_staff(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: StaffPatch,
    ) -> AppResult<StaffUser> {
        caller.require(Permission::StaffWrite)?;
        let name = patch
            .display_name
            .as_deref()
            .map(|n| {
                let n = n.trim();
                if n.is_empty() || n.chars().count() > 200 {
                    Err(AppError::validation(
                        "displayName",
                        "must be 1-200 characters",
                    ))
                } else {
                    Ok(n.to_owned())
                }
            })
            .transpose()?;
        if let Some(roles) = &patch.roles {
            grantable(caller, roles)?;
        }
        if patch.active == Some(false) && caller.staff_id() == Some(id) {
            return Err(AppError::validation(
                "active",
                "staff users cannot disable themselves",
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let current: StaffUser =
            crate::db::lock::lock::<staff_user::Entity, _>(uow.tx(), caller.tenant, id)
                .await?
                .ok_or_else(|| AppError::not_found("StaffUser", id))?
                .try_into()?;
        grantable(caller, &current.roles)?;
        let mut sets: Vec<(staff_user::Column, sea_orm::sea_query::Expr)> = Vec::new();
        if let Some(name) = name {
            sets.push((staff_user::Column::DisplayName, Expr::value(name)));
        }
        if let Some(roles) = &patch.roles {
            sets.push((
                staff_user::Column::Roles,
                Expr::value(serde_json::to_string(roles).map_err(anyhow::Error::from)?),
            ));
        }
        if let Some(active) = patch.active {
            sets.push((staff_user::Column::Active, Expr::value(active)));
        }
        let row = uow
            .change::<staff_user::Entity>(id, sets, "vectis.staff_user.updated", |u| {
                serde_json::json!({ "id": id, "email": u.email, "displayName": u.display_name,
                                    "roles": serde_json::from_str::<serde_json::Value>(&u.roles).unwrap_or_default(),
                                    "active": u.active })
            })
            .await?;
        let updated: StaffUser = row.try_into()?;
        if updated.roles != current.roles || !updated.active {
            super::tokens::revoke_principal(uow.tx(), caller.tenant, "staff", id).await?;
        }
        uow.commit().await?;
        Ok(updated)
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

    /// Finds a staff user by id within a tenant.
    pub async fn staff_by_id(&self, tenant: TenantId, id: Uuid) -> AppResult<Option<StaffUser>> {
        let found = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(staff_user::Entity::find_by_id(id)
                        .filter(staff_user::Column::TenantId.eq(tenant.0))
                        .one(tx)
                        .await?)
                })
            })
            .await?;
        found.map(StaffUser::try_from).transpose()
    }

    /// The password hash of a staff user, for login.
    pub(super) async fn staff_credentials(
        &self,
        tenant: TenantId,
        email: String,
    ) -> AppResult<Option<(StaffUser, String)>> {
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
        match found {
            Some(m) => {
                let hash = m.password_hash.clone();
                Ok(Some((StaffUser::try_from(m)?, hash)))
            }
            None => Ok(None),
        }
    }
}
