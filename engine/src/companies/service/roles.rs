//! Company roles: the built-in ones and custom roles per tree, created only from permissions the creator holds.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::*;

impl CompaniesService {
    pub(super) async fn role_permissions(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        root: Uuid,
    ) -> AppResult<HashMap<String, Vec<CompanyPermission>>> {
        let custom = role::Entity::find()
            .filter(role::Column::TenantId.eq(tenant.0))
            .filter(role::Column::CompanyId.eq(root))
            .all(tx)
            .await?;
        let mut out = HashMap::new();
        for r in custom {
            let permissions: Vec<CompanyPermission> = serde_json::from_str(&r.permissions)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("role {}: {e}", r.id)))?;
            out.insert(r.code, permissions);
        }
        for code in ["admin", "buyer", "approver", "viewer"] {
            if let Some(p) = builtin_company_role(code) {
                out.insert(code.to_owned(), p.to_vec());
            }
        }
        Ok(out)
    }

    /// Checks that `roles` exist in the tree of `root` and returns the permissions they grant.
    pub(crate) async fn check_roles(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        root: Uuid,
        roles: &[String],
    ) -> AppResult<Vec<CompanyPermission>> {
        if roles.is_empty() {
            return Err(AppError::validation("roles", "name at least one role"));
        }
        let known = Self::role_permissions(tx, tenant, root).await?;
        if let Some(unknown) = roles.iter().find(|r| !known.contains_key(*r)) {
            return Err(AppError::validation(
                "roles",
                format!("unknown role `{unknown}`"),
            ));
        }
        let mut granted: Vec<CompanyPermission> = roles
            .iter()
            .filter_map(|r| known.get(r))
            .flatten()
            .copied()
            .collect();
        granted.sort_by_key(|p| *p as u8);
        granted.dedup();
        Ok(granted)
    }

    /// Creates a custom role for a company tree from a permission set.
    pub async fn create_role(
        &self,
        caller: &Caller,
        company_id: Uuid,
        code_: &str,
        name: &str,
        permissions: Vec<CompanyPermission>,
    ) -> AppResult<(String, String, Vec<CompanyPermission>)> {
        let (mut uow, Access { view, grants }) =
            self.begin_membership_change(caller, company_id).await?;
        grants.check(&permissions)?;
        let code_ = crate::catalog::service::validate_code("code", &code_.to_lowercase())?;
        if builtin_company_role(&code_).is_some() {
            return Err(AppError::validation("code", "is a built-in role"));
        }
        if permissions.is_empty() {
            return Err(AppError::validation(
                "permissions",
                "name at least one permission",
            ));
        }
        let name = text::name("name", name, 200)?;
        let now = Utc::now();
        role::Entity::insert(role::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(view.company.root_id),
            code: Set(code_.clone()),
            name: Set(name.clone()),
            permissions: Set(serde_json::to_string(&permissions).map_err(anyhow::Error::from)?),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_company_roles_company_code",
            "company_roles.company_id",
            format!("role `{code_}` exists already"),
        ))?;
        uow
            .change::<company::Entity>(view.company.root_id, Vec::new(), "vectis.company.role_created", |_| json!({ "companyId": view.company.root_id, "code": code_, "name": name, "permissions": permissions }))
            .await?;
        uow.commit().await?;
        Ok((code_, name, permissions))
    }
}
