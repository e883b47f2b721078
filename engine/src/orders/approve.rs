//! Approving and rejecting held orders, and an approver's queue.
//!
//! An approver is a company user whose roles (read from their membership now, not from the
//! token) include one that the open tier of a requirement still needs, in the order's company
//! or a parent, at a location they may act in. Nobody approves their own order; an approver
//! decides once per order. The order is locked first, so two approvers acting at once on the
//! same tier each record their decision and exactly one of them releases the order when the
//! last requirement is met.

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::order_process::state;

use super::entity::payment_state;
use super::service::{OrdersService, actor_of};
use crate::approvals::entity::{decision, flow_state};
use crate::approvals::service::{actionable, progress, requirements_of};
use crate::auth::{Caller, CompanyPermission, Principal};
use crate::cart::entity::order;
use crate::companies::CompaniesService;
use crate::error::{AppError, AppResult};

/// What `approveOrder` and `rejectOrder` did.
#[derive(Debug)]
pub enum DecisionOutcome {
    /// Recorded: the order as it is now (placed once every requirement is met, cancelled when
    /// rejected, still waiting otherwise).
    Decided(Box<order::Model>),
    /// Refused: `SELF_APPROVAL`, `ALREADY_DECIDED`, `NOT_YOUR_TIER`, `NOT_PENDING`.
    Refused {
        /// The code.
        code: &'static str,
        /// For people.
        message: String,
    },
}

fn refused(code: &'static str, message: impl Into<String>) -> AppResult<DecisionOutcome> {
    Ok(DecisionOutcome::Refused {
        code,
        message: message.into(),
    })
}

/// A company user who may approve, as their membership is now.
struct Approver {
    id: Uuid,
    roles: Vec<String>,
    /// Their company and its divisions.
    companies: Vec<Uuid>,
    /// The locations they act for (empty: all).
    locations: Vec<Uuid>,
}

impl Approver {
    fn covers(&self, company: Uuid, location: Option<Uuid>) -> bool {
        self.companies.contains(&company)
            && (self.locations.is_empty() || location.is_some_and(|l| self.locations.contains(&l)))
    }
}

impl OrdersService {
    /// The caller as an approver (roles read now), if they hold `APPROVE_ORDERS`.
    async fn approver_in(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        caller: &Caller,
    ) -> AppResult<Option<Approver>> {
        use crate::companies::entity::member;
        let Principal::Customer {
            id,
            membership: Some(claimed),
            ..
        } = &caller.principal
        else {
            return Ok(None);
        };
        let Some(row) = member::Entity::find()
            .filter(member::Column::TenantId.eq(caller.tenant.0))
            .filter(member::Column::CompanyId.eq(claimed.company_id))
            .filter(member::Column::CustomerId.eq(*id))
            .one(tx)
            .await?
        else {
            return Ok(None);
        };
        let m = crate::companies::service::Member::try_from(row)?;
        let permissions =
            CompaniesService::permissions_of(tx, caller.tenant, m.company_id, &m.roles).await?;
        if !permissions.contains(&CompanyPermission::ApproveOrders) {
            return Ok(None);
        }
        let companies = self
            .companies
            .subtree_of(tx, caller.tenant, m.company_id)
            .await?;
        Ok(Some(Approver {
            id: *id,
            roles: m.roles,
            companies,
            locations: m.location_ids,
        }))
    }

