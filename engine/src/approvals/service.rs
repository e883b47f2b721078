//! Approval rules of companies, what an order needs at placement (through the
//! `ApprovalStrategy`), its approval flow and how far each requirement has got.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Datelike, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::approval::{
    ApprovalInput, ApprovalRule, Requirement, RoleCount, RuleCondition, Spending,
};
use vectis_strategies::order_process::OrderSnapshot;
use vectis_strategies::{ApprovalStrategy, Money};

use super::entity::{decision, flow, flow_state, rule, spend};
use crate::auth::{Caller, CompanyPermission};
use crate::cart::entity::order;
use crate::companies::CompaniesService;
use crate::companies::entity::member;
use crate::companies::service::Need;
use crate::db::id_in;
use crate::error::{AppError, AppResult};
use crate::events::{Core, UnitOfWork};
use crate::kernel::TenantId;

/// At most this many tiers per rule, roles per tier, and approvers per role.
const MAX_TIERS: usize = 5;
const MAX_COUNT: u32 = 10;

/// A rule as staff or a company admin write it.
#[derive(Debug, Clone)]
pub struct RuleInput {
    /// The rule to change; none creates one.
    pub id: Option<Uuid>,
    /// Name (1-200 characters), shown to buyers and approvers.
    pub name: String,
    /// Whether it applies.
    pub active: bool,
    /// When it applies.
    pub condition: RuleCondition,
    /// Who approves, tier by tier.
    pub tiers: Vec<Vec<RoleCount>>,
}

/// Approvals of one requirement so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The first tier not yet satisfied (none: the requirement is met).
    pub open_tier: Option<usize>,
    /// Approvals per tier and role, in the order of the requirement's tiers.
    pub approvals: Vec<Vec<u32>>,
}

/// How far each requirement has got with `decisions`.
pub fn progress(requirements: &[Requirement], decisions: &[decision::Model]) -> Vec<Progress> {
    requirements
        .iter()
        .enumerate()
        .map(|(r, req)| {
            let approvals: Vec<Vec<u32>> = req
                .tiers
                .iter()
                .enumerate()
                .map(|(t, tier)| {
                    tier.iter()
                        .map(|rc| {
                            decisions
                                .iter()
                                .filter(|d| {
                                    d.decision == "approved"
                                        && d.requirement as usize == r
                                        && d.tier as usize == t
                                        && d.role == rc.role
                                })
                                .count() as u32
                        })
                        .collect()
                })
                .collect();
            let open_tier = req.tiers.iter().enumerate().position(|(t, tier)| {
                tier.iter()
                    .zip(&approvals[t])
                    .any(|(rc, have)| *have < rc.count)
            });
            Progress {
                open_tier,
                approvals,
            }
        })
        .collect()
}

/// Where an approver with `roles` can act: per requirement with an open tier, that tier and the
/// first role of it they hold that still needs approvals.
pub fn actionable(
    requirements: &[Requirement],
    progress: &[Progress],
    roles: &[String],
) -> Vec<(usize, usize, String)> {
    requirements
        .iter()
        .zip(progress)
        .enumerate()
        .filter_map(|(r, (req, p))| {
            let t = p.open_tier?;
            req.tiers[t]
                .iter()
                .zip(&p.approvals[t])
                .find(|(rc, have)| **have < rc.count && roles.contains(&rc.role))
                .map(|(rc, _)| (r, t, rc.role.clone()))
        })
        .collect()
}

/// A stored rule as the strategy sees it.
pub fn rule_of(m: &rule::Model) -> AppResult<ApprovalRule> {
    let corrupt = |e: serde_json::Error| AppError::Internal(anyhow::anyhow!("rule {}: {e}", m.id));
    Ok(ApprovalRule {
        id: m.id,
        name: m.name.clone(),
        company_id: m.company_id,
        condition: serde_json::from_str(&m.condition).map_err(corrupt)?,
        tiers: serde_json::from_str(&m.tiers).map_err(corrupt)?,
    })
}

/// The requirements of a flow.
pub fn requirements_of(f: &flow::Model) -> Vec<Requirement> {
    serde_json::from_str(&f.requirements).unwrap_or_default()
}

/// Approval rules and flows.
#[derive(Clone)]
pub struct ApprovalsService {
    core: Core,
    companies: CompaniesService,
    strategy: Arc<dyn ApprovalStrategy>,
}

impl ApprovalsService {
    /// The service deciding with `strategy`.
    pub fn new(
        core: Core,
        companies: CompaniesService,
        strategy: Arc<dyn ApprovalStrategy>,
    ) -> Self {
        ApprovalsService {
            core,
            companies,
            strategy,
        }
    }

