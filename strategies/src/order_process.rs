//! The order process: the states an order moves through, as data.
//!
//! **What it decides.** Which states exist, which transitions between them are allowed, which
//! guards may veto a transition (with a reason the caller sees as a typed `TransitionError`),
//! and which hooks run after one. The engine has no order-status enum: an order's state is a
//! string checked against the merged graph.
//!
//! **How processes compose.** The engine merges every configured [`OrderProcess`] in order:
//! each adds states, transitions and guards, and may remove transitions of the processes before
//! it (to reroute the flow through a state of its own). The merged graph is validated once, at
//! boot ([`ProcessGraph::merge`]): the initial state exists, every transition joins known
//! states, every state is reachable from the initial one, and every non-terminal state has a
//! way out. A bad graph fails the boot with an error naming the process and the state.
//!
//! **When it is called.** Guards run inside the transaction that changes the order, after the
//! order is locked, with a snapshot of it; keep them pure and fast (no I/O: everything a guard
//! needs is in the snapshot). Hooks run in the same transaction after the state changed and
//! return events to record.
//!
//! **Default.** [`DefaultOrderProcess`], the B2B process:
//!
//! ```text
//! Cart → ArrangingPayment → (PendingApproval →) Placed → PaymentAuthorized → PaymentSettled
//!                                                 ↘                 ↘              ↓
//!                                                   PaymentSettled    PartiallyShipped → Shipped → Delivered
//! Cancelled from every state before anything shipped.
//! ```
//!
//! Options ([`DefaultProcessOptions`]): `approval` keeps the `PendingApproval` slot (on by
//! default; its guard asks the approval strategy), `ship_before_settlement` lets authorised
//! orders (invoices on account) ship before they are paid (on by default, B2B terms). Once an
//! order ships its state follows fulfilment; its payments keep their own states.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use crate::money::Money;

/// Who causes a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The engine itself (a payment callback, a background task).
    System,
    /// A staff user.
    Staff(Uuid),
    /// A customer, possibly with a sales rep acting for them.
    Customer {
        /// The customer.
        id: Uuid,
        /// The staff user acting on their behalf.
        acting_staff: Option<Uuid>,
    },
}

/// What guards and hooks see of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSnapshot {
    /// Order id.
    pub id: Uuid,
    /// Human-readable code, once placed.
    pub code: Option<String>,
    /// Current state.
    pub state: String,
    /// The buyer.
    pub customer_id: Option<Uuid>,
    /// The buyer's company.
    pub company_id: Option<Uuid>,
    /// Lines.
    pub line_count: i64,
    /// Grand total.
    pub total: Money,
    /// Chosen payment method.
    pub payment_method: Option<String>,
    /// Amount authorised or settled so far.
    pub paid: Money,
    /// Units shipped so far.
    pub shipped_quantity: i64,
    /// Units ordered.
    pub total_quantity: i64,
    /// At placement: why the order needs approval, when [`ApprovalStrategy::required`] found
    /// approvals it needs (the engine fills it in before the order process is asked).
    pub approval: Option<String>,
}

/// A transition being attempted.
#[derive(Debug, Clone, Copy)]
pub struct TransitionContext<'a> {
    /// The order before the transition.
    pub order: &'a OrderSnapshot,
    /// From.
    pub from: &'a str,
    /// To.
    pub to: &'a str,
    /// Who asks.
    pub actor: &'a Actor,
    /// Why, if given.
    pub reason: Option<&'a str>,
}

/// A guard's refusal: a code and a message for the caller. A refusal may instead *hold* the
/// order: the engine then moves it to the named state (when the graph allows that step from
/// the current state) and it waits there, e.g. for an approver or for credit control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto {
    /// Machine-readable, e.g. `CREDIT_REVIEW_REQUIRED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The state to hold the order in instead of refusing.
    pub hold: Option<String>,
}

impl Veto {
    /// A veto.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Veto {
            code: code.into(),
            message: message.into(),
            hold: None,
        }
    }

    /// The veto, holding the order in `state` instead of refusing.
    pub fn hold_in(mut self, state: impl Into<String>) -> Self {
        self.hold = Some(state.into());
        self
    }
}

