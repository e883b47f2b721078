//! Credit review as a Vectis order process contribution.
//!
//! Adds the state `CreditReview`: an order whose total reaches the threshold of its currency
//! does not go to `Placed` at checkout but waits in `CreditReview` (the guard on
//! `ArrangingPayment → Placed` holds it there, with the code `CREDIT_REVIEW_REQUIRED`). It is
//! already frozen, numbered and its payment authorised (an invoice's amount reserved against
//! the company's credit limit). Staff with `ORDER_WRITE` release it with
//! `transitionOrder(to: "Placed")`, after which it continues as any order, or cancel it.
//!
//! Enable it with `[strategies] order_process = ["default", "credit-review"]` in a binary that
//! links this crate (the `vectis` binary does), and set thresholds in minor units per currency:
//!
//! ```toml
//! [strategies.options.order_process.credit-review]
//! thresholds = { EUR = 2500000, USD = 2700000 }   # 25,000.00 EUR, 27,000.00 USD
//! payment_methods = ["invoice"]                     # only orders on account (empty: all)
//! ```
//!
//! Orders in a currency without a threshold are not held.

use std::collections::BTreeMap;
use std::sync::Arc;

use vectis_strategies::CurrencyCode;
use vectis_strategies::order_process::{
    GuardDef, OrderProcess, ProcessDefinition, StateDef, TransitionContext, Veto, state,
};
use vectis_strategies::registry::{Build, Registration, STRATEGIES};

/// The state orders wait in.
pub const CREDIT_REVIEW: &str = "CreditReview";
/// The code of the hold.
pub const CREDIT_REVIEW_REQUIRED: &str = "CREDIT_REVIEW_REQUIRED";

/// The registration: `strategies.order_process = ["default", "credit-review"]`.
#[linkme::distributed_slice(STRATEGIES)]
static CREDIT_REVIEW_PROCESS: Registration = Registration {
    name: "credit-review",
    engine: "^0.1",
    build: Build::OrderProcess(|options, _approval| {
        Ok(Arc::new(CreditReview::new(options.parse()?)?))
    }),
};

/// The options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Order totals (minor units) from which orders are reviewed, by ISO 4217 currency.
    pub thresholds: BTreeMap<String, i64>,
    /// Payment methods whose orders are reviewed; empty: every method.
    pub payment_methods: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thresholds: BTreeMap::from([("EUR".into(), 1_000_000)]),
            payment_methods: Vec::new(),
        }
    }
}

/// The contribution.
#[derive(Debug, Clone)]
pub struct CreditReview {
    thresholds: BTreeMap<CurrencyCode, i64>,
    payment_methods: Vec<String>,
}

impl CreditReview {
    /// The process with `settings`; an error names the setting at fault.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let mut thresholds = BTreeMap::new();
        for (currency, amount) in settings.thresholds {
            let code: CurrencyCode = currency
                .parse()
                .map_err(|_| format!("thresholds.{currency}: not an ISO 4217 currency code"))?;
            if amount <= 0 {
                return Err(format!("thresholds.{currency}: must be positive"));
            }
            thresholds.insert(code, amount);
        }
        Ok(CreditReview {
            thresholds,
            payment_methods: settings.payment_methods,
        })
    }

    /// Whether an order of `ctx` is held.
    fn holds(&self, ctx: &TransitionContext<'_>) -> Option<i64> {
        let order = ctx.order;
        let method_applies = self.payment_methods.is_empty()
            || order
                .payment_method
                .as_ref()
                .is_some_and(|m| self.payment_methods.contains(m));
        let threshold = *self.thresholds.get(&order.total.currency)?;
        (method_applies && order.total.amount >= threshold).then_some(threshold)
    }
}

impl OrderProcess for CreditReview {
    fn name(&self) -> &str {
        "credit-review"
    }