    /// Who may manage rules at all, checked before any input or lookup.
    fn may_manage(caller: &Caller) -> AppResult<()> {
        match &caller.principal {
            crate::auth::Principal::Storefront => Err(AppError::Unauthenticated(
                "log in to manage approval rules".into(),
            )),
            crate::auth::Principal::Customer { .. } => Ok(()),
            _ => caller.require(crate::auth::Permission::CompanyWrite),
        }
    }

    fn check(input: &RuleInput) -> AppResult<(String, String, String)> {
        let name = crate::kernel::text::text("name", &input.name, 200)?;
        if input.tiers.is_empty() || input.tiers.len() > MAX_TIERS {
            return Err(AppError::validation(
                "tiers",
                format!("give 1-{MAX_TIERS} tiers"),
            ));
        }
        for tier in &input.tiers {
            if tier.is_empty() || tier.len() > MAX_TIERS {
                return Err(AppError::validation(
                    "tiers",
                    format!("each tier names 1-{MAX_TIERS} roles"),
                ));
            }
            if tier.iter().any(|rc| rc.count == 0 || rc.count > MAX_COUNT) {
                return Err(AppError::validation(
                    "tiers",
                    format!("a role needs 1-{MAX_COUNT} approvers"),
                ));
            }
        }
        if input.condition.total_above.is_some_and(|m| m.amount < 0) {
            return Err(AppError::validation(
                "condition.totalAbove",
                "must not be negative",
            ));
        }
        let condition = serde_json::to_string(&input.condition).map_err(anyhow::Error::from)?;
        let tiers = serde_json::to_string(&input.tiers).map_err(anyhow::Error::from)?;
        Ok((name, condition, tiers))
    }