/// Runs before a transition and may refuse it.
pub trait TransitionGuard: Send + Sync {
    /// `Err` vetoes the transition.
    fn check(&self, ctx: &TransitionContext<'_>) -> Result<(), Veto>;
}

impl<F> TransitionGuard for F
where
    F: Fn(&TransitionContext<'_>) -> Result<(), Veto> + Send + Sync,
{
    fn check(&self, ctx: &TransitionContext<'_>) -> Result<(), Veto> {
        self(ctx)
    }
}

/// An event a hook asks the engine to record (type and payload; the engine adds the order's
/// id, sequence and actor).
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    /// Type, e.g. `vectis.order.credit_review_requested`.
    pub event_type: &'static str,
    /// Payload.
    pub data: serde_json::Value,
}

/// Runs after a transition, in its transaction.
pub trait TransitionHook: Send + Sync {
    /// Events to record with the transition.
    fn after(&self, ctx: &TransitionContext<'_>) -> Vec<HookEvent>;
}

/// A state of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDef {
    /// Name, e.g. `Placed` (PascalCase by convention).
    pub name: String,
    /// An order in a terminal state moves no further.
    pub terminal: bool,
    /// What the state means.
    pub description: String,
}

impl StateDef {
    /// A non-terminal state.
    pub fn new(name: &str, description: &str) -> Self {
        StateDef {
            name: name.into(),
            terminal: false,
            description: description.into(),
        }
    }

    /// A terminal state.
    pub fn terminal(name: &str, description: &str) -> Self {
        StateDef {
            terminal: true,
            ..StateDef::new(name, description)
        }
    }
}

/// A guard on the transitions into `to` (from `from`, or from anywhere).
#[derive(Clone)]
pub struct GuardDef {
    /// The source state, or any.
    pub from: Option<String>,
    /// The target state.
    pub to: String,
    /// The guard.
    pub guard: Arc<dyn TransitionGuard>,
}

/// A hook on the transitions into `to`.
#[derive(Clone)]
pub struct HookDef {
    /// The source state, or any.
    pub from: Option<String>,
    /// The target state.
    pub to: String,
    /// The hook.
    pub hook: Arc<dyn TransitionHook>,
}

/// One process's contribution to the merged graph.
#[derive(Clone, Default)]
pub struct ProcessDefinition {
    /// The initial state (the first process sets it; later ones may not change it).
    pub initial: Option<String>,
    /// States this process adds.
    pub states: Vec<StateDef>,
    /// Transitions this process adds.
    pub transitions: Vec<(String, String)>,
    /// Transitions of earlier processes this one removes.
    pub remove_transitions: Vec<(String, String)>,
    /// Guards.
    pub guards: Vec<GuardDef>,
    /// Hooks.
    pub hooks: Vec<HookDef>,
}

/// A contribution to the order process.
pub trait OrderProcess: Send + Sync {
    /// The name it is configured and reported by.
    fn name(&self) -> &str;
    /// What it adds to (or removes from) the graph.
    fn definition(&self) -> ProcessDefinition;
}

/// Why a merged process graph is invalid: the process and the state at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order process `{process}`: {}{problem}", if state.is_empty() { String::new() } else { format!("state `{state}` ") })]
pub struct ProcessError {
    /// The process that introduced the problem.
    pub process: String,
    /// The state.
    pub state: String,
    /// What is wrong.
    pub problem: String,
}

/// Why a transition cannot happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionRejection {
    /// The graph has no such transition (or the state is unknown).
    NotAllowed {
        /// From.
        from: String,
        /// To.
        to: String,
        /// The states reachable in one step from `from`.
        allowed: Vec<String>,
    },
    /// A guard refused.
    Vetoed {
        /// The guard's process.
        process: String,
        /// The refusal.
        veto: Veto,
    },
}

struct StateInfo {
    terminal: bool,
    process: String,
    description: String,
}

/// The merged, validated order process.
pub struct ProcessGraph {
    initial: String,
    states: BTreeMap<String, StateInfo>,
    transitions: BTreeMap<String, BTreeSet<String>>,
    guards: Vec<(String, GuardDef)>,
    hooks: Vec<(String, HookDef)>,
}

