//! Approval rules: which orders of a company need whose approval before they are placed.
//!
//! **What it decides.** [`crate::ApprovalStrategy::required`] gets the order as it is about to
//! be placed, what the engine knows of the buyer (company roles, location, spending limits and
//! this month's spend including this order) and the rules of the buyer's company and its
//! parents, and returns the approvals needed: one [`Requirement`] per rule that applies (and
//! one for a spending limit the order breaks), each a list of tiers. Tier 2 of a requirement is
//! open only once tier 1 is satisfied; a tier is satisfied when, for each of its
//! [`RoleCount`]s, that many different approvers holding the role approved. Every requirement
//! must be satisfied; one rejection rejects the order.
//!
//! **When it is called.** Once per placement, inside the placing transaction, with everything
//! already loaded (no I/O; a few microseconds for 10,000 lines and a dozen rules).
//!
//! **Shipped.** [`RuleApprovals`] (`rules`, the default) implements the rules below;
//! [`crate::ApproveAll`] (`approve-all`) needs nothing.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::order_process::{ApprovalStrategy, OrderSnapshot};

/// Approvers holding `role`, `count` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCount {
    /// A company role code (`approver`, `admin`, or a custom role such as `finance`).
    pub role: String,
    /// How many different approvers with the role (at least 1).
    pub count: u32,
}

/// When a rule applies: every condition given must hold (none given: always).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    /// The order's total is above this (in its currency; other currencies never match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_above: Option<Money>,
    /// Any line is of a product in one of these collections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection_ids: Vec<Uuid>,
    /// The order is placed for one of these company locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_ids: Vec<Uuid>,
    /// The buyer holds one of these company roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buyer_roles: Vec<String>,
    /// The order is paid with one of these payment methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_methods: Vec<String>,
}

/// A company's approval rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Its id.
    pub id: Uuid,
    /// Its name, shown to buyers and approvers.
    pub name: String,
    /// The company it belongs to (the buyer's or a parent).
    pub company_id: Uuid,
    /// When it applies.
    pub condition: RuleCondition,
    /// Who must approve, tier by tier.
    pub tiers: Vec<Vec<RoleCount>>,
}

/// A buyer's spending limits and this month's spend (with the order being placed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spending {
    /// Per order.
    pub per_order: Option<Money>,
    /// Per calendar month.
    pub monthly: Option<Money>,
    /// Spent this month, including this order.
    pub month_spend: Money,
}

/// What the strategy decides on.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalInput<'a> {
    /// The order as it is about to be placed.
    pub order: &'a OrderSnapshot,
    /// The company location the order is for.
    pub location_id: Option<Uuid>,
    /// The buyer's company roles.
    pub buyer_roles: &'a [String],
    /// The collections of the order's products.
    pub collection_ids: &'a HashSet<Uuid>,
    /// The buyer's spending limits, when they have any.
    pub spending: Option<Spending>,
    /// The rules of the buyer's company and its parents (active ones).
    pub rules: &'a [ApprovalRule],
}

/// Approvals an order needs for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// The rule, when a rule asked for it.
    pub rule_id: Option<Uuid>,
    /// Why, for buyers and approvers (the rule's name, or the limit exceeded).
    pub reason: String,
    /// Who must approve, tier by tier.
    pub tiers: Vec<Vec<RoleCount>>,
}

/// The default: the company's rules, and the buyer's spending limits.
///
/// An order above the buyer's per-order limit, or taking the month's spend above the monthly
/// limit, needs one approver with the `approver` or `admin` role (`spending_tiers`) even when
/// no rule matches.
#[derive(Debug, Clone)]
pub struct RuleApprovals {
    /// Who approves an order above a spending limit.
    pub spending_tiers: Vec<Vec<RoleCount>>,
}

impl Default for RuleApprovals {
    fn default() -> Self {
        RuleApprovals {
            spending_tiers: vec![vec![RoleCount {
                role: "approver".into(),
                count: 1,
            }]],
        }
    }
}

