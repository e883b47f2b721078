//! Who may do what in a company: access checks that read current memberships (never token claims), the rights a caller may grant, and the lock on a tree's membership set.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::*;

impl CompaniesService {
    /// Loads a company with its tree if the caller may access it as `need` says. A company the
    /// caller may not see is reported as not found, so ids cannot be probed.
    pub async fn authorize(
        &self,
        tx: &DatabaseTransaction,
        caller: &Caller,
        id: Uuid,
        need: Need,
    ) -> AppResult<CompanyView> {
        Ok(self.access(tx, caller, id, need).await?.view)
    }

    /// Like [`Self::authorize`], with what the caller may grant. A company user's rights are
    /// read from their membership as it is in this transaction, never from token claims, so a
    /// demotion or removal takes effect at once.
    pub async fn access(
        &self,
        tx: &DatabaseTransaction,
        caller: &Caller,
        id: Uuid,
        need: Need,
    ) -> AppResult<Access> {
        let not_found = || AppError::not_found("Company", id);
        match &caller.principal {
            Principal::Storefront => {
                Err(AppError::Unauthenticated("log in to see companies".into()))
            }
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                let allowed = match need {
                    Need::Read => {
                        caller.has(Permission::CompanyRead) || caller.has(Permission::CompanyWrite)
                    }
                    Need::Write(_) => caller.has(Permission::CompanyWrite),
                };
                if !allowed && !caller.has(Permission::Impersonate) {
                    let missing = if need == Need::Read {
                        Permission::CompanyRead
                    } else {
                        Permission::CompanyWrite
                    };
                    return Err(AppError::Forbidden(crate::auth::permission_name(missing)));
                }
                let view = Self::load_tree(tx, caller.tenant, id)
                    .await?
                    .ok_or_else(not_found)?;
                let writes = caller.has(Permission::CompanyWrite);
                let grants = if writes {
                    Grants::All
                } else {
                    Grants::Only(Vec::new())
                };
                if allowed {
                    return Ok(Access { view, grants });
                }
                // A sales rep reads the companies assigned to them, with their divisions.
                let staff = caller.staff_id().ok_or_else(not_found)?;
                let assigned = Self::assigned(tx, caller.tenant, staff).await?;
                let covered = view.ancestry().iter().any(|c| assigned.contains(&c.id));
                match (covered, need) {
                    (true, Need::Read) => Ok(Access { view, grants }),
                    (true, Need::Write(_)) => Err(AppError::Forbidden("COMPANY_WRITE".into())),
                    (false, _) => Err(not_found()),
                }
            }
            Principal::Customer {
                id: customer,
                membership,
                ..
            } => {
                let claimed = membership.as_ref().ok_or_else(not_found)?;
                let membership = Self::current_membership_in(
                    tx,
                    caller.tenant,
                    *customer,
                    claimed.company_id,
                    claimed.location_id,
                )
                .await?
                .ok_or_else(not_found)?;
                let view = Self::load_tree(tx, caller.tenant, id)
                    .await?
                    .ok_or_else(not_found)?;
                if !view
                    .ancestry()
                    .iter()
                    .any(|c| c.id == membership.company_id)
                {
                    return Err(not_found());
                }
                let permission = match need {
                    Need::Read => CompanyPermission::ViewCompany,
                    Need::Write(p) => p,
                };
                if membership.can(permission) {
                    Ok(Access {
                        view,
                        grants: Grants::Only(membership.permissions),
                    })
                } else if membership.can(CompanyPermission::ViewCompany) {
                    Err(AppError::Forbidden(crate::auth::permission_name(
                        permission,
                    )))
                } else {
                    Err(not_found())
                }
            }
        }
    }

    /// The membership of `customer` in `company` as stored now (roles and the permissions
    /// they grant today), acting at `location` if the member may still use it. `None` when
    /// the customer is no longer a member. One statement, two with custom roles.
    pub async fn current_membership_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        customer: Uuid,
        company: Uuid,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        let Some(row) = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CustomerId.eq(customer))
            .filter(member::Column::CompanyId.eq(company))
            .one(tx)
            .await?
        else {
            return Ok(None);
        };
        let m = Member::try_from(row)?;
        let permissions = Self::permissions_of(tx, tenant, company, &m.roles).await?;
        Ok(Some(Membership {
            company_id: company,
            location_id: location
                .filter(|l| m.location_ids.is_empty() || m.location_ids.contains(l)),
            roles: m.roles,
            permissions,
        }))
    }

    /// [`Self::current_membership_in`] in a transaction of its own.
    pub async fn current_membership(
        &self,
        tenant: TenantId,
        customer: Uuid,
        company: Uuid,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        self.core
            .read(tenant, |tx| {
                Box::pin(Self::current_membership_in(
                    tx, tenant, customer, company, location,
                ))
            })
            .await
    }

    /// The permissions `roles` grant in `company`'s tree (built-in roles without a statement;
    /// custom roles with one lookup of the tree's roles).
    pub(crate) async fn permissions_of<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        company: Uuid,
        roles: &[String],
    ) -> AppResult<Vec<CompanyPermission>> {
        let mut permissions: Vec<CompanyPermission> = Vec::new();
        let mut custom = Vec::new();
        for r in roles {
            match builtin_company_role(r) {
                Some(p) => permissions.extend_from_slice(p),
                None => custom.push(r.clone()),
            }
        }
        if !custom.is_empty() {
            let roots = company::Entity::find()
                .select_only()
                .column(company::Column::RootId)
                .filter(company::Column::TenantId.eq(tenant.0))
                .filter(company::Column::Id.eq(company))
                .into_query();
            let rows = role::Entity::find()
                .filter(role::Column::TenantId.eq(tenant.0))
                .filter(role::Column::CompanyId.in_subquery(roots))
                .filter(role::Column::Code.is_in(custom))
                .all(tx)
                .await?;
            for r in rows {
                let granted: Vec<CompanyPermission> = serde_json::from_str(&r.permissions)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("role {}: {e}", r.id)))?;
                permissions.extend(granted);
            }
        }
        permissions.sort_by_key(|p| *p as u8);
        permissions.dedup();
        Ok(permissions)
    }

    /// Locks the membership set of `company`'s tree (the root company's row) for the rest of
    /// the unit of work: members, roles and invitations of one tree change one at a time, so
    /// invariants such as "at least one admin" hold under concurrency.
    pub(super) async fn lock_tree(uow: &UnitOfWork, company: Uuid) -> AppResult<()> {
        let root: Option<Uuid> = company::Entity::find()
            .select_only()
            .column(company::Column::RootId)
            .filter(company::Column::TenantId.eq(uow.tenant().0))
            .filter(company::Column::Id.eq(company))
            .into_tuple()
            .one(uow.tx())
            .await?;
        if let Some(root) = root {
            crate::db::lock::lock::<company::Entity, _>(uow.tx(), uow.tenant(), root).await?;
        }
        Ok(())
    }

    /// The membership a customer acts with: in `company` (or their first company) and at
    /// `location` (or the first location they may use). `None` when they are no member.
    pub async fn membership(
        &self,
        tenant: TenantId,
        customer: Uuid,
        company: Option<Uuid>,
        location: Option<Uuid>,
    ) -> AppResult<Option<Membership>> {
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let mut q = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CustomerId.eq(customer))
            .order_by_asc(member::Column::Id);
        if let Some(company) = company {
            q = q.filter(member::Column::CompanyId.eq(company));
        }
        let Some(row) = q.one(&tx).await? else {
            return Ok(None);
        };
        let m = Member::try_from(row)?;
        let Some(view) = Self::load_tree(&tx, tenant, m.company_id).await? else {
            return Ok(None);
        };
        let roles = Self::role_permissions(&tx, tenant, view.company.root_id).await?;
        let subtree: Vec<Uuid> = descendants(&view.tree, m.company_id).into_iter().collect();
        let locations = location::Entity::find()
            .select_only()
            .column(location::Column::Id)
            .filter(location::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (location::Entity, location::Column::CompanyId),
                subtree,
            ))
            .order_by_asc(location::Column::Id)
            .into_tuple::<Uuid>()
            .all(&tx)
            .await?;
        tx.commit().await?;
        let allowed: Vec<Uuid> = locations
            .into_iter()
            .filter(|l| m.location_ids.is_empty() || m.location_ids.contains(l))
            .collect();
        let location_id = match location {
            Some(l) if allowed.contains(&l) => Some(l),
            Some(_) => return Ok(None),
            None => allowed.first().copied(),
        };
        let mut permissions: Vec<CompanyPermission> = m
            .roles
            .iter()
            .filter_map(|r| roles.get(r))
            .flatten()
            .copied()
            .collect();
        permissions.sort_by_key(|p| *p as u8);
        permissions.dedup();
        Ok(Some(Membership {
            company_id: m.company_id,
            location_id,
            roles: m.roles,
            permissions,
        }))
    }

    /// Begins a change of `company`'s membership set (members, roles, invitations): locks the
    /// tree, then checks that the caller may manage users there, reading their rights as they
    /// are under the lock.
    pub(super) async fn begin_membership_change(
        &self,
        caller: &Caller,
        company_id: Uuid,
    ) -> AppResult<(UnitOfWork, Access)> {
        let uow = self.core.begin_for(caller).await?;
        Self::lock_tree(&uow, company_id).await?;
        let access = self
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        Ok((uow, access))
    }
}