impl std::fmt::Debug for ProcessGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGraph")
            .field("initial", &self.initial)
            .field("transitions", &self.transitions)
            .finish_non_exhaustive()
    }
}

impl ProcessGraph {
    /// Merges `processes` in order and validates the result.
    pub fn merge(processes: &[Arc<dyn OrderProcess>]) -> Result<ProcessGraph, ProcessError> {
        let mut initial: Option<(String, String)> = None;
        let mut states: BTreeMap<String, StateInfo> = BTreeMap::new();
        let mut transitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Who added each transition, for error messages.
        let mut added_by: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut guards = Vec::new();
        let mut hooks = Vec::new();
        let fail = |process: &str, state: &str, problem: &str| ProcessError {
            process: process.into(),
            state: state.into(),
            problem: problem.into(),
        };
        for process in processes {
            let name = process.name().to_owned();
            let def = process.definition();
            if let Some(i) = def.initial {
                match &initial {
                    Some((_, existing)) if existing != &i => {
                        return Err(fail(
                            &name,
                            &i,
                            &format!("cannot replace the initial state `{existing}`"),
                        ));
                    }
                    Some(_) => {}
                    None => initial = Some((name.clone(), i)),
                }
            }
            for s in def.states {
                if s.name.trim().is_empty() {
                    return Err(fail(&name, &s.name, "has no name"));
                }
                if let Some(existing) = states.get(&s.name) {
                    return Err(fail(
                        &name,
                        &s.name,
                        &format!("is defined already by `{}`", existing.process),
                    ));
                }
                states.insert(
                    s.name.clone(),
                    StateInfo {
                        terminal: s.terminal,
                        process: name.clone(),
                        description: s.description,
                    },
                );
            }
            for (from, to) in def.remove_transitions {
                let removed = transitions.get_mut(&from).is_some_and(|t| t.remove(&to));
                if !removed {
                    return Err(fail(
                        &name,
                        &from,
                        &format!("has no transition to `{to}` to remove"),
                    ));
                }
                added_by.remove(&(from, to));
            }
            for (from, to) in def.transitions {
                transitions
                    .entry(from.clone())
                    .or_default()
                    .insert(to.clone());
                added_by.insert((from, to), name.clone());
            }
            guards.extend(def.guards.into_iter().map(|g| (name.clone(), g)));
            hooks.extend(def.hooks.into_iter().map(|h| (name.clone(), h)));
        }
        let (initial_process, initial) = initial.ok_or_else(|| ProcessError {
            process: processes
                .first()
                .map(|p| p.name().to_owned())
                .unwrap_or_default(),
            state: String::new(),
            problem: "no process sets the initial state (list the process that does first)".into(),
        })?;
        if !states.contains_key(&initial) {
            return Err(fail(
                &initial_process,
                &initial,
                "is the initial state but not a state",
            ));
        }
        for ((from, to), process) in &added_by {
            for state in [from, to] {
                if !states.contains_key(state) {
                    return Err(fail(
                        process,
                        state,
                        &format!("is not a state (in the transition `{from}` → `{to}`)"),
                    ));
                }
            }
            if states[from].terminal {
                return Err(fail(
                    process,
                    from,
                    &format!("is terminal but has a transition to `{to}`"),
                ));
            }
        }
        for (process, g) in &guards {
            for state in g.from.iter().chain(std::iter::once(&g.to)) {
                if !states.contains_key(state) {
                    return Err(fail(process, state, "is not a state (in a guard)"));
                }
            }
        }
        for (process, h) in &hooks {
            for state in h.from.iter().chain(std::iter::once(&h.to)) {
                if !states.contains_key(state) {
                    return Err(fail(process, state, "is not a state (in a hook)"));
                }
            }
        }
        // Every state reachable from the initial one.
        let mut seen = BTreeSet::from([initial.clone()]);
        let mut queue = VecDeque::from([initial.clone()]);
        while let Some(s) = queue.pop_front() {
            for next in transitions.get(&s).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    queue.push_back(next.clone());
                }
            }
        }
        for (name, info) in &states {
            if !seen.contains(name) {
                return Err(fail(
                    &info.process,
                    name,
                    &format!("is unreachable from `{initial}`"),
                ));
            }
            let way_out = transitions.get(name).is_some_and(|t| !t.is_empty());
            if !info.terminal && !way_out {
                return Err(fail(
                    &info.process,
                    name,
                    "is not terminal but has no transition out",
                ));
            }
        }
        Ok(ProcessGraph {
            initial,
            states,
            transitions,
            guards,
            hooks,
        })
    }

    /// The initial state.
    pub fn initial(&self) -> &str {
        &self.initial
    }

    /// Every state, in name order, with whether it is terminal and its description.
    pub fn states(&self) -> impl Iterator<Item = (&str, bool, &str)> {
        self.states
            .iter()
            .map(|(n, i)| (n.as_str(), i.terminal, i.description.as_str()))
    }

    /// Whether `state` is a state of the graph.
    pub fn knows(&self, state: &str) -> bool {
        self.states.contains_key(state)
    }

    /// Whether `state` is terminal.
    pub fn is_terminal(&self, state: &str) -> bool {
        self.states.get(state).is_some_and(|s| s.terminal)
    }

    /// The states reachable in one step from `from`.
    pub fn next(&self, from: &str) -> Vec<String> {
        self.transitions
            .get(from)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the graph has the transition.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.transitions.get(from).is_some_and(|t| t.contains(to))
    }

    /// Checks a transition: allowed by the graph, and no guard vetoes it.
    pub fn check(&self, ctx: &TransitionContext<'_>) -> Result<(), TransitionRejection> {
        if !self.allows(ctx.from, ctx.to) {
            return Err(TransitionRejection::NotAllowed {
                from: ctx.from.into(),
                to: ctx.to.into(),
                allowed: self.next(ctx.from),
            });
        }
        for (process, g) in &self.guards {
            let applies = g.to == ctx.to && g.from.as_deref().is_none_or(|f| f == ctx.from);
            if applies && let Err(veto) = g.guard.check(ctx) {
                return Err(TransitionRejection::Vetoed {
                    process: process.clone(),
                    veto,
                });
            }
        }
        Ok(())
    }

    /// The events the hooks of a transition that happened ask for.
    pub fn after(&self, ctx: &TransitionContext<'_>) -> Vec<HookEvent> {
        self.hooks
            .iter()
            .filter(|(_, h)| h.to == ctx.to && h.from.as_deref().is_none_or(|f| f == ctx.from))
            .flat_map(|(_, h)| h.hook.after(ctx))
            .collect()
    }
}