    /// Creates or changes a rule of `company_id` (company users with `MANAGE_APPROVALS` in the
    /// company or a parent, staff with `COMPANY_WRITE`). Roles must exist in the company.
    pub async fn save_rule(
        &self,
        caller: &Caller,
        company_id: Uuid,
        input: RuleInput,
    ) -> AppResult<rule::Model> {
        Self::may_manage(caller)?;
        let (name, condition, tiers) = Self::check(&input)?;
        let mut uow = self.core.begin_for(caller).await?;
        let access = self
            .companies
            .access(
                uow.tx(),
                caller,
                company_id,
                Need::Write(CompanyPermission::ManageApprovals),
            )
            .await?;
        let roles: Vec<String> = input
            .tiers
            .iter()
            .flatten()
            .map(|rc| rc.role.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        CompaniesService::check_roles(uow.tx(), caller.tenant, access.view.company.root_id, &roles)
            .await?;
        let now = Utc::now();
        let saved = match input.id {
            None => {
                let id = Uuid::now_v7();
                rule::Entity::insert(rule::ActiveModel {
                    id: Set(id),
                    tenant_id: Set(caller.tenant.0),
                    created_at: Set(now),
                    updated_at: Set(now),
                    company_id: Set(company_id),
                    name: Set(name),
                    active: Set(input.active),
                    condition: Set(condition),
                    tiers: Set(tiers),
                    version: Set(0),
                })
                .exec_without_returning(uow.tx())
                .await?;
                uow.change::<rule::Entity>(
                    id,
                    Vec::new(),
                    "vectis.company.approval_rule_saved",
                    rule_event,
                )
                .await?
            }
            Some(id) => {
                let found = crate::db::lock::lock::<rule::Entity, _>(uow.tx(), caller.tenant, id)
                    .await?
                    .filter(|r| r.company_id == company_id)
                    .ok_or_else(|| AppError::not_found("ApprovalRule", id))?;
                uow.change::<rule::Entity>(
                    found.id,
                    vec![
                        (rule::Column::Name, Expr::value(name)),
                        (rule::Column::Active, Expr::value(input.active)),
                        (rule::Column::Condition, Expr::value(condition)),
                        (rule::Column::Tiers, Expr::value(tiers)),
                    ],
                    "vectis.company.approval_rule_saved",
                    rule_event,
                )
                .await?
            }
        };
        uow.commit().await?;
        Ok(saved)
    }

    /// Deletes a rule (as [`Self::save_rule`]); orders waiting keep what they were asked for.
    pub async fn delete_rule(&self, caller: &Caller, id: Uuid) -> AppResult<bool> {
        Self::may_manage(caller)?;
        let mut uow = self.core.begin_for(caller).await?;
        let Some(found) =
            crate::db::lock::lock::<rule::Entity, _>(uow.tx(), caller.tenant, id).await?
        else {
            return Err(AppError::not_found("ApprovalRule", id));
        };
        self.companies
            .access(
                uow.tx(),
                caller,
                found.company_id,
                Need::Write(CompanyPermission::ManageApprovals),
            )
            .await?;
        uow.change::<rule::Entity>(
            id,
            Vec::new(),
            "vectis.company.approval_rule_deleted",
            |r| json!({ "id": r.id, "companyId": r.company_id }),
        )
        .await?;
        rule::Entity::delete_by_id(id).exec(uow.tx()).await?;
        uow.commit().await?;
        Ok(true)
    }

    /// The rules of a company itself (not inherited), oldest first, for those who may see it.
    pub async fn rules(&self, caller: &Caller, company_id: Uuid) -> AppResult<Vec<rule::Model>> {
        let uow = self.core.begin_for(caller).await?;
        self.companies
            .access(uow.tx(), caller, company_id, Need::Read)
            .await?;
        let rows = rule::Entity::find()
            .filter(rule::Column::TenantId.eq(caller.tenant.0))
            .filter(rule::Column::CompanyId.eq(company_id))
            .order_by_asc(rule::Column::Id)
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        Ok(rows)
    }

    /// At placement, inside the placing unit of work: adds the order to its buyer's spend this
    /// month (atomically) and asks the strategy which approvals it needs, from the rules of the
    /// buyer's company and its parents and the buyer's spending limits.
    pub(crate) async fn requirements_in(
        &self,
        uow: &UnitOfWork,
        order: &order::Model,
        snapshot: &OrderSnapshot,
    ) -> AppResult<Vec<Requirement>> {
        let tenant = uow.tenant();
        let (Some(company), Some(customer)) = (order.company_id, order.customer_id) else {
            return Ok(Vec::new());
        };
        let Some(m) = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant.0))
            .filter(member::Column::CompanyId.eq(company))
            .filter(member::Column::CustomerId.eq(customer))
            .one(uow.tx())
            .await?
        else {
            return Ok(Vec::new());
        };
        let member = crate::companies::service::Member::try_from(m)?;
        let tree = CompaniesService::load_tree(uow.tx(), tenant, company)
            .await?
            .ok_or_else(|| AppError::not_found("Company", company))?;
        let chain: Vec<Uuid> = tree.ancestry().iter().map(|c| c.id).collect();
        let rules: Vec<ApprovalRule> = rule::Entity::find()
            .filter(rule::Column::TenantId.eq(tenant.0))
            .filter(rule::Column::Active.eq(true))
            .filter(id_in(
                self.core.db.backend(),
                (rule::Entity, rule::Column::CompanyId),
                chain,
            ))
            .order_by_asc(rule::Column::Id)
            .all(uow.tx())
            .await?
            .iter()
            .map(rule_of)
            .collect::<AppResult<_>>()?;
        let collections: HashSet<Uuid> =
            if rules.iter().any(|r| !r.condition.collection_ids.is_empty()) {
                crate::catalog::read::collections_of_order(uow.tx(), tenant, order.id)
                    .await?
                    .into_iter()
                    .collect()
            } else {
                HashSet::new()
            };
        let month_spend = self
            .spend_in(uow, member.id, &order.currency, order.total)
            .await?;
        let spending = (member.spending_limit.is_some() || member.monthly_spending_limit.is_some())
            .then_some(Spending {
                per_order: member.spending_limit,
                monthly: member.monthly_spending_limit,
                month_spend,
            });
        Ok(self.strategy.required(&ApprovalInput {
            order: snapshot,
            location_id: order.location_id,
            buyer_roles: &member.roles,
            collection_ids: &collections,
            spending,
            rules: &rules,
        }))
    }

    /// Adds `amount` (negative: takes it off) to the member's spend this month (UTC) in one
    /// statement that also locks the row, and returns the month's spend after it.
    async fn spend_in(
        &self,
        uow: &UnitOfWork,
        member: Uuid,
        currency: &str,
        amount: i64,
    ) -> AppResult<Money> {
        let now = Utc::now();
        let month = format!("{:04}-{:02}", now.year(), now.month());
        let backend = self.core.db.backend();
        let p = |i: usize| match backend {
            sea_orm::DbBackend::Postgres => format!("${i}"),
            _ => format!("?{i}"),
        };
        let sql = format!(
            "INSERT INTO member_spend (id, tenant_id, member_id, month, currency, amount, created_at, updated_at) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}) \
             ON CONFLICT (member_id, month, currency) DO UPDATE SET amount = member_spend.amount + excluded.amount, \
             updated_at = excluded.updated_at RETURNING amount",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(7)
        );
        let row = uow
            .tx()
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [
                    Uuid::now_v7().into(),
                    uow.tenant().0.into(),
                    member.into(),
                    month.into(),
                    currency.to_owned().into(),
                    amount.into(),
                    now.into(),
                ],
            ))
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no spend row")))?;
        let spent: i64 = row.try_get("", "amount")?;
        Ok(Money::new(
            spent,
            currency
                .parse()
                .unwrap_or(vectis_strategies::CurrencyCode::EUR),
        ))
    }

    /// Takes a cancelled or rejected order (or cancelled part of it, `amount`) off its buyer's
    /// spend of the month it was placed in.
    pub(crate) async fn unspend_in(
        &self,
        uow: &UnitOfWork,
        order: &order::Model,
        amount: i64,
    ) -> AppResult<()> {
        let (Some(company), Some(customer)) = (order.company_id, order.customer_id) else {
            return Ok(());
        };
        if amount == 0 {
            return Ok(());
        }
        let Some(m) = member::Entity::find()
            .filter(member::Column::TenantId.eq(uow.tenant().0))
            .filter(member::Column::CompanyId.eq(company))
            .filter(member::Column::CustomerId.eq(customer))
            .one(uow.tx())
            .await?
        else {
            return Ok(());
        };
        let placed = order.placed_at.unwrap_or_else(Utc::now);
        let month = format!("{:04}-{:02}", placed.year(), placed.month());
        spend::Entity::update_many()
            .col_expr(
                spend::Column::Amount,
                Expr::col(spend::Column::Amount).sub(amount),
            )
            .col_expr(spend::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(spend::Column::TenantId.eq(uow.tenant().0))
            .filter(spend::Column::MemberId.eq(m.id))
            .filter(spend::Column::Month.eq(month))
            .filter(spend::Column::Currency.eq(order.currency.clone()))
            .exec(uow.tx())
            .await?;
        Ok(())
    }

    /// Opens the approval flow of held `order` with `requirements`.
    pub(crate) async fn open_flow_in(
        &self,
        uow: &mut UnitOfWork,
        order: &order::Model,
        requirements: &[Requirement],
    ) -> AppResult<order::Model> {
        let now = Utc::now();
        let text = serde_json::to_string(requirements).map_err(anyhow::Error::from)?;
        flow::Entity::insert(flow::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(uow.tenant().0),
            created_at: Set(now),
            updated_at: Set(now),
            order_id: Set(order.id),
            company_id: Set(order.company_id.unwrap_or_default()),
            location_id: Set(order.location_id),
            buyer_id: Set(order.customer_id),
            state: Set(flow_state::PENDING.into()),
            requirements: Set(text),
            version: Set(1),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let reqs = serde_json::to_value(requirements).map_err(anyhow::Error::from)?;
        uow.change::<order::Entity>(
            order.id,
            Vec::new(),
            "vectis.order.approval_requested",
            |o| {
                json!({ "orderId": o.id, "code": o.code, "companyId": o.company_id,
                "locationId": o.location_id, "customerId": o.customer_id, "total": o.total,
                "currency": o.currency, "requirements": reqs })
            },
        )
        .await
    }

    /// The flow of `order_id`, locked (the caller holds the order's lock).
    pub(crate) async fn flow_in(
        &self,
        uow: &UnitOfWork,
        order_id: Uuid,
    ) -> AppResult<Option<flow::Model>> {
        Ok(flow::Entity::find()
            .filter(flow::Column::TenantId.eq(uow.tenant().0))
            .filter(flow::Column::OrderId.eq(order_id))
            .one(uow.tx())
            .await?)
    }

    /// The decisions of a flow, oldest first.
    pub(crate) async fn decisions_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        flow_id: Uuid,
    ) -> AppResult<Vec<decision::Model>> {
        Ok(decision::Entity::find()
            .filter(decision::Column::TenantId.eq(tenant.0))
            .filter(decision::Column::FlowId.eq(flow_id))
            .order_by_asc(decision::Column::Id)
            .all(tx)
            .await?)
    }

    /// Records decisions and moves the flow to `state` (when it changes).
    pub(crate) async fn record_in(
        &self,
        uow: &UnitOfWork,
        f: &flow::Model,
        rows: Vec<decision::ActiveModel>,
        state: &str,
    ) -> AppResult<()> {
        decision::Entity::insert_many(rows)
            .exec_without_returning(uow.tx())
            .await?;
        if state != f.state {
            flow::Entity::update_many()
                .col_expr(flow::Column::State, Expr::value(state.to_owned()))
                .col_expr(
                    flow::Column::Version,
                    Expr::col(flow::Column::Version).add(1),
                )
                .col_expr(flow::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(flow::Column::Id.eq(f.id))
                .exec(uow.tx())
                .await?;
        }
        Ok(())
    }

    /// Pending flows of companies in `companies`, oldest first, at most `limit`.
    pub(crate) async fn pending_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        companies: Vec<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<flow::Model>> {
        use sea_orm::QuerySelect;
        Ok(flow::Entity::find()
            .filter(flow::Column::TenantId.eq(tenant.0))
            .filter(flow::Column::State.eq(flow_state::PENDING))
            .filter(id_in(
                self.core.db.backend(),
                (flow::Entity, flow::Column::CompanyId),
                companies,
            ))
            .order_by_asc(flow::Column::Id)
            .limit(limit)
            .all(tx)
            .await?)
    }

    /// Flows of `orders` (for loaders).
    pub async fn flows_of(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<flow::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(flow::Entity::find()
                        .filter(flow::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (flow::Entity, flow::Column::OrderId),
                            orders,
                        ))
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Decisions on `orders`, oldest first, in the caller's transaction.
    pub(crate) async fn decisions_of_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<decision::Model>> {
        Ok(decision::Entity::find()
            .filter(decision::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (decision::Entity, decision::Column::OrderId),
                orders,
            ))
            .order_by_asc(decision::Column::Id)
            .all(tx)
            .await?)
    }

    /// Decisions on `orders`, oldest first (for loaders).
    pub async fn decisions_of(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<decision::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(decision::Entity::find()
                        .filter(decision::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (decision::Entity, decision::Column::OrderId),
                            orders,
                        ))
                        .order_by_asc(decision::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}

fn rule_event(r: &rule::Model) -> serde_json::Value {
    json!({ "id": r.id, "companyId": r.company_id, "name": r.name, "active": r.active,
        "condition": serde_json::from_str::<serde_json::Value>(&r.condition).unwrap_or_default(),
        "tiers": serde_json::from_str::<serde_json::Value>(&r.tiers).unwrap_or_default() })
}

/// Who may act on the first open tier of `requirements` for an order of `company` at
/// `location` placed by `buyer`: company users of the company or a parent with
/// `APPROVE_ORDERS` and one of the roles asked for, at that location; their email and first
/// name. A few statements per company of the tree (for the notifications consumer).
pub async fn approvers_of<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    company: Uuid,
    location: Option<Uuid>,
    buyer: Option<Uuid>,
    requirements: &[Requirement],
) -> AppResult<Vec<(String, String)>> {
    let asked: HashSet<&str> = requirements
        .iter()
        .filter_map(|r| r.tiers.first())
        .flatten()
        .map(|rc| rc.role.as_str())
        .collect();
    // The company and its parents.
    let chain = CompaniesService::chain_of(tx, tenant, company).await?;
    if chain.is_empty() {
        return Ok(Vec::new());
    }
    let members = member::Entity::find()
        .filter(member::Column::TenantId.eq(tenant.0))
        .filter(member::Column::CompanyId.is_in(chain))
        .all(tx)
        .await?;
    let mut who = Vec::new();
    for m in members {
        if Some(m.customer_id) == buyer {
            continue;
        }
        let roles: Vec<String> = serde_json::from_str(&m.roles).unwrap_or_default();
        let locations: Vec<Uuid> = serde_json::from_str(&m.location_ids).unwrap_or_default();
        if !roles.iter().any(|r| asked.contains(r.as_str()))
            || !(locations.is_empty() || location.is_some_and(|l| locations.contains(&l)))
        {
            continue;
        }
        let permissions =
            CompaniesService::permissions_of(tx, tenant, m.company_id, &roles).await?;
        if permissions.contains(&CompanyPermission::ApproveOrders) {
            who.push(m.customer_id);
        }
    }
    if who.is_empty() {
        return Ok(Vec::new());
    }
    use crate::accounts::entity::customer;
    Ok(customer::Entity::find()
        .filter(customer::Column::TenantId.eq(tenant.0))
        .filter(customer::Column::Id.is_in(who))
        .order_by_asc(customer::Column::Email)
        .all(tx)
        .await?
        .into_iter()
        .map(|c| (c.email, c.first_name))
        .collect())
}