    fn definition(&self) -> ProcessDefinition {
        let t = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let this = self.clone();
        ProcessDefinition {
            states: vec![StateDef::new(
                CREDIT_REVIEW,
                "Waiting for credit control to release it (large orders).",
            )],
            transitions: vec![
                t(state::ARRANGING_PAYMENT, CREDIT_REVIEW),
                t(CREDIT_REVIEW, state::PLACED),
                t(CREDIT_REVIEW, state::CANCELLED),
            ],
            guards: vec![GuardDef {
                from: Some(state::ARRANGING_PAYMENT.into()),
                to: state::PLACED.into(),
                guard: Arc::new(move |ctx: &TransitionContext<'_>| {
                    match this.holds(ctx) {
                    Some(threshold) => Err(Veto::new(
                        CREDIT_REVIEW_REQUIRED,
                        format!(
                            "orders of {} {} and more are reviewed by credit control before they are placed",
                            vectis_strategies::Money::new(threshold, ctx.order.total.currency)
                                .to_decimal_string(),
                            ctx.order.total.currency
                        ),
                    )
                    .hold_in(CREDIT_REVIEW)),
                    None => Ok(()),
                }
                }),
            }],
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use vectis_strategies::order_process::{
        Actor, OrderSnapshot, ProcessGraph, TransitionRejection,
    };
    use vectis_strategies::registry::{Selection, resolve};
    use vectis_strategies::{DefaultOrderProcess, Money};

    use super::*;

    fn order(total: i64, method: &str) -> OrderSnapshot {
        OrderSnapshot {
            id: Uuid::nil(),
            code: Some("VX-2026-000001".into()),
            state: state::ARRANGING_PAYMENT.into(),
            customer_id: None,
            company_id: None,
            line_count: 3,
            total: Money::new(total, CurrencyCode::EUR),
            payment_method: Some(method.into()),
            paid: Money::new(0, CurrencyCode::EUR),
            shipped_quantity: 0,
            total_quantity: 3,
            approval: None,
        }
    }

    fn graph(settings: Settings) -> ProcessGraph {
        ProcessGraph::merge(&[
            Arc::new(DefaultOrderProcess::default()),
            Arc::new(CreditReview::new(settings).unwrap()),
        ])
        .unwrap()
    }

    fn place(g: &ProcessGraph, o: &OrderSnapshot) -> Result<(), TransitionRejection> {
        g.check(&TransitionContext {
            order: o,
            from: state::ARRANGING_PAYMENT,
            to: state::PLACED,
            actor: &Actor::System,
            reason: None,
        })
    }

    #[test]
    fn orders_from_the_threshold_are_held_in_credit_review() {
        let g = graph(Settings::default());
        assert!(place(&g, &order(999_999, "invoice")).is_ok());
        let Err(TransitionRejection::Vetoed { process, veto }) =
            place(&g, &order(1_000_000, "invoice"))
        else {
            panic!("held")
        };
        assert_eq!(process, "credit-review");
        assert_eq!(veto.code, CREDIT_REVIEW_REQUIRED);
        assert_eq!(veto.hold.as_deref(), Some(CREDIT_REVIEW));
        assert!(veto.message.contains("10000.00 EUR"), "{}", veto.message);
        assert!(g.allows(state::ARRANGING_PAYMENT, CREDIT_REVIEW));
        assert!(g.allows(CREDIT_REVIEW, state::PLACED));
        assert!(g.allows(CREDIT_REVIEW, state::CANCELLED));
        assert!(!g.allows(CREDIT_REVIEW, state::SHIPPED));
    }

    #[test]
    fn only_the_configured_methods_and_currencies_are_held() {
        let g = graph(Settings {
            thresholds: BTreeMap::from([("USD".into(), 100)]),
            payment_methods: vec!["invoice".into()],
        });
        // EUR has no threshold here.
        assert!(place(&g, &order(10_000_000, "invoice")).is_ok());
        let mut usd = order(100, "test-card");
        usd.total.currency = CurrencyCode::USD;
        assert!(place(&g, &usd).is_ok(), "cards are not reviewed");
        usd.payment_method = Some("invoice".into());
        assert!(place(&g, &usd).is_err());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let bad = CreditReview::new(Settings {
            thresholds: BTreeMap::from([("EURO".into(), 100)]),
            payment_methods: Vec::new(),
        });
        assert_eq!(
            bad.err().unwrap(),
            "thresholds.EURO: not an ISO 4217 currency code"
        );
        let negative = CreditReview::new(Settings {
            thresholds: BTreeMap::from([("EUR".into(), 0)]),
            payment_methods: Vec::new(),
        });
        assert_eq!(negative.err().unwrap(), "thresholds.EUR: must be positive");
    }

    #[test]
    fn enabled_by_name_after_the_default_process() {
        let selection = Selection {
            order_process: vec!["default".into(), "credit-review".into()],
            ..Selection::default()
        };
        let strategies = resolve(&selection).unwrap();
        let names: Vec<_> = strategies.order_process.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["default", "credit-review"]);
        // Alone it has no initial state: the boot names the problem.
        let alone = Selection {
            order_process: vec!["credit-review".into()],
            ..Selection::default()
        };
        let err = resolve(&alone).err().unwrap().to_string();
        assert!(err.contains("credit-review"), "{err}");
    }
}