/// The states of the default process.
pub mod state {
    /// Being filled.
    pub const CART: &str = "Cart";
    /// Checkout: addresses, shipping and payment chosen.
    pub const ARRANGING_PAYMENT: &str = "ArrangingPayment";
    /// Waiting for an approver of the buyer's company.
    pub const PENDING_APPROVAL: &str = "PendingApproval";
    /// Placed: prices, taxes and addresses are frozen.
    pub const PLACED: &str = "Placed";
    /// The payment is authorised (or the invoice issued on account).
    pub const PAYMENT_AUTHORIZED: &str = "PaymentAuthorized";
    /// Paid.
    pub const PAYMENT_SETTLED: &str = "PaymentSettled";
    /// Some lines shipped.
    pub const PARTIALLY_SHIPPED: &str = "PartiallyShipped";
    /// Everything shipped.
    pub const SHIPPED: &str = "Shipped";
    /// Delivered.
    pub const DELIVERED: &str = "Delivered";
    /// Cancelled before anything shipped.
    pub const CANCELLED: &str = "Cancelled";
}

/// Decides whether an order needs approval before it is placed, and whose (see
/// [`crate::approval`]; the default, [`crate::approval::RuleApprovals`], applies the
/// company's rules and the buyer's spending limits).
pub trait ApprovalStrategy: Send + Sync {
    /// The approvals the order needs (none: it is placed at once). The engine records them as
    /// the order's approval flow. Default: none.
    fn required(
        &self,
        input: &crate::approval::ApprovalInput<'_>,
    ) -> Vec<crate::approval::Requirement> {
        let _ = input;
        Vec::new()
    }
    /// `Some(reason)` when the order must wait in `PendingApproval` (asked by the default
    /// process's guard). Default: when [`Self::required`] found any, as the engine put it in
    /// [`OrderSnapshot::approval`].
    fn needs_approval(&self, order: &OrderSnapshot) -> Option<String> {
        order.approval.clone()
    }
}