    /// Approves (or, with `approve` false, rejects) held order `id` with `comment`.
    pub async fn decide(
        &self,
        caller: &Caller,
        id: Uuid,
        approve: bool,
        comment: Option<String>,
    ) -> AppResult<DecisionOutcome> {
        match &caller.principal {
            Principal::Storefront => {
                return Err(AppError::Unauthenticated("log in to approve orders".into()));
            }
            Principal::Customer {
                membership: Some(_),
                ..
            } => {}
            _ => {
                return Err(AppError::Forbidden(crate::auth::permission_name(
                    CompanyPermission::ApproveOrders,
                )));
            }
        }
        let comment = crate::kernel::text::optional("comment", comment.as_deref(), 1_000)?;
        if !approve && comment.is_none() {
            return Err(AppError::validation(
                "comment",
                "say why the order is rejected",
            ));
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, id)
            .await?
            .filter(|o| o.state != state::CART)
            .ok_or_else(|| AppError::not_found("Order", id))?;
        let not_found = || AppError::not_found("Order", id);
        let company = order.company_id.ok_or_else(not_found)?;
        let Some(me) = self
            .approver_in(uow.tx(), caller)
            .await?
            .filter(|a| a.covers(company, order.location_id))
        else {
            return Err(not_found());
        };
        let (approver, roles) = (me.id, me.roles);
        let f = self.approvals.flow_in(&uow, order.id).await?;
        let Some(f) = f.filter(|f| f.state == flow_state::PENDING) else {
            return refused("NOT_PENDING", "this order is not waiting for approval");
        };
        if order.customer_id == Some(approver) {
            return refused("SELF_APPROVAL", "nobody approves their own order");
        }
        let decisions = self.approvals.decisions_in(uow.tx(), tenant, f.id).await?;
        if decisions.iter().any(|d| d.approver_id == approver) {
            return refused("ALREADY_DECIDED", "you decided on this order already");
        }
        let requirements = requirements_of(&f);
        let before = progress(&requirements, &decisions);
        let here = actionable(&requirements, &before, &roles);
        if here.is_empty() {
            return refused(
                "NOT_YOUR_TIER",
                "none of your roles is asked for at this stage of the approval",
            );
        }
        let verdict = if approve { "approved" } else { "rejected" };
        let now = Utc::now();
        let mut recorded = decisions.clone();
        let rows: Vec<decision::ActiveModel> = here
            .iter()
            .map(|(r, t, role)| {
                let row = decision::Model {
                    id: Uuid::now_v7(),
                    tenant_id: tenant.0,
                    created_at: now,
                    updated_at: now,
                    flow_id: f.id,
                    order_id: order.id,
                    requirement: *r as i32,
                    tier: *t as i32,
                    approver_id: approver,
                    role: role.clone(),
                    decision: verdict.into(),
                    comment: comment.clone(),
                };
                recorded.push(row.clone());
                decision::ActiveModel {
                    id: Set(row.id),
                    tenant_id: Set(row.tenant_id),
                    created_at: Set(now),
                    updated_at: Set(now),
                    flow_id: Set(row.flow_id),
                    order_id: Set(row.order_id),
                    requirement: Set(row.requirement),
                    tier: Set(row.tier),
                    approver_id: Set(row.approver_id),
                    role: Set(row.role),
                    decision: Set(row.decision),
                    comment: Set(row.comment),
                }
            })
            .collect();
        let after_decision = progress(&requirements, &recorded);
        let met = approve && after_decision.iter().all(|p| p.open_tier.is_none());
        // Tiers this approval opened: their approvers are told (by the notifications consumer).
        let opened: Vec<vectis_strategies::approval::Requirement> = requirements
            .iter()
            .zip(before.iter().zip(&after_decision))
            .filter_map(|(r, (b, a))| {
                let t = a.open_tier?;
                (approve && b.open_tier != Some(t)).then(|| {
                    vectis_strategies::approval::Requirement {
                        rule_id: r.rule_id,
                        reason: r.reason.clone(),
                        tiers: r.tiers[t..].to_vec(),
                    }
                })
            })
            .collect();
        let next = match (approve, met) {
            (false, _) => flow_state::REJECTED,
            (true, true) => flow_state::APPROVED,
            (true, false) => flow_state::PENDING,
        };
        self.approvals.record_in(&uow, &f, rows, next).await?;
        let decided = json!({ "orderId": order.id, "code": order.code, "approverId": approver,
            "decision": verdict, "comment": comment,
            "steps": here.iter().map(|(r, t, role)| json!({ "requirement": r, "tier": t + 1, "role": role })).collect::<Vec<_>>(),
            "flowState": next });
        let order = uow
            .change::<order::Entity>(
                order.id,
                Vec::new(),
                "vectis.order.approval_decided",
                |_| decided,
            )
            .await?;
        let order = if opened.is_empty() {
            order
        } else {
            let reqs = serde_json::to_value(&opened).map_err(anyhow::Error::from)?;
            uow.change::<order::Entity>(
                order.id,
                Vec::new(),
                "vectis.order.approval_tier_opened",
                |o| {
                    json!({ "orderId": o.id, "code": o.code, "companyId": o.company_id,
                    "locationId": o.location_id, "customerId": o.customer_id, "total": o.total,
                    "currency": o.currency, "requirements": reqs })
                },
            )
            .await?
        };
        let actor = actor_of(caller);
        let mut refunds = Vec::new();
        let after = if !approve {
            let reason = format!("rejected: {}", comment.as_deref().unwrap_or_default());
            let (cancelled, given) = match self
                .cancel_in(&mut uow, caller, &order, Some(&reason))
                .await?
            {
                Ok(done) => done,
                Err(f) => return refused("NOT_PENDING", f.message),
            };
            refunds = given.refunds;
            cancelled
        } else if met {
            let payments = self.payments_in(uow.tx(), tenant, vec![order.id]).await?;
            let paid = payments
                .iter()
                .filter(|p| {
                    p.state == payment_state::AUTHORIZED || p.state == payment_state::SETTLED
                })
                .map(|p| p.amount)
                .sum();
            let placed = match self
                .transition(
                    &mut uow,
                    &order,
                    paid,
                    state::PLACED,
                    &actor,
                    Some("approved"),
                )
                .await?
            {
                Ok(o) => o,
                Err(f) => return refused("NOT_PENDING", f.message),
            };
            match payments
                .iter()
                .find(|p| p.state == payment_state::AUTHORIZED)
            {
                Some(p) => match self
                    .authorized(&mut uow, placed.clone(), &actor, p.id)
                    .await?
                {
                    Ok(o) => o,
                    Err(_) => placed,
                },
                None => placed,
            }
        } else {
            order
        };
        uow.commit().await?;
        self.finish_refunds(tenant, Some(caller), refunds).await?;
        Ok(DecisionOutcome::Decided(Box::new(after)))
    }

