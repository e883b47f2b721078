//! Companies and their trees: reading, listing, creating, changing and moving companies and divisions; settings inherit down the tree.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::*;

impl CompaniesService {
    pub(crate) async fn load_tree(
        tx: &DatabaseTransaction,
        tenant: TenantId,
        id: Uuid,
    ) -> AppResult<Option<CompanyView>> {
        let Some(found) = company::Entity::find_by_id(id)
            .filter(company::Column::TenantId.eq(tenant.0))
            .one(tx)
            .await?
        else {
            return Ok(None);
        };
        let tree = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::RootId.eq(found.root_id))
            .all(tx)
            .await?;
        Ok(Some(CompanyView {
            company: found,
            tree: std::sync::Arc::new(tree),
        }))
    }

    /// A company the caller may read.
    pub async fn company(&self, caller: &Caller, id: Uuid) -> AppResult<CompanyView> {
        let tx = self.core.db.read(Scope::Tenant(caller.tenant)).await?;
        let view = self.authorize(&tx, caller, id, Need::Read).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The caller's own company (company users).
    pub async fn my_company(&self, caller: &Caller) -> AppResult<Option<CompanyView>> {
        let (_, membership) = caller.require_customer()?;
        match membership {
            Some(m) => self.company(caller, m.company_id).await.map(Some),
            None => Ok(None),
        }
    }

    /// A page of the companies the caller may read, by id; sales reps see their assignments.
    pub async fn list(
        &self,
        caller: &Caller,
        search: Option<String>,
        page: PageRequest,
    ) -> AppResult<Page<CompanyView>> {
        let everything =
            caller.has(Permission::CompanyRead) || caller.has(Permission::CompanyWrite);
        if !everything && !caller.has(Permission::Impersonate) {
            caller.require(Permission::CompanyRead)?;
        }
        let tenant = caller.tenant;
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let mut filter = company::Entity::find().filter(company::Column::TenantId.eq(tenant.0));
        if !everything {
            let staff = caller.staff_id().unwrap_or_default();
            let assigned: Vec<Uuid> = Self::assigned(&tx, tenant, staff)
                .await?
                .into_iter()
                .collect();
            // Assigned companies and every company of their trees; divisions outside an
            // assigned subtree are filtered below.
            let roots: Vec<Uuid> = company::Entity::find()
                .select_only()
                .column(company::Column::RootId)
                .filter(company::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    self.core.db.backend(),
                    (company::Entity, company::Column::Id),
                    assigned,
                ))
                .into_tuple::<Uuid>()
                .all(&tx)
                .await?;
            filter = filter.filter(id_in(
                self.core.db.backend(),
                (company::Entity, company::Column::RootId),
                roots,
            ));
        }
        if let Some(pattern) =
            crate::db::contains_pattern("search", search.as_deref().unwrap_or(""))?
        {
            filter = filter.filter(
                Expr::expr(sea_orm::sea_query::Func::lower(Expr::col((
                    company::Entity,
                    company::Column::Name,
                ))))
                .like(LikeExpr::new(pattern).escape('\\')),
            );
        }
        let candidates = filter.order_by_asc(company::Column::Id).all(&tx).await?;
        let roots: HashSet<Uuid> = candidates.iter().map(|c| c.root_id).collect();
        let trees = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (company::Entity, company::Column::RootId),
                roots.into_iter().collect(),
            ))
            .all(&tx)
            .await?;
        let assigned = match caller.staff_id() {
            Some(staff) if !everything => Some(Self::assigned(&tx, tenant, staff).await?),
            _ => None,
        };
        tx.commit().await?;
        let mut by_root: HashMap<Uuid, Vec<company::Model>> = HashMap::new();
        for c in trees {
            by_root.entry(c.root_id).or_default().push(c);
        }
        let by_root: HashMap<Uuid, std::sync::Arc<Vec<company::Model>>> = by_root
            .into_iter()
            .map(|(k, v)| (k, std::sync::Arc::new(v)))
            .collect();
        let visible: Vec<CompanyView> = candidates
            .into_iter()
            .filter_map(|c| {
                let tree = by_root.get(&c.root_id)?.clone();
                Some(CompanyView { company: c, tree })
            })
            .filter(|v| match &assigned {
                Some(assigned) => v.ancestry().iter().any(|c| assigned.contains(&c.id)),
                None => true,
            })
            .collect();
        let total = visible.len() as u64;
        let rows: Vec<CompanyView> = visible
            .into_iter()
            .filter(|v| page.after.is_none_or(|a| v.company.id > a))
            .take(usize::try_from(page.limit()).unwrap_or(usize::MAX))
            .collect();
        Ok(page.page(rows, total))
    }

    pub(super) async fn apply_settings(
        &self,
        uow: &UnitOfWork,
        settings: &CompanySettings,
    ) -> AppResult<Vec<(company::Column, Expr)>> {
        let mut sets = Vec::new();
        if let Some(vat_id) = &settings.vat_id {
            sets.push((
                company::Column::VatId,
                Expr::value(vat_field("vatId", vat_id.clone())?),
            ));
        }
        if let Some(tax_exempt) = settings.tax_exempt {
            sets.push((company::Column::TaxExempt, Expr::value(tax_exempt)));
        }
        if let Some(terms) = settings.payment_terms {
            sets.push((
                company::Column::PaymentTerms,
                Expr::value(terms.map(|t| t.code().to_owned())),
            ));
        }
        if let Some(credit) = &settings.credit_limit {
            let credit = limit("creditLimit", credit.clone())?;
            sets.push((
                company::Column::CreditLimit,
                Expr::value(credit.as_ref().map(|c| c.1)),
            ));
            sets.push((
                company::Column::CreditCurrency,
                Expr::value(credit.map(|c| c.0)),
            ));
        }
        if let Some(group) = settings.customer_group_id {
            if let Some(group) = group {
                self.accounts.ensure_group_in(uow, group).await?;
            }
            sets.push((company::Column::CustomerGroupId, Expr::value(group)));
        }
        Ok(sets)
    }

    /// Creates a company, or a division under `parent_id`.
    pub async fn create(&self, caller: &Caller, input: NewCompany) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let name = text::name("name", &input.name, 200)?;
        let mut uow = self.core.begin_for(caller).await?;
        let id = Uuid::now_v7();
        let root_id = match input.parent_id {
            Some(parent) => {
                let view = self
                    .authorize(
                        uow.tx(),
                        caller,
                        parent,
                        Need::Write(CompanyPermission::ManageUsers),
                    )
                    .await?;
                if view.ancestry().len() >= MAX_DEPTH {
                    return Err(AppError::validation(
                        "parentId",
                        format!("a hierarchy has at most {MAX_DEPTH} levels"),
                    ));
                }
                view.company.root_id
            }
            None => id,
        };
        let sets = self.apply_settings(&uow, &input.settings).await?;
        let now = Utc::now();
        company::Entity::insert(company::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            parent_id: Set(input.parent_id),
            root_id: Set(root_id),
            name: Set(name.clone()),
            vat_id: Set(None),
            tax_exempt: Set(None),
            payment_terms: Set(None),
            credit_limit: Set(None),
            credit_currency: Set(None),
            credit_exposure: Set(0),
            customer_group_id: Set(None),
            status: Set("active".into()),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await?;
        uow.change::<company::Entity>(id, sets, "vectis.company.created", |created| {
            company_json(created)
        })
        .await?;
        let view = Self::load_tree(uow.tx(), caller.tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Renames a company, changes its settings or moves it under another parent (`Some(None)`
    /// makes it a root). Moves that would create a cycle or exceed the depth are refused.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        name: Option<String>,
        parent: Option<Option<Uuid>>,
        settings: CompanySettings,
    ) -> AppResult<CompanyView> {
        caller.require(Permission::CompanyWrite)?;
        let name = name.map(|n| text::name("name", &n, 200)).transpose()?;
        let mut uow = self.core.begin_for(caller).await?;
        let view = self
            .authorize(
                uow.tx(),
                caller,
                id,
                Need::Write(CompanyPermission::ManageUsers),
            )
            .await?;
        let mut sets = self.apply_settings(&uow, &settings).await?;
        if let Some(name) = &name {
            sets.push((company::Column::Name, Expr::value(name.clone())));
        }
        if let Some(new_parent) = parent {
            let subtree = descendants(&view.tree, id);
            let new_root = match new_parent {
                None => id,
                Some(p) if subtree.contains(&p) => {
                    return Err(AppError::validation(
                        "parentId",
                        "a company cannot be placed under itself or one of its divisions",
                    ));
                }
                Some(p) => {
                    let target = self
                        .authorize(
                            uow.tx(),
                            caller,
                            p,
                            Need::Write(CompanyPermission::ManageUsers),
                        )
                        .await?;
                    let subtree_depth = subtree
                        .iter()
                        .map(|d| ancestry(&view.tree, *d).len() - view.ancestry().len() + 1)
                        .max()
                        .unwrap_or(1);
                    if target.ancestry().len() + subtree_depth > MAX_DEPTH {
                        return Err(AppError::validation(
                            "parentId",
                            format!("a hierarchy has at most {MAX_DEPTH} levels"),
                        ));
                    }
                    target.company.root_id
                }
            };
            sets.push((company::Column::ParentId, Expr::value(new_parent)));
            if new_root != view.company.root_id {
                let moved: Vec<Uuid> = subtree.into_iter().filter(|d| *d != id).collect();
                sets.push((company::Column::RootId, Expr::value(new_root)));
                if !moved.is_empty() {
                    company::Entity::update_many()
                        .col_expr(company::Column::RootId, Expr::value(new_root))
                        .filter(company::Column::TenantId.eq(caller.tenant.0))
                        .filter(id_in(
                            self.core.db.backend(),
                            (company::Entity, company::Column::Id),
                            moved.clone(),
                        ))
                        .exec(uow.tx())
                        .await?;
                }
            }
        }
        uow.change::<company::Entity>(id, sets, "vectis.company.updated", |updated| {
            company_json(updated)
        })
        .await?;
        let view = Self::load_tree(uow.tx(), caller.tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("Company", id))?;
        uow.commit().await?;
        Ok(view)
    }

    /// Checks that a company exists in the unit of work's tenant.
    pub async fn ensure_company_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<()> {
        company::Entity::find_by_id(id)
            .filter(company::Column::TenantId.eq(uow.tenant().0))
            .one(uow.tx())
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found("Company", id))
    }

    /// `company` and its parents up to the root, nearest first (two statements; empty for an
    /// unknown company).
    pub async fn chain_of<C: sea_orm::ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
        company: Uuid,
    ) -> AppResult<Vec<Uuid>> {
        let Some(root): Option<Uuid> = company::Entity::find()
            .select_only()
            .column(company::Column::RootId)
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::Id.eq(company))
            .into_tuple()
            .one(tx)
            .await?
        else {
            return Ok(Vec::new());
        };
        let tree = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::RootId.eq(root))
            .all(tx)
            .await?;
        let mut chain = Vec::new();
        let mut next = Some(company);
        while let Some(id) = next {
            chain.push(id);
            next = tree.iter().find(|c| c.id == id).and_then(|c| c.parent_id);
        }
        Ok(chain)
    }

    /// `company` and all its divisions (two statements).
    pub async fn subtree_of<C: sea_orm::ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        company_id: Uuid,
    ) -> AppResult<Vec<Uuid>> {
        let Some(root): Option<Uuid> = company::Entity::find()
            .select_only()
            .column(company::Column::RootId)
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::Id.eq(company_id))
            .into_tuple()
            .one(tx)
            .await?
        else {
            return Ok(Vec::new());
        };
        let tree = company::Entity::find()
            .filter(company::Column::TenantId.eq(tenant.0))
            .filter(company::Column::RootId.eq(root))
            .all(tx)
            .await?;
        Ok(descendants(&tree, company_id).into_iter().collect())
    }

    /// Whether `company` is `ancestor` or one of its divisions.
    pub async fn within<C: sea_orm::ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        ancestor: Uuid,
        company: Uuid,
    ) -> AppResult<bool> {
        Ok(self
            .subtree_of(tx, tenant, ancestor)
            .await?
            .contains(&company))
    }
}