/// Approves every order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproveAll;

impl ApprovalStrategy for ApproveAll {
    fn needs_approval(&self, _: &OrderSnapshot) -> Option<String> {
        None
    }
}

/// The code with which the approval guard sends an order to `PendingApproval`.
pub const APPROVAL_REQUIRED: &str = "APPROVAL_REQUIRED";

/// Options of the default process.
#[derive(Debug, Clone, Copy)]
pub struct DefaultProcessOptions {
    /// Keep the `PendingApproval` slot between `ArrangingPayment` and `Placed`.
    pub approval: bool,
    /// Let authorised but unpaid orders ship (invoices on account).
    pub ship_before_settlement: bool,
}

impl Default for DefaultProcessOptions {
    fn default() -> Self {
        DefaultProcessOptions {
            approval: true,
            ship_before_settlement: true,
        }
    }
}

/// The default B2B order process.
#[derive(Clone)]
pub struct DefaultOrderProcess {
    options: DefaultProcessOptions,
    approval: Arc<dyn ApprovalStrategy>,
}

impl Default for DefaultOrderProcess {
    fn default() -> Self {
        DefaultOrderProcess::new(
            DefaultProcessOptions::default(),
            Arc::new(crate::approval::RuleApprovals::default()),
        )
    }
}

impl DefaultOrderProcess {
    /// The process with `options`, asking `approval` before orders are placed.
    pub fn new(options: DefaultProcessOptions, approval: Arc<dyn ApprovalStrategy>) -> Self {
        DefaultOrderProcess { options, approval }
    }
}

impl OrderProcess for DefaultOrderProcess {
    fn name(&self) -> &str {
        "default"
    }

