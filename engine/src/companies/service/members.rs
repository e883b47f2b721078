//! Company users: listing, changing and removing members; a company user changes only members whose rights they hold, and a company keeps at least one admin.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use super::*;

impl CompaniesService {
    /// Members of a company (company admins, staff with `COMPANY_READ`, assigned sales reps).
    pub async fn members(&self, caller: &Caller, company_id: Uuid) -> AppResult<Vec<Member>> {
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let need = if caller.membership().is_some() {
            Need::Write(CompanyPermission::ManageUsers)
        } else {
            Need::Read
        };
        self.authorize(&tx, caller, company_id, need).await?;
        let rows = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .order_by_asc(member::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        rows.into_iter().map(Member::try_from).collect()
    }

    pub(super) async fn members_where(
        &self,
        tenant: TenantId,
        column: member::Column,
        ids: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        let backend = self.core.db.backend();
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(member::Entity::find()
                        .filter(member::Column::TenantId.eq(tenant.0))
                        .filter(id_in(backend, (member::Entity, column), ids))
                        .order_by_asc(member::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// Members of several companies (for loaders; the caller checked access).
    pub async fn members_of(
        &self,
        tenant: TenantId,
        companies: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CompanyId, companies)
            .await
    }

    /// Memberships of several customers (for loaders).
    pub async fn memberships_of_many(
        &self,
        tenant: TenantId,
        customers: Vec<Uuid>,
    ) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CustomerId, customers)
            .await
    }

    /// The companies a customer belongs to.
    pub async fn memberships_of(&self, tenant: TenantId, customer: Uuid) -> AppResult<Vec<Member>> {
        self.members_where(tenant, member::Column::CustomerId, vec![customer])
            .await
    }

    /// The member row of `customer` in the accessed company, if the caller may change it: a
    /// company user changes only members whose rights they hold themselves.
    pub(super) async fn member_within(
        &self,
        uow: &UnitOfWork,
        view: &CompanyView,
        grants: &Grants,
        customer: Uuid,
    ) -> AppResult<member::Model> {
        let row = member::Entity::find()
            .filter(member::Column::TenantId.eq(uow.tenant().0))
            .filter(member::Column::CompanyId.eq(view.company.id))
            .filter(member::Column::CustomerId.eq(customer))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("CompanyUser", customer))?;
        if !grants.is_staff() {
            let roles: Vec<String> = serde_json::from_str(&row.roles).unwrap_or_default();
            let held =
                Self::check_roles(uow.tx(), uow.tenant(), view.company.root_id, &roles).await;
            match held {
                Ok(held) => grants.check(&held)?,
                Err(AppError::Validation { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(row)
    }

    pub(super) async fn admins_after(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        company_id: Uuid,
        changed: Uuid,
        new_roles: Option<&[String]>,
    ) -> AppResult<usize> {
        let rows = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CompanyId.eq(company_id))
            .all(tx)
            .await?;
        let mut admins = 0;
        for row in rows {
            let roles: Vec<String> = if row.customer_id == changed {
                match new_roles {
                    Some(r) => r.to_vec(),
                    None => continue,
                }
            } else {
                serde_json::from_str(&row.roles).unwrap_or_default()
            };
            if roles.iter().any(|r| r == "admin") {
                admins += 1;
            }
        }
        Ok(admins)
    }

    pub(super) fn last_admin() -> AppError {
        AppError::validation("roles", "a company keeps at least one admin")
    }

    /// Changes a member's roles, locations or spending limit. The last admin cannot lose the
    /// admin role.
    pub async fn update_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
        patch: MemberPatch,
    ) -> AppResult<Member> {
        let (mut uow, Access { view, grants }) =
            self.begin_membership_change(caller, company_id).await?;
        let current = self
            .member_within(&uow, &view, &grants, customer_id)
            .await?;
        let own = caller.actor() == Some(customer_id);
        if own
            && (patch.spending_limit.is_some() || patch.monthly_spending_limit.is_some())
            && !grants.is_staff()
        {
            return Err(AppError::Rejected {
                code: code::FORBIDDEN,
                message: "company users cannot change their own spending limit".into(),
            });
        }
        let mut sets: Vec<(member::Column, Expr)> = Vec::new();
        if let Some(roles) = &patch.roles {
            let granted =
                Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, roles).await?;
            grants.check(&granted)?;
            let was_admin = serde_json::from_str::<Vec<String>>(&current.roles)
                .unwrap_or_default()
                .iter()
                .any(|r| r == "admin");
            if was_admin
                && Self::admins_after(
                    uow.tx(),
                    caller.tenant,
                    company_id,
                    customer_id,
                    Some(roles),
                )
                .await?
                    == 0
            {
                return Err(Self::last_admin());
            }
            sets.push((
                member::Column::Roles,
                Expr::value(serde_json::to_string(roles).map_err(anyhow::Error::from)?),
            ));
        }
        if let Some(locations) = &patch.location_ids {
            self.check_locations(uow.tx(), &view, locations).await?;
            sets.push((
                member::Column::LocationIds,
                Expr::value(serde_json::to_string(locations).map_err(anyhow::Error::from)?),
            ));
        }
        // Both limits share one currency.
        let mut currency = current.spending_currency.clone();
        let mut limits = (current.spending_limit, current.monthly_spending_limit);
        if let Some(spending) = patch.spending_limit {
            let spending = limit("spendingLimit", spending)?;
            limits.0 = spending.as_ref().map(|s| s.1);
            if let Some((c, _)) = spending {
                currency = Some(c);
            }
        }
        if let Some(monthly) = patch.monthly_spending_limit {
            let monthly = limit("monthlySpendingLimit", monthly)?;
            limits.1 = monthly.as_ref().map(|s| s.1);
            if let Some((c, _)) = monthly {
                if limits.0.is_some() && currency.as_deref().is_some_and(|have| have != c) {
                    return Err(AppError::validation(
                        "monthlySpendingLimit",
                        "must be in the currency of the per-order limit",
                    ));
                }
                currency = Some(c);
            }
        }
        if limits != (current.spending_limit, current.monthly_spending_limit) {
            sets.push((member::Column::SpendingLimit, Expr::value(limits.0)));
            sets.push((member::Column::MonthlySpendingLimit, Expr::value(limits.1)));
            sets.push((
                member::Column::SpendingCurrency,
                Expr::value(currency.filter(|_| limits.0.is_some() || limits.1.is_some())),
            ));
        }
        let mut update = member::Entity::update_many()
            .col_expr(
                member::Column::Version,
                Expr::col(member::Column::Version).add(1),
            )
            .col_expr(member::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(member::Column::Id.eq(current.id));
        for (column, value) in sets {
            update = update.col_expr(column, value);
        }
        let updated = update
            .exec_with_returning(uow.tx())
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("CompanyUser", customer_id))?;
        let result = Member::try_from(updated)?;
        uow
            .change::<company::Entity>(company_id, Vec::new(), "vectis.company.user_updated", |_| json!({ "companyId": company_id, "customerId": customer_id, "roles": result.roles,
                    "locationIds": result.location_ids,
                    "spendingLimit": result.spending_limit.map(|m| json!({"amount": m.amount, "currency": m.currency})),
                    "monthlySpendingLimit": result.monthly_spending_limit.map(|m| json!({"amount": m.amount, "currency": m.currency})) }))
            .await?;
        uow.commit().await?;
        Ok(result)
    }

    /// Removes a member from a company; the last admin cannot be removed.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
    ) -> AppResult<()> {
        let (mut uow, Access { view, grants }) =
            self.begin_membership_change(caller, company_id).await?;
        let current = self
            .member_within(&uow, &view, &grants, customer_id)
            .await?;
        let was_admin = serde_json::from_str::<Vec<String>>(&current.roles)
            .unwrap_or_default()
            .iter()
            .any(|r| r == "admin");
        if was_admin
            && Self::admins_after(uow.tx(), caller.tenant, company_id, customer_id, None).await?
                == 0
        {
            return Err(Self::last_admin());
        }
        member::Entity::delete_many()
            .filter(member::Column::Id.eq(current.id))
            .exec(uow.tx())
            .await?;
        // Invitations the member sent into this company's subtree die with the membership.
        invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(invitation::Column::TenantId.eq(caller.tenant.0))
            .filter(invitation::Column::InvitedBy.eq(customer_id))
            .filter(invitation::Column::InviterKind.eq("customer"))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(id_in(
                self.core.db.backend(),
                (invitation::Entity, invitation::Column::CompanyId),
                descendants(&view.tree, company_id).into_iter().collect(),
            ))
            .exec(uow.tx())
            .await?;
        uow.change::<company::Entity>(
            company_id,
            Vec::new(),
            "vectis.company.user_removed",
            |_| json!({ "companyId": company_id, "customerId": customer_id }),
        )
        .await?;
        uow.commit().await?;
        Ok(())
    }

