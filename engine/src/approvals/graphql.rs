//! Approvals GraphQL: rules of a company, an order's approval, deciding, and the approver's
//! queue.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};
use vectis_strategies::approval::{Requirement, RoleCount, RuleCondition};
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{decision, flow, rule};
use super::service::{RuleInput, progress, requirements_of};
use crate::error::AppError;
use crate::graphql::context::{caller, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::{MoneyObject, PriceInput};
use crate::orders::approve::DecisionOutcome;
use crate::orders::graphql::OrderObject;
use crate::orders::loader::{DecisionsOf, FlowsOf, load};

/// A role that approves, and how many of its holders must.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "ApprovalRoleInput")]
pub struct ApprovalRole {
    /// A company role code (`approver`, `admin`, or a custom role such as `finance`).
    pub role: String,
    /// How many different approvers with it (1-10).
    #[graphql(default = 1)]
    pub count: u32,
}

/// One tier of a rule: every role listed must approve (tier 2 opens after tier 1).
#[derive(SimpleObject)]
pub struct ApprovalTier {
    /// The roles.
    pub roles: Vec<ApprovalRole>,
}

/// One tier of a rule, as written.
#[derive(InputObject)]
pub struct ApprovalTierInput {
    /// The roles (1-5).
    pub roles: Vec<ApprovalRole>,
}

/// When a rule applies: every condition given must hold (none: every order).
#[derive(InputObject, Default)]
pub struct ApprovalConditionInput {
    /// The order's total is above this.
    pub total_above: Option<PriceInput>,
    /// Any line is of a product in one of these collections.
    #[graphql(default)]
    pub collection_ids: Vec<ID>,
    /// The order is for one of these company locations.
    #[graphql(default)]
    pub location_ids: Vec<ID>,
    /// The buyer holds one of these company roles.
    #[graphql(default)]
    pub buyer_roles: Vec<String>,
    /// The order is paid with one of these payment methods.
    #[graphql(default)]
    pub payment_methods: Vec<String>,
}

/// A rule, as written.
#[derive(InputObject)]
pub struct ApprovalRuleInput {
    /// The rule to change; omit to create one.
    pub id: Option<ID>,
    /// Name (1-200 characters), shown to buyers and approvers.
    pub name: String,
    /// Whether it applies.
    #[graphql(default = true)]
    pub active: bool,
    /// When it applies.
    #[graphql(default)]
    pub condition: ApprovalConditionInput,
    /// Who approves, tier by tier (1-5 tiers).
    pub tiers: Vec<ApprovalTierInput>,
}

/// When a rule applies.
#[derive(SimpleObject)]
pub struct ApprovalCondition {
    /// The order's total is above this.
    pub total_above: Option<MoneyObject>,
    /// Any line is in one of these collections.
    pub collection_ids: Vec<ID>,
    /// The order is for one of these locations.
    pub location_ids: Vec<ID>,
    /// The buyer holds one of these roles.
    pub buyer_roles: Vec<String>,
    /// The order is paid with one of these methods.
    pub payment_methods: Vec<String>,
}

fn tiers_of(tiers: &[Vec<RoleCount>]) -> Vec<ApprovalTier> {
    tiers
        .iter()
        .map(|t| ApprovalTier {
            roles: t
                .iter()
                .map(|rc| ApprovalRole {
                    role: rc.role.clone(),
                    count: rc.count,
                })
                .collect(),
        })
        .collect()
}

/// An approval rule of a company (its divisions inherit it).
pub struct ApprovalRuleObject(pub rule::Model);

#[Object(name = "ApprovalRule")]
impl ApprovalRuleObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The company.
    async fn company_id(&self) -> ID {
        id(self.0.company_id)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Whether it applies.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// When it applies.
    async fn condition(&self) -> Result<ApprovalCondition> {
        let c: RuleCondition =
            serde_json::from_str(&self.0.condition).map_err(|e| AppError::Internal(e.into()))?;
        Ok(ApprovalCondition {
            total_above: c.total_above.map(Into::into),
            collection_ids: c.collection_ids.into_iter().map(id).collect(),
            location_ids: c.location_ids.into_iter().map(id).collect(),
            buyer_roles: c.buyer_roles,
            payment_methods: c.payment_methods,
        })
    }
    /// Who approves, tier by tier.
    async fn tiers(&self) -> Result<Vec<ApprovalTier>> {
        let t: Vec<Vec<RoleCount>> =
            serde_json::from_str(&self.0.tiers).map_err(|e| AppError::Internal(e.into()))?;
        Ok(tiers_of(&t))
    }
    /// Version.
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// Approvals of one role in a tier.
#[derive(SimpleObject)]
pub struct ApprovalRoleProgress {
    /// The role.
    pub role: String,
    /// Approvers needed.
    pub count: u32,
    /// Approvals so far.
    pub approvals: u32,
}

/// A tier of a requirement and its approvals.
#[derive(SimpleObject)]
pub struct ApprovalTierProgress {
    /// 1, 2, …
    pub tier: i32,
    /// Per role.
    pub roles: Vec<ApprovalRoleProgress>,
    /// Every role has its approvals.
    pub satisfied: bool,
}

/// Why an order needs approval, and how far it got.
#[derive(SimpleObject)]
pub struct ApprovalRequirement {
    /// The rule (none for a spending limit).
    pub rule_id: Option<ID>,
    /// Why.
    pub reason: String,
    /// The tier waiting for approvals (1, 2, …); null once met.
    pub open_tier: Option<i32>,
    /// The tiers.
    pub tiers: Vec<ApprovalTierProgress>,
}

/// A decision on an order.
#[derive(SimpleObject)]
pub struct ApprovalDecision {
    /// Who decided (a customer id).
    pub approver_id: ID,
    /// The role they decided in.
    pub role: String,
    /// The tier (1, 2, …).
    pub tier: i32,
    /// `approved` or `rejected`.
    pub decision: String,
    /// Their comment.
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The approval of an order that needed one.
#[derive(SimpleObject)]
pub struct OrderApproval {
    /// `Pending`, `Approved` or `Rejected`.
    pub state: String,
    /// What is asked for, and how far each got.
    pub requirements: Vec<ApprovalRequirement>,
    /// Every decision, oldest first.
    pub decisions: Vec<ApprovalDecision>,
}

fn approval_of(f: &flow::Model, decisions: &[decision::Model]) -> OrderApproval {
    let requirements: Vec<Requirement> = requirements_of(f);
    let p = progress(&requirements, decisions);
    OrderApproval {
        state: f.state.clone(),
        requirements: requirements
            .iter()
            .zip(&p)
            .map(|(r, p)| ApprovalRequirement {
                rule_id: r.rule_id.map(id),
                reason: r.reason.clone(),
                open_tier: p.open_tier.map(|t| t as i32 + 1),
                tiers: r
                    .tiers
                    .iter()
                    .enumerate()
                    .map(|(t, tier)| {
                        let roles: Vec<ApprovalRoleProgress> = tier
                            .iter()
                            .zip(&p.approvals[t])
                            .map(|(rc, have)| ApprovalRoleProgress {
                                role: rc.role.clone(),
                                count: rc.count,
                                approvals: *have,
                            })
                            .collect();
                        ApprovalTierProgress {
                            tier: t as i32 + 1,
                            satisfied: roles.iter().all(|r| r.approvals >= r.count),
                            roles,
                        }
                    })
                    .collect(),
            })
            .collect(),
        decisions: decisions
            .iter()
            .map(|d| ApprovalDecision {
                approver_id: id(d.approver_id),
                role: d.role.clone(),
                tier: d.tier + 1,
                decision: d.decision.clone(),
                comment: d.comment.clone(),
                at: d.created_at,
            })
            .collect(),
    }
}

/// `Order.approval`.
pub async fn order_approval(ctx: &Context<'_>, order: uuid::Uuid) -> Result<Option<OrderApproval>> {
    let Some(f) = load(ctx, FlowsOf(order)).await?.into_iter().next() else {
        return Ok(None);
    };
    let decisions = load(ctx, DecisionsOf(order)).await?;
    Ok(Some(approval_of(&f, &decisions)))
}

/// A decision was refused; nothing changed.
#[derive(SimpleObject)]
pub struct ApprovalError {
    /// `SELF_APPROVAL`, `ALREADY_DECIDED`, `NOT_YOUR_TIER`, `NOT_PENDING`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// The result of `approveOrder` and `rejectOrder`.
#[derive(Union)]
pub enum ApprovalResult {
    /// The order after the decision.
    Order(OrderObject),
    /// Refused.
    Refused(ApprovalError),
}

impl From<DecisionOutcome> for ApprovalResult {
    fn from(o: DecisionOutcome) -> Self {
        match o {
            DecisionOutcome::Decided(order) => ApprovalResult::Order(OrderObject(order)),
            DecisionOutcome::Refused { code, message } => ApprovalResult::Refused(ApprovalError {
                code: code.into(),
                message,
            }),
        }
    }
}

fn ids(field: &str, values: &[ID]) -> Result<Vec<uuid::Uuid>, AppError> {
    values.iter().map(|v| parse_id(field, v)).collect()
}

/// Approvals queries.
#[derive(Default)]
pub struct ApprovalsQuery;

#[Object]
impl ApprovalsQuery {
    /// A company's own approval rules (its divisions inherit them), for those who see it.
    async fn approval_rules(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
    ) -> Result<Vec<ApprovalRuleObject>> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        Ok(services(ctx)
            .approvals
            .rules(caller, company)
            .await?
            .into_iter()
            .map(ApprovalRuleObject)
            .collect())
    }

    /// Orders waiting for the caller's approval (`APPROVE_ORDERS`): held orders of their
    /// company and its divisions whose open tier asks for one of their roles, not their own and
    /// not decided yet; oldest first.
    async fn approvals_awaiting_me(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "At most 100.")] first: i32,
    ) -> Result<Vec<OrderObject>> {
        let caller = caller(ctx)?;
        Ok(services(ctx)
            .orders
            .awaiting(caller, first.max(1) as u64)
            .await?
            .into_iter()
            .map(OrderObject::from)
            .collect())
    }
}

/// Approvals mutations.
#[derive(Default)]
pub struct ApprovalsMutation;

#[Object]
impl ApprovalsMutation {
    /// Creates or changes an approval rule of a company (company users with
    /// `MANAGE_APPROVALS` in it or a parent, staff with `COMPANY_WRITE`). Orders placed
    /// afterwards follow it; the roles must exist in the company.
    async fn save_approval_rule(
        &self,
        ctx: &Context<'_>,
        company_id: ID,
        input: ApprovalRuleInput,
    ) -> Result<ApprovalRuleObject> {
        let caller = caller(ctx)?;
        let company = parse_id("companyId", &company_id)?;
        let c = input.condition;
        let total_above = c
            .total_above
            .map(|p| -> Result<Money, AppError> {
                let currency: CurrencyCode =
                    p.currency
                        .parse()
                        .map_err(|e: vectis_strategies::MoneyError| {
                            AppError::validation("condition.totalAbove", e.to_string())
                        })?;
                Ok(Money::new(p.amount.0, currency))
            })
            .transpose()?;
        let rule = RuleInput {
            id: input.id.as_ref().map(|i| parse_id("id", i)).transpose()?,
            name: input.name,
            active: input.active,
            condition: RuleCondition {
                total_above,
                collection_ids: ids("condition.collectionIds", &c.collection_ids)?,
                location_ids: ids("condition.locationIds", &c.location_ids)?,
                buyer_roles: c.buyer_roles,
                payment_methods: c.payment_methods,
            },
            tiers: input
                .tiers
                .into_iter()
                .map(|t| {
                    t.roles
                        .into_iter()
                        .map(|r| RoleCount {
                            role: r.role.trim().to_owned(),
                            count: r.count,
                        })
                        .collect()
                })
                .collect(),
        };
        Ok(ApprovalRuleObject(
            services(ctx)
                .approvals
                .save_rule(caller, company, rule)
                .await?,
        ))
    }

    /// Deletes an approval rule (as `saveApprovalRule`); orders already waiting keep what
    /// they were asked for.
    async fn delete_approval_rule(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = caller(ctx)?;
        let rule = parse_id("id", &id)?;
        Ok(services(ctx).approvals.delete_rule(caller, rule).await?)
    }

    /// Approves a held order (a company user with `APPROVE_ORDERS` in its company or a
    /// parent, at its location, holding a role its open tier asks for). The order is placed
    /// once every requirement is met. Nobody approves their own order; each approver decides
    /// once.
    async fn approve_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        comment: Option<String>,
    ) -> Result<ApprovalResult> {
        let caller = caller(ctx)?;
        let order = parse_id("orderId", &order_id)?;
        Ok(services(ctx)
            .orders
            .decide(caller, order, true, comment)
            .await?
            .into())
    }

    /// Rejects a held order with a reason (as `approveOrder`): it is cancelled, its stock and
    /// credit released; the buyer sees why and can `reorder` it into their cart, edit and
    /// place it again.
    async fn reject_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        comment: String,
    ) -> Result<ApprovalResult> {
        let caller = caller(ctx)?;
        let order = parse_id("orderId", &order_id)?;
        Ok(services(ctx)
            .orders
            .decide(caller, order, false, Some(comment))
            .await?
            .into())
    }
}