    fn definition(&self) -> ProcessDefinition {
        use state::*;
        let mut states = vec![
            StateDef::new(CART, "Being filled by the buyer."),
            StateDef::new(
                ARRANGING_PAYMENT,
                "Checkout: addresses, shipping and payment are chosen.",
            ),
            StateDef::new(PLACED, "Placed: prices, taxes and addresses are frozen."),
            StateDef::new(
                PAYMENT_AUTHORIZED,
                "The payment is authorised, or the invoice issued on account.",
            ),
            StateDef::new(PAYMENT_SETTLED, "Paid."),
            StateDef::new(PARTIALLY_SHIPPED, "Some lines have shipped."),
            StateDef::new(SHIPPED, "Everything has shipped."),
            StateDef::terminal(DELIVERED, "Delivered."),
            StateDef::terminal(CANCELLED, "Cancelled before anything shipped."),
        ];
        let t = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let mut transitions = vec![
            t(CART, ARRANGING_PAYMENT),
            t(ARRANGING_PAYMENT, CART),
            t(ARRANGING_PAYMENT, PLACED),
            t(PLACED, PAYMENT_AUTHORIZED),
            t(PLACED, PAYMENT_SETTLED),
            t(PAYMENT_AUTHORIZED, PAYMENT_SETTLED),
            t(PAYMENT_SETTLED, PARTIALLY_SHIPPED),
            t(PAYMENT_SETTLED, SHIPPED),
            t(PARTIALLY_SHIPPED, PARTIALLY_SHIPPED),
            t(PARTIALLY_SHIPPED, SHIPPED),
            t(SHIPPED, DELIVERED),
            t(PLACED, CANCELLED),
            t(PAYMENT_AUTHORIZED, CANCELLED),
            t(PAYMENT_SETTLED, CANCELLED),
        ];
        if self.options.ship_before_settlement {
            transitions.push(t(PAYMENT_AUTHORIZED, PARTIALLY_SHIPPED));
            transitions.push(t(PAYMENT_AUTHORIZED, SHIPPED));
        }
        let mut guards = Vec::new();
        if self.options.approval {
            states.push(StateDef::new(
                PENDING_APPROVAL,
                "Waiting for an approver of the buyer's company.",
            ));
            transitions.push(t(ARRANGING_PAYMENT, PENDING_APPROVAL));
            transitions.push(t(PENDING_APPROVAL, PLACED));
            transitions.push(t(PENDING_APPROVAL, CART));
            transitions.push(t(PENDING_APPROVAL, CANCELLED));
            let approval = self.approval.clone();
            guards.push(GuardDef {
                from: Some(ARRANGING_PAYMENT.into()),
                to: PLACED.into(),
                guard: Arc::new(move |ctx: &TransitionContext<'_>| {
                    match approval.needs_approval(ctx.order) {
                        Some(reason) => {
                            Err(Veto::new(APPROVAL_REQUIRED, reason).hold_in(PENDING_APPROVAL))
                        }
                        None => Ok(()),
                    }
                }),
            });
        }
        ProcessDefinition {
            initial: Some(CART.into()),
            states,
            transitions,
            remove_transitions: Vec::new(),
            guards,
            hooks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::CurrencyCode;

    fn snapshot(total: i64) -> OrderSnapshot {
        OrderSnapshot {
            id: Uuid::nil(),
            code: None,
            state: state::ARRANGING_PAYMENT.into(),
            customer_id: None,
            company_id: None,
            line_count: 1,
            total: Money::new(total, CurrencyCode::EUR),
            payment_method: None,
            paid: Money::new(0, CurrencyCode::EUR),
            shipped_quantity: 0,
            total_quantity: 1,
            approval: None,
        }
    }

    fn attempt<'a>(order: &'a OrderSnapshot, from: &'a str, to: &'a str) -> TransitionContext<'a> {
        TransitionContext {
            order,
            from,
            to,
            actor: &Actor::System,
            reason: None,
        }
    }

    struct Extra(ProcessDefinition, &'static str);
    impl OrderProcess for Extra {
        fn name(&self) -> &str {
            self.1
        }
        fn definition(&self) -> ProcessDefinition {
            self.0.clone()
        }
    }

    fn graph(extra: Vec<(ProcessDefinition, &'static str)>) -> Result<ProcessGraph, ProcessError> {
        let mut all: Vec<Arc<dyn OrderProcess>> = vec![Arc::new(DefaultOrderProcess::default())];
        all.extend(
            extra
                .into_iter()
                .map(|(d, n)| Arc::new(Extra(d, n)) as Arc<dyn OrderProcess>),
        );
        ProcessGraph::merge(&all)
    }

    fn t(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn the_default_process_is_valid_and_cancels_only_before_shipping() {
        let g = graph(vec![]).unwrap();
        assert_eq!(g.initial(), state::CART);
        assert!(g.allows(state::ARRANGING_PAYMENT, state::PENDING_APPROVAL));
        assert!(g.allows(state::PAYMENT_AUTHORIZED, state::SHIPPED));
        for s in [
            state::PLACED,
            state::PAYMENT_AUTHORIZED,
            state::PAYMENT_SETTLED,
        ] {
            assert!(g.allows(s, state::CANCELLED), "{s}");
        }
        for s in [state::PARTIALLY_SHIPPED, state::SHIPPED, state::DELIVERED] {
            assert!(!g.allows(s, state::CANCELLED), "{s}");
        }
        assert!(g.is_terminal(state::DELIVERED) && g.is_terminal(state::CANCELLED));
        let order = snapshot(100);
        match g.check(&attempt(&order, state::SHIPPED, state::PLACED)) {
            Err(TransitionRejection::NotAllowed { allowed, .. }) => {
                assert_eq!(allowed, vec![state::DELIVERED]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            g.check(&attempt(&order, state::ARRANGING_PAYMENT, state::PLACED))
                .is_ok(),
            "the default approval strategy approves everything"
        );
    }

    #[test]
    fn without_shipping_on_account_only_paid_orders_ship() {
        let p = DefaultOrderProcess::new(
            DefaultProcessOptions {
                approval: false,
                ship_before_settlement: false,
            },
            Arc::new(ApproveAll),
        );
        let g = ProcessGraph::merge(&[Arc::new(p)]).unwrap();
        assert!(!g.allows(state::PAYMENT_AUTHORIZED, state::SHIPPED));
        assert!(g.allows(state::PAYMENT_SETTLED, state::SHIPPED));
        assert!(!g.knows(state::PENDING_APPROVAL));
    }

    struct Above(i64);
    impl ApprovalStrategy for Above {
        fn needs_approval(&self, order: &OrderSnapshot) -> Option<String> {
            (order.total.amount > self.0).then(|| "above the limit".into())
        }
    }

    #[test]
    fn the_approval_guard_asks_the_approval_strategy() {
        let p = DefaultOrderProcess::new(DefaultProcessOptions::default(), Arc::new(Above(500)));
        let g = ProcessGraph::merge(&[Arc::new(p)]).unwrap();
        let small = snapshot(100);
        assert!(
            g.check(&attempt(&small, state::ARRANGING_PAYMENT, state::PLACED))
                .is_ok()
        );
        let big = snapshot(1_000);
        match g.check(&attempt(&big, state::ARRANGING_PAYMENT, state::PLACED)) {
            Err(TransitionRejection::Vetoed { process, veto }) => {
                assert_eq!(process, "default");
                assert_eq!(veto.code, APPROVAL_REQUIRED);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            g.check(&attempt(&big, state::PENDING_APPROVAL, state::PLACED))
                .is_ok()
        );
    }

    #[test]
    fn an_extension_reroutes_the_flow_through_a_state_of_its_own() {
        let review = ProcessDefinition {
            states: vec![StateDef::new("CreditReview", "Waiting for credit control.")],
            remove_transitions: vec![t(state::PLACED, state::PAYMENT_AUTHORIZED)],
            transitions: vec![
                t(state::PLACED, "CreditReview"),
                t("CreditReview", state::PAYMENT_AUTHORIZED),
                t("CreditReview", state::CANCELLED),
            ],
            ..Default::default()
        };
        let g = graph(vec![(review, "credit-review")]).unwrap();
        assert!(!g.allows(state::PLACED, state::PAYMENT_AUTHORIZED));
        assert!(g.allows(state::PLACED, "CreditReview"));
    }

    #[test]
    fn bad_graphs_fail_naming_the_process_and_the_state() {
        let cases: Vec<(ProcessDefinition, &str, &str)> = vec![
            (
                ProcessDefinition {
                    states: vec![StateDef::new("Limbo", "nowhere")],
                    transitions: vec![t("Limbo", state::CANCELLED)],
                    ..Default::default()
                },
                "Limbo",
                "unreachable",
            ),
            (
                ProcessDefinition {
                    states: vec![StateDef::new("Stuck", "no way out")],
                    transitions: vec![t(state::PLACED, "Stuck")],
                    ..Default::default()
                },
                "Stuck",
                "no transition out",
            ),
            (
                ProcessDefinition {
                    transitions: vec![t(state::PLACED, "Nowhere")],
                    ..Default::default()
                },
                "Nowhere",
                "not a state",
            ),
            (
                ProcessDefinition {
                    transitions: vec![t(state::CANCELLED, state::PLACED)],
                    ..Default::default()
                },
                state::CANCELLED,
                "terminal",
            ),
            (
                ProcessDefinition {
                    states: vec![StateDef::new(state::PLACED, "again")],
                    ..Default::default()
                },
                state::PLACED,
                "defined already by `default`",
            ),
            (
                ProcessDefinition {
                    initial: Some("Other".into()),
                    ..Default::default()
                },
                "Other",
                "initial state",
            ),
            (
                ProcessDefinition {
                    remove_transitions: vec![t(state::CART, state::SHIPPED)],
                    ..Default::default()
                },
                state::CART,
                "to remove",
            ),
        ];
        for (def, bad_state, problem) in cases {
            let err = graph(vec![(def, "broken-ext")]).unwrap_err();
            assert_eq!(err.process, "broken-ext", "{err}");
            assert_eq!(err.state, bad_state, "{err}");
            assert!(err.to_string().contains(problem), "{err}");
            assert!(err.to_string().contains("broken-ext"), "{err}");
        }
        // Removing the only way out of a state is caught too.
        let err = graph(vec![(
            ProcessDefinition {
                remove_transitions: vec![t(state::SHIPPED, state::DELIVERED)],
                ..Default::default()
            },
            "broken-ext",
        )])
        .unwrap_err();
        assert!(
            err.to_string().contains("unreachable")
                || err.to_string().contains("way out")
                || err.to_string().contains("transition out"),
            "{err}"
        );
    }
}