    /// Orders waiting for the caller's approval: held orders of their company and its
    /// divisions (at their locations) whose open tier asks for one of their roles, that they
    /// did not place and have not decided on; oldest first, at most `first` (≤ 100).
    pub async fn awaiting(&self, caller: &Caller, first: u64) -> AppResult<Vec<order::Model>> {
        if caller.principal == Principal::Storefront {
            return Err(AppError::Unauthenticated("log in to approve orders".into()));
        }
        let first = first.clamp(1, 100) as usize;
        let tenant = caller.tenant;
        let uow = self.core.begin_for(caller).await?;
        let Some(me) = self.approver_in(uow.tx(), caller).await? else {
            return Err(AppError::Forbidden(crate::auth::permission_name(
                CompanyPermission::ApproveOrders,
            )));
        };
        let flows = self
            .approvals
            .pending_in(uow.tx(), tenant, me.companies.clone(), 1_000)
            .await?;
        let all = self
            .approvals
            .decisions_of_in(uow.tx(), tenant, flows.iter().map(|f| f.order_id).collect())
            .await?;
        let mine: Vec<Uuid> = flows
            .iter()
            .filter(|f| me.covers(f.company_id, f.location_id) && f.buyer_id != Some(me.id))
            .filter(|f| {
                let decisions: Vec<decision::Model> =
                    all.iter().filter(|d| d.flow_id == f.id).cloned().collect();
                let requirements = requirements_of(f);
                !decisions.iter().any(|d| d.approver_id == me.id)
                    && !actionable(
                        &requirements,
                        &progress(&requirements, &decisions),
                        &me.roles,
                    )
                    .is_empty()
            })
            .take(first)
            .map(|f| f.order_id)
            .collect();
        let mut orders = order::Entity::find()
            .filter(order::Column::TenantId.eq(tenant.0))
            .filter(crate::db::id_in(
                self.core.db.backend(),
                (order::Entity, order::Column::Id),
                mine.clone(),
            ))
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        orders.sort_by_key(|o| mine.iter().position(|m| *m == o.id));
        Ok(orders)
    }
}
