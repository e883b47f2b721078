//! Sales reps: assignments to companies (with their divisions) and impersonation of the company users they look after.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::*;

impl CompaniesService {
    pub(super) async fn assigned(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        staff: Uuid,
    ) -> AppResult<HashSet<Uuid>> {
        Ok(sales_rep::Entity::find()
            .select_only()
            .column(sales_rep::Column::CompanyId)
            .filter(sales_rep::Column::TenantId.eq(tenant.0))
            .filter(sales_rep::Column::StaffUserId.eq(staff))
            .into_tuple::<Uuid>()
            .all(tx)
            .await?
            .into_iter()
            .collect())
    }

    /// Sales reps of several companies (for loaders): `(company, staff user)` pairs.
    pub async fn sales_reps_of(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<(Uuid, Uuid)>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(sales_rep::Entity::find()
                        .select_only()
                        .column(sales_rep::Column::CompanyId)
                        .column(sales_rep::Column::StaffUserId)
                        .filter(sales_rep::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (sales_rep::Entity, sales_rep::Column::CompanyId),
                            companies,
                        ))
                        .into_tuple::<(Uuid, Uuid)>()
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Whether staff user `staff` is assigned to `company` or one of its ancestors.
    pub async fn rep_covers(
        &self,
        tenant: TenantId,
        staff: Uuid,
        company: Uuid,
    ) -> AppResult<bool> {
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let covered = Self::rep_covers_in(&tx, tenant, staff, company).await?;
        tx.commit().await?;
        Ok(covered)
    }

    /// [`Self::rep_covers`] inside a transaction.
    pub(crate) async fn rep_covers_in(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        staff: Uuid,
        company: Uuid,
    ) -> AppResult<bool> {
        Ok(match Self::load_tree(tx, tenant, company).await? {
            Some(view) => {
                let assigned = Self::assigned(tx, tenant, staff).await?;
                view.ancestry().iter().any(|c| assigned.contains(&c.id))
            }
            None => false,
        })
    }

    /// The companies a sales rep looks after: those assigned to them and their divisions.
    pub(crate) async fn rep_companies_in(
        &self,
        tx: &DatabaseTransaction,
        tenant: TenantId,
        staff: Uuid,
    ) -> AppResult<Vec<Uuid>> {
        let mut all = HashSet::new();
        for company in Self::assigned(tx, tenant, staff).await? {
            all.extend(self.subtree_of(tx, tenant, company).await?);
        }
        Ok(all.into_iter().collect())
    }

    /// Assigns a sales rep (a staff user of the tenant, checked by the caller) to a company.
    pub async fn assign_sales_rep(
        &self,
        caller: &Caller,
        company_id: Uuid,
        staff: Uuid,
        assign: bool,
    ) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        self.authorize(
            uow.tx(),
            caller,
            company_id,
            Need::Write(CompanyPermission::ManageUsers),
        )
        .await?;
        let existing = sales_rep::Entity::find()
            .filter(sales_rep::Column::TenantId.eq(caller.tenant.0))
            .filter(sales_rep::Column::StaffUserId.eq(staff))
            .filter(sales_rep::Column::CompanyId.eq(company_id))
            .one(uow.tx())
            .await?;
        let changed = match (assign, existing.is_some()) {
            (true, false) => {
                sales_rep::Entity::insert(sales_rep::ActiveModel {
                    tenant_id: Set(caller.tenant.0),
                    staff_user_id: Set(staff),
                    company_id: Set(company_id),
                    created_at: Set(Utc::now()),
                })
                .exec_without_returning(uow.tx())
                .await?;
                true
            }
            (false, true) => {
                sales_rep::Entity::delete_many()
                    .filter(sales_rep::Column::TenantId.eq(caller.tenant.0))
                    .filter(sales_rep::Column::StaffUserId.eq(staff))
                    .filter(sales_rep::Column::CompanyId.eq(company_id))
                    .exec(uow.tx())
                    .await?;
                true
            }
            _ => false,
        };
        if changed {
            let event = if assign {
                "vectis.company.sales_rep_assigned"
            } else {
                "vectis.company.sales_rep_unassigned"
            };
            uow.change::<company::Entity>(
                company_id,
                Vec::new(),
                event,
                |_| json!({ "companyId": company_id, "staffUserId": staff }),
            )
            .await?;
        }
        let view = Self::load_tree(uow.tx(), caller.tenant, company_id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", company_id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Checks that the caller may act on behalf of `customer` in `company`: a staff user with
    /// `IMPERSONATE` assigned to the company (or an ancestor), or a super admin; the customer
    /// must be a member.
    pub async fn check_impersonation(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer: Uuid,
    ) -> AppResult<()> {
        caller.require(Permission::Impersonate)?;
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let view = self.authorize(&tx, caller, company_id, Need::Read).await?;
        if !caller.has(Permission::SuperAdmin) {
            let staff = caller
                .staff_id()
                .ok_or_else(|| AppError::Forbidden("IMPERSONATE".into()))?;
            let assigned = Self::assigned(&tx, caller.tenant, staff).await?;
            if !view.ancestry().iter().any(|c| assigned.contains(&c.id)) {
                return Err(AppError::not_found("Company", company_id));
            }
        }
        let is_member = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .filter(member::Column::CustomerId.eq(customer))
            .count(&tx)
            .await?
            > 0;
        tx.commit().await?;
        if is_member {
            Ok(())
        } else {
            Err(AppError::not_found("CompanyUser", customer))
        }
    }

    /// The companies a sales rep looks after: those assigned and all their divisions.
    pub async fn covered_by_rep<C: sea_orm::ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        staff: Uuid,
    ) -> AppResult<Vec<Uuid>> {
        let assigned: Vec<Uuid> = sales_rep::Entity::find()
            .select_only()
            .column(sales_rep::Column::CompanyId)
            .filter(sales_rep::Column::TenantId.eq(tenant.0))
            .filter(sales_rep::Column::StaffUserId.eq(staff))
            .into_tuple::<Uuid>()
            .all(tx)
            .await?;
        let mut out = Vec::new();
        for company in assigned {
            out.extend(self.subtree_of(tx, tenant, company).await?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