    /// Adds a member directly (staff and seeding), without an invitation.
    pub async fn add_member(
        &self,
        caller: &Caller,
        company_id: Uuid,
        customer_id: Uuid,
        roles: Vec<String>,
        location_ids: Vec<Uuid>,
    ) -> AppResult<Member> {
        caller.require(Permission::CompanyWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let view = self
            .authorize(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        Self::check_roles(uow.tx(), caller.tenant, view.company.root_id, &roles).await?;
        self.check_locations(uow.tx(), &view, &location_ids).await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let row = member::Entity::insert(member::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            company_id: Set(company_id),
            customer_id: Set(customer_id),
            roles: Set(serde_json::to_string(&roles).map_err(anyhow::Error::from)?),
            location_ids: Set(serde_json::to_string(&location_ids).map_err(anyhow::Error::from)?),
            spending_limit: Set(None),
            monthly_spending_limit: Set(None),
            spending_currency: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(|err| {
            let text = err.to_string();
            if text.contains("FOREIGN KEY") || text.contains("foreign key") {
                AppError::not_found("Customer", customer_id)
            } else {
                crate::db::conflict(
                    "uq_company_members_company_customer",
                    "company_members.company_id",
                    "this person is a member of the company already",
                )(err)
            }
        })?;
        uow.change::<company::Entity>(
            company_id,
            Vec::new(),
            "vectis.company.user_joined",
            |_| json!({ "companyId": company_id, "customerId": customer_id, "roles": roles }),
        )
        .await?;
        uow.commit().await?;
        Member::try_from(row)
    }
}