/// Whether `condition` holds for the order.
pub fn matches(condition: &RuleCondition, input: &ApprovalInput<'_>) -> bool {
    let order = input.order;
    condition.total_above.is_none_or(|above| {
        above.currency == order.total.currency && order.total.amount > above.amount
    }) && (condition.collection_ids.is_empty()
        || condition
            .collection_ids
            .iter()
            .any(|c| input.collection_ids.contains(c)))
        && (condition.location_ids.is_empty()
            || input
                .location_id
                .is_some_and(|l| condition.location_ids.contains(&l)))
        && (condition.buyer_roles.is_empty()
            || condition
                .buyer_roles
                .iter()
                .any(|r| input.buyer_roles.contains(r)))
        && (condition.payment_methods.is_empty()
            || order
                .payment_method
                .as_ref()
                .is_some_and(|m| condition.payment_methods.contains(m)))
}

impl ApprovalStrategy for RuleApprovals {
    fn required(&self, input: &ApprovalInput<'_>) -> Vec<Requirement> {
        let mut out: Vec<Requirement> = input
            .rules
            .iter()
            .filter(|r| !r.tiers.is_empty() && matches(&r.condition, input))
            .map(|r| Requirement {
                rule_id: Some(r.id),
                reason: r.name.clone(),
                tiers: r.tiers.clone(),
            })
            .collect();
        if let Some(s) = input.spending {
            let total = input.order.total;
            let over_order = s
                .per_order
                .filter(|l| l.currency == total.currency && total.amount > l.amount);
            let over_month = s.monthly.filter(|l| {
                l.currency == s.month_spend.currency && s.month_spend.amount > l.amount
            });
            let reason = match (over_order, over_month) {
                (Some(l), _) => Some(format!("above the buyer's order limit of {l}")),
                (None, Some(l)) => Some(format!("above the buyer's monthly limit of {l}")),
                (None, None) => None,
            };
            if let Some(reason) = reason {
                out.push(Requirement {
                    rule_id: None,
                    reason,
                    tiers: self.spending_tiers.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::CurrencyCode;

    fn eur(a: i64) -> Money {
        Money::new(a, CurrencyCode::EUR)
    }

    fn order(total: i64) -> OrderSnapshot {
        OrderSnapshot {
            id: Uuid::nil(),
            code: None,
            state: "ArrangingPayment".into(),
            customer_id: None,
            company_id: None,
            line_count: 1,
            total: eur(total),
            payment_method: Some("invoice".into()),
            paid: eur(0),
            shipped_quantity: 0,
            total_quantity: 1,
            approval: None,
        }
    }

    fn rule(name: &str, condition: RuleCondition) -> ApprovalRule {
        ApprovalRule {
            id: Uuid::now_v7(),
            name: name.into(),
            company_id: Uuid::nil(),
            condition,
            tiers: vec![vec![RoleCount {
                role: "approver".into(),
                count: 1,
            }]],
        }
    }

    #[test]
    fn rules_apply_when_every_condition_holds_and_limits_add_their_own() {
        let collection = Uuid::now_v7();
        let rules = vec![
            rule(
                "above 1,000",
                RuleCondition {
                    total_above: Some(eur(1_000)),
                    ..Default::default()
                },
            ),
            rule(
                "safety gear by buyers",
                RuleCondition {
                    collection_ids: vec![collection],
                    buyer_roles: vec!["buyer".into()],
                    ..Default::default()
                },
            ),
        ];
        let roles = vec!["buyer".to_owned()];
        let none = HashSet::new();
        let with = HashSet::from([collection]);
        let o = order(1_000);
        let input = |collections, spending| ApprovalInput {
            order: &o,
            location_id: None,
            buyer_roles: &roles,
            collection_ids: collections,
            spending,
            rules: &rules,
        };
        let s = RuleApprovals::default();
        assert!(s.required(&input(&none, None)).is_empty(), "at, not above");
        let reasons: Vec<String> = s
            .required(&input(&with, None))
            .into_iter()
            .map(|r| r.reason)
            .collect();
        assert_eq!(reasons, vec!["safety gear by buyers"]);
        let limits = Spending {
            per_order: Some(eur(500)),
            monthly: None,
            month_spend: eur(1_000),
        };
        let r = s.required(&input(&none, Some(limits)));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].rule_id, None);
        let month = Spending {
            per_order: None,
            monthly: Some(eur(5_000)),
            month_spend: eur(5_001),
        };
        assert_eq!(s.required(&input(&none, Some(month))).len(), 1);
        let usd = Spending {
            per_order: Some(Money::new(1, CurrencyCode::USD)),
            monthly: None,
            month_spend: eur(1_000),
        };
        assert!(
            s.required(&input(&none, Some(usd))).is_empty(),
            "another currency's limit does not apply"
        );
    }
}
