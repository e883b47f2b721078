//! The orders service: placement, transitions through the order process, payments on
//! account and by provider, cancellation, and who may see which order.
//!
//! Placing an order runs a constant number of statements whatever its size: the cart row is
//! locked, every line is re-priced in one batch (the cart's own statements), the totals are
//! recomputed from one aggregate, and the order row, its transitions, its payment and the
//! credit reservation are single-row writes. The cart's lines become the order's lines: nothing
//! is copied.
//!
//! A provider payment (a card) is never awaited inside a transaction: the first unit of work
//! records the intent (a `Pending` payment, the order in `ArrangingPayment`) and commits; the
//! handler is called; a second unit of work records the outcome and places the order, or puts
//! it back to `Cart` when the payment was declined.

use std::sync::Arc;

use chrono::{Datelike, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::allocation::Shortage;
use vectis_strategies::order_code::OrderCodeContext;
use vectis_strategies::order_process::{
    Actor, OrderSnapshot, TransitionContext, TransitionRejection, state,
};
use vectis_strategies::payments::{
    PaymentContext, PaymentError, PaymentKind, PaymentMethodHandler, PaymentOutcome,
    PaymentRequest, term_days,
};
use vectis_strategies::{CurrencyCode, Money, ProcessError, ProcessGraph, Strategies};

use super::entity::{payment, payment_state, transition};
use crate::auth::{Caller, CompanyPermission, Permission, Principal};
use crate::cart::CartService;
use crate::cart::entity::order;
use crate::cart::service::{Placement, PriceChange};
use crate::companies::CompaniesService;
use crate::db::page::{Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::inventory::InventoryService;
use crate::inventory::fulfil::ShipLine;
use crate::kernel::{PostalAddress, TenantId};
use crate::pricing::PricingService;
use crate::pricing::service::Buyer;

/// What the buyer places an order with.
#[derive(Debug, Clone, Default)]
pub struct PlaceInput {
    /// Ship-to; defaults to the cart's, then the buyer's company location.
    pub shipping_address: Option<PostalAddress>,
    /// Bill-to; defaults to the company location, then the ship-to.
    pub billing_address: Option<PostalAddress>,
    /// One of the cart's shipping methods; defaults to the cart's choice.
    pub shipping_method: Option<String>,
    /// The payment method's code.
    pub payment_method: String,
    /// What the payment method needs (e.g. `{"cardNumber": "…"}` for the test card).
    pub payment_metadata: serde_json::Value,
    /// The buyer's purchase-order number.
    pub po_number: Option<String>,
    /// A guest's email (customers have theirs).
    pub email: Option<String>,
    /// Place even though prices changed since the lines were added.
    pub accept_price_changes: bool,
    /// The cart version the buyer saw; a repeated placement with it returns the same order.
    pub expected_version: Option<i64>,
    /// A client's idempotency key (the `Idempotency-Key` header).
    pub idempotency_key: Option<String>,
}

/// The outcome of `placeOrder`.
#[derive(Debug, Clone)]
pub enum PlaceOutcome {
    /// Placed (or found placed by an earlier call with the same key).
    Placed(Box<order::Model>),
    /// Nothing to order.
    EmptyCart,
    /// The cart changed since the version the buyer saw.
    CartChanged {
        /// Its version now.
        version: i64,
    },
    /// Prices changed: confirm by placing again (or with `acceptPriceChanges`).
    PriceChanged(Vec<PriceChange>),
    /// An address (or a guest's email) is missing.
    MissingAddress {
        /// `shippingAddress`, `billingAddress` or `email`.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The shipping method is not offered (or none was chosen).
    ShippingMethod {
        /// What is offered.
        message: String,
    },
    /// The payment method is unknown or not offered to this buyer.
    PaymentMethod {
        /// `PAYMENT_METHOD_UNKNOWN` or `PAYMENT_METHOD_NOT_ELIGIBLE`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The order would exceed the company's credit limit.
    CreditLimitExceeded {
        /// What is left of the limit.
        available: Money,
    },
    /// The payment was declined (nothing was charged; the cart is editable again).
    PaymentDeclined {
        /// The provider's reason.
        message: String,
    },
    /// The order process refused a transition.
    Transition(TransitionFailure),
    /// Lines that cannot be served from stock (nothing was reserved or placed).
    InsufficientStock(Vec<Shortage>),
    /// The quote cannot be accepted (expired, declined, accepted already, …).
    Quote(crate::quotes::service::Refusal),
}

/// What `ship` did.
#[derive(Debug)]
pub enum ShipOutcome {
    /// Shipped: the order in its new state and the shipment.
    Shipped(Box<(order::Model, crate::inventory::entity::shipment::Model)>),
    /// Lines that cannot ship as asked; nothing changed.
    Refused(Vec<crate::inventory::fulfil::LineRefusal>),
    /// The order process refused (e.g. the order is not paid or authorised yet).
    Transition(TransitionFailure),
}

/// A transition the order process refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionFailure {
    /// `INVALID_TRANSITION` or a guard's code.
    pub code: String,
    /// For people.
    pub message: String,
    /// From.
    pub from: String,
    /// To.
    pub to: String,
}

impl TransitionFailure {
    fn from_rejection(r: TransitionRejection) -> Self {
        match r {
            TransitionRejection::NotAllowed { from, to, allowed } => TransitionFailure {
                code: "INVALID_TRANSITION".into(),
                message: format!(
                    "an order in {from} cannot move to {to} (it can move to: {})",
                    if allowed.is_empty() {
                        "nothing, it is final".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
                from,
                to,
            },
            TransitionRejection::Vetoed { veto, .. } => TransitionFailure {
                code: veto.code,
                message: veto.message,
                from: String::new(),
                to: String::new(),
            },
        }
    }
}

/// What `reorder` did.
#[derive(Debug, Clone)]
pub struct ReorderOutcome {
    /// The caller's cart after it.
    pub cart: Option<order::Model>,
    /// Whether any line was added.
    pub applied: bool,
    /// Lines that could not be added (by their index in the order), e.g. archived variants.
    pub errors: Vec<crate::error::ItemError>,
    /// Lines now priced differently from the order.
    pub changes: Vec<PriceChange>,
    /// A new guest cart's token.
    pub token: Option<String>,
}

/// A payment operation refused: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFailure {
    /// `PAYMENT_NOT_SETTLEABLE`, `REFUND_EXCEEDS_PAYMENT`, `PAYMENT_DECLINED`, …
    pub code: String,
    /// For people.
    pub message: String,
}

impl PaymentFailure {
    fn not_settleable(p: &payment::Model) -> Self {
        PaymentFailure {
            code: "PAYMENT_NOT_SETTLEABLE".into(),
            message: format!("the payment is {}, not Authorized", p.state),
        }
    }
}

/// The company whose credit an on-account payment reserved.
pub(crate) fn credit_holder(p: &payment::Model) -> Option<Uuid> {
    serde_json::from_str::<serde_json::Value>(&p.metadata)
        .ok()?
        .get("creditHolder")?
        .as_str()
        .and_then(|h| Uuid::parse_str(h).ok())
}

/// A filter over orders (staff, company users and reps).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// In this state.
    pub state: Option<String>,
    /// Of this company (or, for company users, within their subtree).
    pub company_id: Option<Uuid>,
    /// Of this customer.
    pub customer_id: Option<Uuid>,
    /// With this code.
    pub code: Option<String>,
    /// With this purchase-order number.
    pub po_number: Option<String>,
    /// Placed at or after.
    pub placed_from: Option<chrono::DateTime<Utc>>,
    /// Placed before.
    pub placed_until: Option<chrono::DateTime<Utc>>,
}

/// Orders and their process.
#[derive(Clone)]
pub struct OrdersService {
    pub(crate) core: Core,
    pub(crate) process: Arc<ProcessGraph>,
    strategies: Strategies,
    pub(crate) cart: CartService,
    pricing: PricingService,
    pub(crate) companies: CompaniesService,
    pub(crate) inventory: InventoryService,
    pub(crate) approvals: crate::approvals::ApprovalsService,
    pub(crate) quotes: crate::quotes::QuotesService,
}

/// What `place` places: the caller's cart, or a quote they accept.
#[derive(Debug, Clone, Copy)]
pub enum PlaceFrom<'a> {
    /// The caller's active cart (a guest's by their cart token).
    Cart(Option<&'a str>),
    /// A sent quote, at its prices.
    Quote(Uuid),
}

/// What a provider payment remembers to finish its placement without the request that
/// started it (stored with the payment as JSON until its result is recorded).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Intent {
    shipping_address: PostalAddress,
    billing_address: PostalAddress,
    po_number: Option<String>,
    email: Option<String>,
    idempotency_key: String,
}

impl Intent {
    fn placement(&self, code: String, method: &str) -> Placement {
        Placement {
            code,
            placed_at: Utc::now(),
            shipping_address: self.shipping_address.clone(),
            billing_address: self.billing_address.clone(),
            po_number: self.po_number.clone(),
            payment_method: method.to_owned(),
            idempotency_key: self.idempotency_key.clone(),
            email: self.email.clone(),
        }
    }
}

pub(crate) fn actor_of(caller: &Caller) -> Actor {
    match &caller.principal {
        Principal::Staff { id, .. } => Actor::Staff(*id),
        Principal::Customer {
            id, acting_staff, ..
        } => Actor::Customer {
            id: *id,
            acting_staff: *acting_staff,
        },
        Principal::ApiKey { .. } | Principal::Storefront => Actor::System,
    }
}

pub(crate) fn money(amount: i64, currency: &str) -> Money {
    Money::new(amount, currency.parse().unwrap_or(CurrencyCode::EUR))
}

fn snapshot(o: &order::Model, paid: i64) -> OrderSnapshot {
    OrderSnapshot {
        id: o.id,
        code: o.code.clone(),
        state: o.state.clone(),
        customer_id: o.customer_id,
        company_id: o.company_id,
        line_count: o.line_count,
        total: money(o.total, &o.currency),
        payment_method: o.payment_method.clone(),
        paid: money(paid, &o.currency),
        shipped_quantity: 0,
        total_quantity: o.total_quantity,
        approval: None,
    }
}

/// The address of a company location.
fn location_address(l: &crate::companies::entity::location::Model) -> PostalAddress {
    PostalAddress {
        street_line1: l.street_line1.clone(),
        street_line2: l.street_line2.clone(),
        city: l.city.clone(),
        postal_code: l.postal_code.clone(),
        region: l.region.clone(),
        country_code: l.country_code.clone(),
    }
}

impl OrdersService {
    /// The service over the merged order process of `strategies`; a process graph that does
    /// not validate is an error naming the process and the state (the engine does not boot).
    pub fn new(
        core: Core,
        strategies: &Strategies,
        inventory: InventoryService,
        cart: CartService,
        pricing: PricingService,
        companies: CompaniesService,
    ) -> Result<Self, ProcessError> {
        Ok(OrdersService {
            approvals: crate::approvals::ApprovalsService::new(
                core.clone(),
                companies.clone(),
                strategies.approval.clone(),
            ),
            quotes: crate::quotes::QuotesService::new(
                core.clone(),
                companies.clone(),
                cart.clone(),
            ),
            core,
            process: Arc::new(ProcessGraph::merge(&strategies.order_process)?),
            strategies: strategies.clone(),
            cart,
            pricing,
            companies,
            inventory,
        })
    }

    /// The merged order process.
    pub fn process(&self) -> &ProcessGraph {
        &self.process
    }

    /// The payment methods offered to the caller for their cart, with why the others are not.
    pub fn payment_handler(&self, code: &str) -> Option<Arc<dyn PaymentMethodHandler>> {
        self.strategies
            .payments
            .iter()
            .find(|h| h.code() == code)
            .cloned()
    }

    /// All configured payment methods.
    pub fn payment_handlers(&self) -> &[Arc<dyn PaymentMethodHandler>] {
        &self.strategies.payments
    }

    /// The payment context of a buyer for an amount.
    pub fn payment_context(buyer: &Buyer, amount: Money) -> PaymentContext {
        PaymentContext {
            amount,
            company_id: buyer.company,
            payment_terms: buyer.payment_terms.clone(),
            credit: buyer.credit.map(|(_, limit, exposure)| (limit, exposure)),
        }
    }

    /// Moves `order` to `to` if the process allows it and no guard vetoes it: records the
    /// transition (who, when, why) and a `vectis.order.state_changed` event, plus what the
    /// hooks ask for. The caller holds the order's lock.
    pub(crate) async fn transition(
        &self,
        uow: &mut UnitOfWork,
        order: &order::Model,
        paid: i64,
        to: &str,
        actor: &Actor,
        reason: Option<&str>,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        self.transition_with(uow, order, paid, to, actor, reason, Vec::new(), None)
            .await
    }

    /// [`Self::transition`] that also writes `more` columns and records `event` (its data
    /// completed with the transition) instead of `vectis.order.state_changed`: one change,
    /// one event, one sequence number.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn transition_with(
        &self,
        uow: &mut UnitOfWork,
        order: &order::Model,
        paid: i64,
        to: &str,
        actor: &Actor,
        reason: Option<&str>,
        more: Vec<(order::Column, Expr)>,
        event: Option<(&'static str, serde_json::Value)>,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        let snap = snapshot(order, paid);
        let ctx = TransitionContext {
            order: &snap,
            from: &order.state,
            to,
            actor,
            reason,
        };
        if let Err(rejection) = self.process.check(&ctx) {
            let mut failure = TransitionFailure::from_rejection(rejection);
            failure.from = order.state.clone();
            failure.to = to.to_owned();
            return Ok(Err(failure));
        }
        let hooks = self.process.after(&ctx);
        let updated = self.cart.set_state_in(uow, order.id, to, more).await?;
        let now = Utc::now();
        let (actor_id, acting) = match actor {
            Actor::Staff(id) => (Some(*id), None),
            Actor::Customer { id, acting_staff } => (Some(*id), *acting_staff),
            Actor::System => (None, None),
        };
        transition::Entity::insert(transition::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(uow.tenant().0),
            created_at: Set(now),
            updated_at: Set(now),
            order_id: Set(order.id),
            from_state: Set(order.state.clone()),
            to_state: Set(to.to_owned()),
            actor_id: Set(actor_id),
            acting_staff_id: Set(acting),
            reason: Set(reason.map(|r| r.chars().take(500).collect())),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let (event_type, mut data) = event.unwrap_or((
            "vectis.order.state_changed",
            json!({ "orderId": order.id, "code": updated.code, "reason": reason,
                    "companyId": order.company_id, "customerId": order.customer_id }),
        ));
        if let Some(obj) = data.as_object_mut() {
            obj.insert("from".into(), json!(order.state));
            obj.insert("to".into(), json!(to));
        }
        uow.record(DomainEvent::new(
            uow.tenant(),
            "order",
            order.id,
            updated.version,
            event_type,
            data,
        ));
        // Each hook event is a change of its own (its own sequence number).
        let mut updated = updated;
        for h in hooks {
            updated = uow
                .change::<order::Entity>(order.id, Vec::new(), h.event_type, |_| h.data)
                .await?;
        }
        Ok(Ok(updated))
    }

    /// The next order code of the tenant: one atomic increment of its sequence.
    async fn next_code(&self, uow: &UnitOfWork) -> AppResult<String> {
        let backend = self.core.db.backend();
        let sql = if backend == DbBackend::Postgres {
            "INSERT INTO order_sequences (tenant_id, next) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET next = order_sequences.next + 1 RETURNING next"
        } else {
            "INSERT INTO order_sequences (tenant_id, next) VALUES (?, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET next = order_sequences.next + 1 RETURNING next"
        };
        let row = uow
            .tx()
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [uow.tenant().0.into()],
            ))
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no order sequence")))?;
        let sequence: i64 = row.try_get("", "next")?;
        let tenant = crate::tenancy::slug_in(uow.tx(), uow.tenant()).await?;
        Ok(self.strategies.order_code.code(&OrderCodeContext {
            tenant: &tenant,
            year: Utc::now().year(),
            sequence,
        }))
    }

    /// Places the caller's cart as an order. Expected failures are outcomes; nothing changes
    /// with them (a declined card leaves the cart as it was).
    pub async fn place(
        &self,
        caller: &Caller,
        token: Option<&str>,
        input: PlaceInput,
    ) -> AppResult<PlaceOutcome> {
        self.place_from(caller, PlaceFrom::Cart(token), input).await
    }

    /// Accepts a sent quote (its buyer, or a company user with `PLACE_ORDERS` and
    /// `VIEW_ORDERS`) and places it as an order through the same checkout as a cart, at the
    /// quoted prices and with the quote's discount; approval rules apply as to any order.
    pub async fn accept_quote(
        &self,
        caller: &Caller,
        quote: Uuid,
        input: PlaceInput,
    ) -> AppResult<PlaceOutcome> {
        self.place_from(caller, PlaceFrom::Quote(quote), input)
            .await
    }

    async fn place_from(
        &self,
        caller: &Caller,
        from: PlaceFrom<'_>,
        input: PlaceInput,
    ) -> AppResult<PlaceOutcome> {
        if let PlaceFrom::Quote(_) = from {
            crate::cart::CartService::require_buyer(caller)?;
            if caller.membership().is_none() {
                caller.require_customer()?;
                return Err(AppError::Forbidden("COMPANY_USER".into()));
            }
        }
        if let Some(po) = &input.po_number
            && (po.trim().is_empty() || po.chars().count() > 100)
        {
            return Err(AppError::validation(
                "purchaseOrderNumber",
                "must be 1-100 characters",
            ));
        }
        if let Some(key) = &input.idempotency_key
            && (key.is_empty() || key.len() > 150)
        {
            return Err(AppError::validation(
                "idempotencyKey",
                "must be 1-150 characters",
            ));
        }
        let shipping_address = input
            .shipping_address
            .clone()
            .map(|a| a.validated())
            .transpose()?;
        let billing_address = input
            .billing_address
            .clone()
            .map(|a| a.validated())
            .transpose()?;
        let email = input
            .email
            .as_deref()
            .map(|e| crate::auth::normalize_email("email", e))
            .transpose()?;
        let buyer = self.pricing.buyer(caller).await?;
        let actor = actor_of(caller);
        let client_key = input
            .idempotency_key
            .as_ref()
            .map(|k| format!("client:{}:{k}", caller.actor().unwrap_or_default()));

        let mut uow = self.core.begin_for(caller).await?;
        if let Some(key) = &client_key
            && let Some(done) = self.cart.order_by_idempotency_key_in(&uow, key).await?
        {
            return Ok(PlaceOutcome::Placed(Box::new(done)));
        }
        // The same cart at the same version places one order, however often it is submitted:
        // its key names the caller's cart key, the cart and the version.
        let (cart_of, locked) = match from {
            PlaceFrom::Cart(token) => (
                CartService::cart_key_of(caller, token)?.map(|k| crate::kernel::hash_key(&k)),
                self.cart.lock_active_in(&uow, caller, token).await?,
            ),
            PlaceFrom::Quote(id) => {
                match self.quotes.accept_in(&mut uow, caller, &buyer, id).await? {
                    Ok(cart) => (
                        Some(crate::kernel::hash_key(&format!("quote:{id}"))),
                        Some(cart),
                    ),
                    Err(r) => return Ok(PlaceOutcome::Quote(r)),
                }
            }
        };
        let Some(mut cart) = locked else {
            if let Some(done) = self.already_placed_by(&uow, client_key.as_deref()).await? {
                return Ok(PlaceOutcome::Placed(Box::new(done)));
            }
            if let (Some(v), Some(of)) = (input.expected_version, &cart_of)
                && let Some(done) = self.cart.order_by_version_key_in(&uow, of, v).await?
            {
                return Ok(PlaceOutcome::Placed(Box::new(done)));
            }
            return Ok(PlaceOutcome::EmptyCart);
        };
        let version_key = match (input.expected_version, &cart_of) {
            (Some(v), Some(of)) => Some(format!("cart:{of}:{}:{v}", cart.id.simple())),
            _ => None,
        };
        if let Some(expected) = input.expected_version
            && expected != cart.version
        {
            if let Some(of) = &cart_of
                && let Some(done) = self
                    .cart
                    .order_by_version_key_in(&uow, of, expected)
                    .await?
            {
                return Ok(PlaceOutcome::Placed(Box::new(done)));
            }
            return Ok(PlaceOutcome::CartChanged {
                version: cart.version,
            });
        }
        if cart.state != state::CART {
            return Err(AppError::Rejected {
                code: "CART_LOCKED",
                message: "the cart is being checked out; try again in a moment".into(),
            });
        }
        if cart.line_count == 0 {
            return Ok(PlaceOutcome::EmptyCart);
        }
        // Addresses: given, else the cart's, else the buyer's company location.
        let location = buyer.location.as_ref().map(location_address);
        let ship_to = shipping_address
            .or_else(|| CartService::address_of(&cart))
            .or_else(|| location.clone());
        let Some(ship_to) = ship_to else {
            return Ok(PlaceOutcome::MissingAddress {
                field: "shippingAddress",
                message: "give a shipping address".into(),
            });
        };
        let bill_to = billing_address
            .or(location)
            .unwrap_or_else(|| ship_to.clone());
        let guest = matches!(caller.principal, Principal::Storefront);
        if guest && email.is_none() {
            return Ok(PlaceOutcome::MissingAddress {
                field: "email",
                message: "guests give an email for the order confirmation".into(),
            });
        }
        CartService::ship_to(&mut cart, &ship_to)?;
        if let Some(method) = &input.shipping_method {
            cart.shipping_method = Some(method.clone());
        }
        // Prices may have changed since the lines were added.
        let changes = self
            .cart
            .reprice_in(&uow, &buyer, &cart, input.accept_price_changes)
            .await?;
        if !changes.is_empty() && !input.accept_price_changes {
            return Ok(PlaceOutcome::PriceChanged(changes));
        }
        let cart = self.cart.totals_in(&mut uow, &buyer, &cart).await?;
        if cart.line_count == 0 {
            return Ok(PlaceOutcome::EmptyCart);
        }
        let offered = self.cart.shipping_methods(&cart)?;
        if !offered.is_empty()
            && !cart
                .shipping_method
                .as_ref()
                .is_some_and(|m| offered.iter().any(|q| &q.code == m))
        {
            return Ok(PlaceOutcome::ShippingMethod {
                message: format!(
                    "choose a shipping method (offered: {})",
                    offered
                        .iter()
                        .map(|q| q.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let total = money(cart.total, &cart.currency);
        let Some(handler) = self.payment_handler(&input.payment_method) else {
            return Ok(PlaceOutcome::PaymentMethod {
                code: "PAYMENT_METHOD_UNKNOWN",
                message: format!("there is no payment method `{}`", input.payment_method),
            });
        };
        // On account, the credit limit is the engine's to check (again atomically below).
        if handler.kind() == PaymentKind::OnAccount
            && let Some((_, limit, exposure)) = buyer.credit
            && exposure.amount.saturating_add(cart.total) > limit.amount
        {
            return Ok(PlaceOutcome::CreditLimitExceeded {
                available: Money::new((limit.amount - exposure.amount).max(0), limit.currency),
            });
        }
        if let Err(message) = handler.eligible(&Self::payment_context(&buyer, total)) {
            return Ok(PlaceOutcome::PaymentMethod {
                code: "PAYMENT_METHOD_NOT_ELIGIBLE",
                message,
            });
        }
        // Stock for every tracked line, under locks in (variant, location) order.
        let lines = self.cart.stock_lines_in(&uow, &cart).await?;
        let preferred = buyer
            .location
            .as_ref()
            .and_then(|l| l.preferred_stock_location_id);
        if let Err(short) = self
            .inventory
            .reserve_in(&mut uow, cart.id, cart.version, &lines, preferred, None)
            .await?
        {
            return Ok(PlaceOutcome::InsufficientStock(short));
        }
        let cart = match self
            .transition(&mut uow, &cart, 0, state::ARRANGING_PAYMENT, &actor, None)
            .await?
        {
            Ok(c) => c,
            Err(f) => return Ok(PlaceOutcome::Transition(f)),
        };
        let key = client_key.or(version_key).unwrap_or_else(|| {
            format!(
                "cart:{}:{}:{}",
                cart_of.clone().unwrap_or_default(),
                cart.id.simple(),
                cart.version
            )
        });
        let intent = Intent {
            shipping_address: ship_to,
            billing_address: bill_to,
            po_number: input.po_number.clone(),
            email,
            idempotency_key: key,
        };
        let placement = |code: String| intent.placement(code, handler.code());
        let payment_id = Uuid::now_v7();
        match handler.kind() {
            PaymentKind::OnAccount => {
                // The credit reservation: one conditional update on the limit's holder.
                if let Some((holder, limit, exposure)) = buyer.credit
                    && !CompaniesService::reserve_credit_in(
                        uow.tx(),
                        caller.tenant,
                        holder,
                        cart.total,
                    )
                    .await?
                {
                    let available = (limit.amount - exposure.amount).max(0);
                    return Ok(PlaceOutcome::CreditLimitExceeded {
                        available: Money::new(available, limit.currency),
                    });
                }
                let days = buyer.payment_terms.as_deref().and_then(term_days);
                let outcome = handler
                    .authorize(&PaymentRequest {
                        idempotency_key: payment_id,
                        order_id: cart.id,
                        order_code: None,
                        amount: total,
                        metadata: json!({ "termDays": days }),
                        transaction_id: None,
                    })
                    .await
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("invoice: {e}")))?;
                let due = match outcome {
                    PaymentOutcome::Authorized { due_in_days, .. } => due_in_days.or(days),
                    _ => days,
                };
                self.insert_payment(
                    &uow,
                    payment_id,
                    &cart,
                    handler.code(),
                    payment_state::AUTHORIZED,
                    json!({ "termDays": days, "creditHolder": buyer.credit.map(|c| c.0) }),
                    due.map(|d| Utc::now() + Duration::days(d)),
                    None,
                )
                .await?;
                let placed = self
                    .finish_placement(&mut uow, cart, &actor, &placement, payment_id)
                    .await?;
                match placed {
                    Ok(order) => {
                        uow.commit().await?;
                        Ok(PlaceOutcome::Placed(Box::new(order)))
                    }
                    Err(f) => Ok(PlaceOutcome::Transition(f)),
                }
            }
            PaymentKind::Provider => {
                // Record the intent and commit: nothing waits on the provider in a transaction.
                self.insert_payment(
                    &uow,
                    payment_id,
                    &cart,
                    handler.code(),
                    payment_state::PENDING,
                    input.payment_metadata.clone(),
                    None,
                    Some(serde_json::to_string(&intent).map_err(anyhow::Error::from)?),
                )
                .await?;
                uow.commit().await?;
                let outcome = handler
                    .authorize(&PaymentRequest {
                        idempotency_key: payment_id,
                        order_id: cart.id,
                        order_code: None,
                        amount: total,
                        metadata: input.payment_metadata.clone(),
                        transaction_id: None,
                    })
                    .await;
                self.complete_intent(
                    caller.tenant,
                    Some(caller),
                    cart.id,
                    payment_id,
                    &handler,
                    outcome,
                    &intent,
                    &actor,
                )
                .await
            }
        }
    }

    pub(crate) async fn begin_as(
        &self,
        tenant: TenantId,
        caller: Option<&Caller>,
    ) -> AppResult<UnitOfWork> {
        match caller {
            Some(c) => self.core.begin_for(c).await,
            None => self.core.begin(tenant, None).await,
        }
    }

    /// Records a provider's answer to a payment intent and finishes the placement (authorised)
    /// or returns the order to its cart (declined, failed, or refused by the order process).
    /// Both the request that recorded the intent and [`Self::recover_payments`] call it:
    /// whoever locks the order first records the answer, the other finds it recorded.
    #[allow(clippy::too_many_arguments)]
    async fn complete_intent(
        &self,
        tenant: TenantId,
        caller: Option<&Caller>,
        order_id: Uuid,
        payment_id: Uuid,
        handler: &Arc<dyn PaymentMethodHandler>,
        outcome: Result<PaymentOutcome, PaymentError>,
        intent: &Intent,
        actor: &Actor,
    ) -> AppResult<PlaceOutcome> {
        let mut uow = self.begin_as(tenant, caller).await?;
        let cart = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, order_id)
            .await?
            .ok_or_else(|| AppError::not_found("Order", order_id))?;
        let payment = crate::db::lock::lock::<payment::Entity, _>(uow.tx(), tenant, payment_id)
            .await?
            .ok_or_else(|| AppError::not_found("Payment", payment_id))?;
        if payment.state != payment_state::PENDING {
            // Recorded already (by recovery, or by the request that recorded the intent).
            return Ok(match payment.state.as_str() {
                payment_state::AUTHORIZED | payment_state::SETTLED if cart.code.is_some() => {
                    PlaceOutcome::Placed(Box::new(cart))
                }
                _ => PlaceOutcome::PaymentDeclined {
                    message: payment
                        .message
                        .unwrap_or_else(|| "the payment did not go through".into()),
                },
            });
        }
        let total = money(cart.total, &cart.currency);
        let (declined, message, transaction_id) = match outcome {
            Ok(PaymentOutcome::Authorized { transaction_id, .. })
            | Ok(PaymentOutcome::Settled { transaction_id }) => (None, None, transaction_id),
            Ok(PaymentOutcome::Declined { message }) => {
                (Some(payment_state::DECLINED), Some(message), None)
            }
            Ok(PaymentOutcome::Done) => (None, None, None),
            Err(e) => {
                tracing::warn!(payment = %payment_id, error = %e, "payment provider");
                (
                    Some(payment_state::FAILED),
                    Some("the payment provider did not answer; nothing was charged".into()),
                    None,
                )
            }
        };
        if let Some(failed) = declined {
            let message = message.unwrap_or_default();
            return self
                .back_to_cart(uow, &cart, payment_id, handler.code(), failed, &message)
                .await;
        }
        self.update_payment(
            &mut uow,
            payment_id,
            payment_state::AUTHORIZED,
            transaction_id.clone(),
            None,
        )
        .await?;
        let placement = |code: String| intent.placement(code, handler.code());
        match self
            .finish_placement(&mut uow, cart.clone(), actor, &placement, payment_id)
            .await?
        {
            Ok(order) => {
                uow.commit().await?;
                Ok(PlaceOutcome::Placed(Box::new(order)))
            }
            Err(f) => {
                drop(uow);
                // Not placed after all: the cart is the buyer's again, and what the provider
                // authorised is released.
                let uow = self.begin_as(tenant, caller).await?;
                let cart = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, order_id)
                    .await?
                    .ok_or_else(|| AppError::not_found("Order", order_id))?;
                self.back_to_cart(
                    uow,
                    &cart,
                    payment_id,
                    handler.code(),
                    payment_state::CANCELLED,
                    &f.message,
                )
                .await?;
                if let Err(e) = handler
                    .cancel(&PaymentRequest {
                        idempotency_key: payment_id,
                        order_id,
                        order_code: None,
                        amount: total,
                        metadata: serde_json::Value::Null,
                        transaction_id,
                    })
                    .await
                {
                    tracing::warn!(payment = %payment_id, error = %e, "releasing an authorisation");
                }
                Ok(PlaceOutcome::Transition(f))
            }
        }
    }

    /// Marks the payment `state` with `message` and moves the order back to an editable cart.
    async fn back_to_cart(
        &self,
        mut uow: UnitOfWork,
        cart: &order::Model,
        payment_id: Uuid,
        method: &str,
        state: &str,
        message: &str,
    ) -> AppResult<PlaceOutcome> {
        self.update_payment(&mut uow, payment_id, state, None, Some(message))
            .await?;
        let event = json!({ "orderId": cart.id, "paymentId": payment_id,
                            "method": method, "state": state, "message": message });
        let back = match self
            .transition_with(
                &mut uow,
                cart,
                0,
                state::CART,
                &Actor::System,
                Some(message),
                Vec::new(),
                Some(("vectis.order.payment_declined", event)),
            )
            .await?
        {
            Ok(o) => o,
            Err(f) => return Ok(PlaceOutcome::Transition(f)),
        };
        self.inventory
            .release_in(&mut uow, cart.id, back.version, "payment not taken", None)
            .await?;
        if let Some(quote) = back.quote_id {
            self.quotes
                .reopen_in(&mut uow, quote, "payment not taken")
                .await?;
        }
        uow.commit().await?;
        Ok(PlaceOutcome::PaymentDeclined {
            message: message.to_owned(),
        })
    }

    /// Finishes provider payments whose checkout was interrupted after the intent was recorded
    /// (the process stopped, the client went away): every `Pending` payment older than
    /// `grace` is asked again, with the same idempotency key, and its placement completed or
    /// undone. A provider that still does not answer is asked again on the next run, for a
    /// day; then the payment counts as failed and the cart is the buyer's again. Returns how
    /// many payments were resolved.
    pub async fn recover_payments(&self, grace: std::time::Duration) -> AppResult<usize> {
        use sea_orm::{QueryOrder, QuerySelect};
        let now = Utc::now();
        let cutoff = now - Duration::from_std(grace).unwrap_or(Duration::zero());
        let tx = self.core.db.read(crate::db::Scope::System).await?;
        let pending = payment::Entity::find()
            .filter(payment::Column::State.eq(payment_state::PENDING))
            .filter(payment::Column::CreatedAt.lt(cutoff))
            .filter(payment::Column::Intent.is_not_null())
            .order_by_asc(payment::Column::CreatedAt)
            .limit(100)
            .all(&tx)
            .await?;
        tx.commit().await?;
        let mut resolved = 0;
        for p in pending {
            let (Some(handler), Some(intent)) = (
                self.payment_handler(&p.method),
                p.intent
                    .as_deref()
                    .and_then(|i| serde_json::from_str::<Intent>(i).ok()),
            ) else {
                tracing::warn!(payment = %p.id, method = %p.method, "a pending payment that cannot be recovered");
                continue;
            };
            let outcome = handler
                .authorize(&PaymentRequest {
                    idempotency_key: p.id,
                    order_id: p.order_id,
                    order_code: None,
                    amount: money(p.amount, &p.currency),
                    metadata: serde_json::from_str(&p.metadata).unwrap_or_default(),
                    transaction_id: None,
                })
                .await;
            if outcome.is_err() && p.created_at > now - Duration::days(1) {
                continue;
            }
            let tenant = TenantId(p.tenant_id);
            match self
                .complete_intent(
                    tenant,
                    None,
                    p.order_id,
                    p.id,
                    &handler,
                    outcome,
                    &intent,
                    &Actor::System,
                )
                .await
            {
                Ok(_) => resolved += 1,
                Err(e) => {
                    tracing::warn!(payment = %p.id, error = ?e, "recovering a payment");
                }
            }
        }
        Ok(resolved)
    }

    async fn already_placed_by(
        &self,
        uow: &UnitOfWork,
        key: Option<&str>,
    ) -> AppResult<Option<order::Model>> {
        match key {
            Some(key) => self.cart.order_by_idempotency_key_in(uow, key).await,
            None => Ok(None),
        }
    }

    /// From `ArrangingPayment` to `Placed` (or `PendingApproval` when the approval guard asks
    /// for it), frozen with its code, then `PaymentAuthorized`.
    async fn finish_placement(
        &self,
        uow: &mut UnitOfWork,
        cart: order::Model,
        actor: &Actor,
        placement: &(dyn Fn(String) -> Placement + Sync),
        payment_id: Uuid,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        let code = self.next_code(uow).await?;
        let placing = placement(code.clone());
        // What guards see: the order as it will be placed, its payment authorised.
        let probe = order::Model {
            code: Some(code.clone()),
            payment_method: Some(placing.payment_method.clone()),
            ..cart.clone()
        };
        let mut snap = snapshot(&probe, cart.total);
        // Approval rules and spending limits (the month's spend counts this order).
        let requirements = self.approvals.requirements_in(uow, &probe, &snap).await?;
        if !requirements.is_empty() {
            snap.approval = Some(
                requirements
                    .iter()
                    .map(|r| r.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        let check = self.process.check(&TransitionContext {
            order: &snap,
            from: &cart.state,
            to: state::PLACED,
            actor,
            reason: None,
        });
        // A guard that holds the order (for approval, credit control, …) sends it to its
        // holding state instead; staff or approvers release it to `Placed` later.
        let mut target = state::PLACED.to_owned();
        let mut hold_reason = None;
        if let Err(TransitionRejection::Vetoed { veto, .. }) = &check
            && let Some(hold) = &veto.hold
            && self.process.allows(&cart.state, hold)
        {
            target = hold.clone();
            hold_reason = Some(veto.message.clone());
        }
        // The frozen order (code, addresses, payment method, key) in the change that places it.
        let placed_event = json!({ "orderId": cart.id, "code": code, "customerId": cart.customer_id,
            "companyId": cart.company_id, "locationId": cart.location_id, "lineCount": cart.line_count,
            "currency": cart.currency, "total": cart.total, "state": target,
            "paymentMethod": placing.payment_method, "poNumber": placing.po_number,
            "placedAt": placing.placed_at });
        let frozen = CartService::placement_sets(placing)?;
        let placed = match self
            .transition_with(
                uow,
                &cart,
                0,
                &target,
                actor,
                hold_reason.as_deref(),
                frozen,
                Some(("vectis.order.placed", placed_event)),
            )
            .await?
        {
            Ok(o) => o,
            Err(f) => return Ok(Err(f)),
        };
        if target != state::PLACED {
            if target == state::PENDING_APPROVAL && !requirements.is_empty() {
                let held = self
                    .approvals
                    .open_flow_in(uow, &placed, &requirements)
                    .await?;
                return Ok(Ok(held));
            }
            return Ok(Ok(placed));
        }
        self.authorized(uow, placed, actor, payment_id).await
    }

    /// From `Placed` to `PaymentAuthorized` once the payment is authorised (a process without
    /// that step keeps the order placed).
    pub(crate) async fn authorized(
        &self,
        uow: &mut UnitOfWork,
        placed: order::Model,
        actor: &Actor,
        payment_id: Uuid,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        let event = json!({ "orderId": placed.id, "code": placed.code, "paymentId": payment_id,
                            "method": placed.payment_method, "amount": placed.total,
                            "currency": placed.currency });
        match self
            .transition_with(
                uow,
                &placed,
                placed.total,
                state::PAYMENT_AUTHORIZED,
                actor,
                None,
                Vec::new(),
                Some(("vectis.order.payment_authorized", event)),
            )
            .await?
        {
            Ok(o) => Ok(Ok(o)),
            // A process without that step keeps the order placed.
            Err(_) => Ok(Ok(placed)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_payment(
        &self,
        uow: &UnitOfWork,
        id: Uuid,
        order: &order::Model,
        method: &str,
        state: &str,
        metadata: serde_json::Value,
        due_at: Option<chrono::DateTime<Utc>>,
        intent: Option<String>,
    ) -> AppResult<()> {
        let now = Utc::now();
        payment::Entity::insert(payment::ActiveModel {
            id: Set(id),
            tenant_id: Set(uow.tenant().0),
            created_at: Set(now),
            updated_at: Set(now),
            order_id: Set(order.id),
            method: Set(method.to_owned()),
            state: Set(state.to_owned()),
            currency: Set(order.currency.clone()),
            amount: Set(order.total),
            settled_amount: Set(0),
            refunded_amount: Set(0),
            transaction_id: Set(None),
            metadata: Set(redact_card(&metadata).to_string()),
            message: Set(None),
            due_at: Set(due_at),
            version: Set(1),
            intent: Set(intent),
        })
        .exec_without_returning(uow.tx())
        .await?;
        Ok(())
    }

    async fn update_payment(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        state: &str,
        transaction_id: Option<String>,
        message: Option<&str>,
    ) -> AppResult<payment::Model> {
        let mut sets = vec![
            (payment::Column::State, Expr::value(state.to_owned())),
            // The intent is spent once a result is recorded.
            (payment::Column::Intent, Expr::value(Option::<String>::None)),
        ];
        if let Some(t) = transaction_id {
            sets.push((payment::Column::TransactionId, Expr::value(t)));
        }
        if let Some(m) = message {
            sets.push((
                payment::Column::Message,
                Expr::value(m.chars().take(500).collect::<String>()),
            ));
        }
        uow.bump::<payment::Entity>(id, sets, "Payment").await
    }

    /// Cancels an order before anything shipped: the buyer (their own), a company user with
    /// `PLACE_ORDERS` in the order's company subtree, or staff with `ORDER_WRITE`. Its stock is
    /// released; authorised payments are released through their handlers (invoices give the
    /// company's credit back) and settled ones refunded.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: Uuid,
        reason: Option<String>,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        let reason = Self::cancel_reason(caller, reason)?;
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), caller.tenant, id)
            .await?
            .filter(|o| o.state != state::CART)
            .ok_or_else(|| AppError::not_found("Order", id))?;
        self.authorize(uow.tx(), caller, &order, true).await?;
        let (cancelled, given) = match self
            .cancel_in(&mut uow, caller, &order, reason.as_deref())
            .await?
        {
            Ok(done) => done,
            Err(f) => return Ok(Err(f)),
        };
        uow.commit().await?;
        self.finish_refunds(caller.tenant, Some(caller), given.refunds)
            .await?;
        Ok(Ok(cancelled))
    }

    /// Who may cancel (orders or lines) and the reason they give, checked before any lookup.
    pub(crate) fn cancel_reason(
        caller: &Caller,
        reason: Option<String>,
    ) -> AppResult<Option<String>> {
        let reason = crate::kernel::text::optional("reason", reason.as_deref(), 500)?;
        Self::buyer_or_staff(caller, "log in to cancel orders")?;
        Ok(reason)
    }

    /// Changes an order's buyer side may make (cancelling, returning): customers (whose access
    /// to the order is checked with it) or staff with `ORDER_WRITE`; anonymous callers are
    /// told to log in (`unauthenticated`).
    pub(crate) fn buyer_or_staff(caller: &Caller, unauthenticated: &str) -> AppResult<()> {
        match &caller.principal {
            Principal::Storefront => Err(AppError::Unauthenticated(unauthenticated.into())),
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                caller.require(Permission::OrderWrite)
            }
            Principal::Customer { .. } => Ok(()),
        }
    }

    /// Cancels locked `order` inside the caller's unit of work: the transition, the stock
    /// released, the payments given back (finish the refunds after the commit).
    pub(crate) async fn cancel_in(
        &self,
        uow: &mut UnitOfWork,
        caller: &Caller,
        order: &order::Model,
        reason: Option<&str>,
    ) -> AppResult<Result<(order::Model, super::after_sale::refunds::GivenBack), TransitionFailure>>
    {
        let payments = self
            .payments_in(uow.tx(), caller.tenant, vec![order.id])
            .await?;
        let paid: i64 = payments
            .iter()
            .filter(|p| p.state == payment_state::AUTHORIZED || p.state == payment_state::SETTLED)
            .map(|p| p.amount)
            .sum();
        let cancelled = match self
            .transition(
                uow,
                order,
                paid,
                state::CANCELLED,
                &actor_of(caller),
                reason,
            )
            .await?
        {
            Ok(o) => o,
            Err(f) => return Ok(Err(f)),
        };
        self.inventory
            .release_in(uow, order.id, cancelled.version, "cancelled", None)
            .await?;
        self.approvals.unspend_in(uow, order, order.total).await?;
        let everything = payments
            .iter()
            .map(|p| match p.state.as_str() {
                payment_state::AUTHORIZED => p.amount,
                payment_state::SETTLED => p.settled_amount - p.refunded_amount,
                _ => 0,
            })
            .sum();
        let given = self
            .give_back_in(
                uow,
                order,
                super::after_sale::refunds::GiveBack {
                    amount: everything,
                    reason: Some(reason.unwrap_or("order cancelled")),
                    by: caller.actor(),
                    ..Default::default()
                },
            )
            .await?
            .unwrap_or_default();
        Ok(Ok((cancelled, given)))
    }

    /// Reserves stock for the caller's cart for the tenant's checkout reservation time
    /// (`checkoutReservationMinutes`), replacing an earlier reservation of the cart; placing
    /// the order within it turns it into the order's reservation, else it is released when it
    /// expires. Lines short of stock reserve nothing.
    pub async fn reserve_checkout(
        &self,
        caller: &Caller,
        token: Option<&str>,
    ) -> AppResult<Result<(order::Model, chrono::DateTime<Utc>), Vec<Shortage>>> {
        // Buyers only (the cart's own rules), before anything about the shop's settings.
        CartService::cart_key_of(caller, token)?;
        CartService::require_buyer(caller)?;
        let settings = self.inventory.settings(caller.tenant).await?;
        let Some(minutes) = settings.checkout_reservation_minutes else {
            return Err(AppError::Rejected {
                code: "CHECKOUT_RESERVATIONS_OFF",
                message: "this shop reserves stock when an order is placed".into(),
            });
        };
        let buyer = self.pricing.buyer(caller).await?;
        let mut uow = self.core.begin_for(caller).await?;
        let cart = self
            .cart
            .lock_active_in(&uow, caller, token)
            .await?
            .filter(|c| c.state == state::CART && c.line_count > 0)
            .ok_or_else(|| AppError::Rejected {
                code: "EMPTY_CART",
                message: "there is nothing in the cart to reserve".into(),
            })?;
        let cart = uow
            .bump::<order::Entity>(cart.id, Vec::new(), "Order")
            .await?;
        let lines = self.cart.stock_lines_in(&uow, &cart).await?;
        let until = Utc::now() + Duration::minutes(i64::from(minutes));
        let preferred = buyer
            .location
            .as_ref()
            .and_then(|l| l.preferred_stock_location_id);
        if let Err(short) = self
            .inventory
            .reserve_in(
                &mut uow,
                cart.id,
                cart.version,
                &lines,
                preferred,
                Some(until),
            )
            .await?
        {
            return Ok(Err(short));
        }
        uow.commit().await?;
        Ok(Ok((cart, until)))
    }

    /// Releases checkout reservations that expired (of carts not placed since); returns how
    /// many carts' reservations were released.
    pub async fn release_expired_reservations(&self) -> AppResult<usize> {
        let expired = self.inventory.expired_reservations(Utc::now(), 100).await?;
        let mut released = 0;
        for (tenant, order_id) in expired {
            let mut uow = self.core.begin(tenant, None).await?;
            let Some(cart) =
                crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, order_id).await?
            else {
                continue;
            };
            // Placed meanwhile: the order's own reservation replaced the checkout one.
            if cart.state != state::CART {
                continue;
            }
            let cart = uow
                .bump::<order::Entity>(cart.id, Vec::new(), "Order")
                .await?;
            self.inventory
                .release_in(
                    &mut uow,
                    cart.id,
                    cart.version,
                    "checkout reservation expired",
                    None,
                )
                .await?;
            uow.commit().await?;
            released += 1;
        }
        Ok(released)
    }

    /// Ships `lines` of an order from stock location `location` (`ORDER_WRITE`): reserved
    /// stock there becomes shipped stock, and the order moves to `PartiallyShipped` or, when
    /// every unit has shipped, `Shipped` through the order process.
    pub async fn ship(
        &self,
        caller: &Caller,
        id: Uuid,
        location: &str,
        lines: Vec<ShipLine>,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> AppResult<ShipOutcome> {
        caller.require(Permission::OrderWrite)?;
        let carrier = crate::kernel::text::optional("carrier", carrier.as_deref(), 100)?;
        let tracking =
            crate::kernel::text::optional("trackingNumber", tracking_number.as_deref(), 200)?;
        if lines.len() > crate::cart::service::MAX_CART_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {} lines", crate::cart::service::MAX_CART_LINES),
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), caller.tenant, id)
            .await?
            .filter(|o| o.state != state::CART)
            .ok_or_else(|| AppError::not_found("Order", id))?;
        let order_lines = self.cart.stock_lines_in(&uow, &order).await?;
        let shipped = match self
            .inventory
            .ship_in(
                &mut uow,
                order.id,
                &order_lines,
                location,
                &lines,
                carrier,
                tracking,
            )
            .await?
        {
            Ok(s) => s,
            Err(refusals) => return Ok(ShipOutcome::Refused(refusals)),
        };
        let to = if shipped.complete {
            state::SHIPPED
        } else {
            state::PARTIALLY_SHIPPED
        };
        let units: i64 = lines.iter().map(|l| l.quantity).sum();
        let event = json!({ "orderId": order.id, "code": order.code,
            "shipmentId": shipped.shipment.id, "locationId": shipped.shipment.location_id,
            "carrier": shipped.shipment.carrier, "trackingNumber": shipped.shipment.tracking_number,
            "lineCount": lines.len(), "quantity": units, "complete": shipped.complete });
        let moved = match self
            .transition_with(
                &mut uow,
                &order,
                order.total,
                to,
                &actor_of(caller),
                None,
                Vec::new(),
                Some(("vectis.order.shipped", event)),
            )
            .await?
        {
            Ok(o) => o,
            Err(f) => return Ok(ShipOutcome::Transition(f)),
        };
        uow.commit().await?;
        Ok(ShipOutcome::Shipped(Box::new((moved, shipped.shipment))))
    }

    /// Records that a shipment arrived (`ORDER_WRITE`); when every shipment of a fully shipped
    /// order has arrived, the order moves to `Delivered`.
    pub async fn deliver(
        &self,
        caller: &Caller,
        shipment_id: Uuid,
    ) -> AppResult<Result<crate::inventory::entity::shipment::Model, TransitionFailure>> {
        caller.require(Permission::OrderWrite)?;
        let found = self
            .inventory
            .shipment(caller.tenant, shipment_id)
            .await?
            .ok_or_else(|| AppError::not_found("Shipment", shipment_id))?;
        let mut uow = self.core.begin_for(caller).await?;
        let order =
            crate::db::lock::lock::<order::Entity, _>(uow.tx(), caller.tenant, found.order_id)
                .await?
                .ok_or_else(|| AppError::not_found("Shipment", shipment_id))?;
        // Read again under the order's lock: a concurrent delivery may have recorded it.
        let current = crate::inventory::entity::shipment::Entity::find_by_id(shipment_id)
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Shipment", shipment_id))?;
        let was_delivered = current.state == crate::inventory::fulfil::shipment_state::DELIVERED;
        let (delivered, all) = self.inventory.deliver_in(&uow, &current).await?;
        if was_delivered {
            return Ok(Ok(delivered));
        }
        if all && order.state == state::SHIPPED {
            let event =
                json!({ "orderId": order.id, "code": order.code, "shipmentId": shipment_id });
            if let Err(f) = self
                .transition_with(
                    &mut uow,
                    &order,
                    order.total,
                    state::DELIVERED,
                    &actor_of(caller),
                    None,
                    Vec::new(),
                    Some(("vectis.order.delivered", event)),
                )
                .await?
            {
                return Ok(Err(f));
            }
        } else {
            uow.change::<order::Entity>(
                order.id,
                Vec::new(),
                "vectis.order.shipment_delivered",
                |o| json!({ "orderId": o.id, "code": o.code, "shipmentId": shipment_id }),
            )
            .await?;
        }
        uow.commit().await?;
        Ok(Ok(delivered))
    }

    /// Records that a payment was taken (staff with `ORDER_WRITE`): an invoice paid by the
    /// company (its credit exposure drops) or a card authorisation captured. The order moves
    /// to `PaymentSettled` when it is waiting in `PaymentAuthorized`. A payment settles once:
    /// of concurrent calls one does it, the others get `PAYMENT_NOT_SETTLEABLE`.
    pub async fn settle(
        &self,
        caller: &Caller,
        payment_id: Uuid,
    ) -> AppResult<Result<payment::Model, PaymentFailure>> {
        caller.require(Permission::OrderWrite)?;
        let tenant = caller.tenant;
        // Read what the provider needs, then call it outside any transaction.
        let current = self.payment_of(tenant, payment_id).await?;
        if current.state != payment_state::AUTHORIZED {
            return Ok(Err(PaymentFailure::not_settleable(&current)));
        }
        let handler = self.handler_of(&current)?;
        let outcome = handler
            .settle(&Self::request_of(&current))
            .await
            .map_err(|e| AppError::Rejected {
                code: "PAYMENT_PROVIDER_UNAVAILABLE",
                message: format!("the payment provider did not answer ({e}); try again"),
            })?;
        if let PaymentOutcome::Declined { message } = outcome {
            return Ok(Err(PaymentFailure {
                code: "PAYMENT_DECLINED".into(),
                message,
            }));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let (order, locked) = self.lock_payment(&uow, tenant, &current).await?;
        if locked.state != payment_state::AUTHORIZED {
            return Ok(Err(PaymentFailure::not_settleable(&locked)));
        }
        let settled = uow
            .bump::<payment::Entity>(
                payment_id,
                vec![
                    (payment::Column::State, Expr::value(payment_state::SETTLED)),
                    (payment::Column::SettledAmount, Expr::value(locked.amount)),
                ],
                "Payment",
            )
            .await?;
        if handler.kind() == PaymentKind::OnAccount
            && let Some(holder) = credit_holder(&locked)
        {
            CompaniesService::release_credit_in(uow.tx(), tenant, holder, locked.amount).await?;
        }
        let event = json!({ "orderId": order.id, "code": order.code, "paymentId": payment_id,
                            "method": locked.method, "amount": locked.amount, "currency": locked.currency });
        if order.state == state::PAYMENT_AUTHORIZED
            && self.process.allows(&order.state, state::PAYMENT_SETTLED)
        {
            if let Err(f) = self
                .transition_with(
                    &mut uow,
                    &order,
                    locked.amount,
                    state::PAYMENT_SETTLED,
                    &actor_of(caller),
                    None,
                    Vec::new(),
                    Some(("vectis.order.payment_settled", event)),
                )
                .await?
            {
                return Ok(Err(PaymentFailure {
                    code: f.code,
                    message: f.message,
                }));
            }
        } else {
            // Shipped on account and paid later: the order's state stays, the event tells.
            let state = order.state.clone();
            uow.change::<order::Entity>(
                order.id,
                Vec::new(),
                "vectis.order.payment_settled",
                |_| {
                    let mut e = event;
                    e["from"] = json!(state);
                    e["to"] = json!(state);
                    e
                },
            )
            .await?;
        }
        uow.commit().await?;
        Ok(Ok(settled))
    }

    /// Pays back `amount` of a settled payment (staff with `ORDER_WRITE`); never more than
    /// what was taken and not yet refunded (`REFUND_EXCEEDS_PAYMENT`), even when called many
    /// times at once. The refund is recorded before the handler is asked (see
    /// [`super::after_sale::refunds`]); a provider refusal is `PAYMENT_DECLINED`.
    pub async fn refund(
        &self,
        caller: &Caller,
        payment_id: Uuid,
        amount: i64,
    ) -> AppResult<Result<payment::Model, PaymentFailure>> {
        caller.require(Permission::OrderWrite)?;
        if amount <= 0 {
            return Err(AppError::validation("amount", "must be positive"));
        }
        let tenant = caller.tenant;
        let current = self.payment_of(tenant, payment_id).await?;
        let mut uow = self.core.begin_for(caller).await?;
        let (order, _) = self.lock_payment(&uow, tenant, &current).await?;
        let given = match self
            .give_back_in(
                &mut uow,
                &order,
                super::after_sale::refunds::GiveBack {
                    amount,
                    payment: Some(payment_id),
                    strict: true,
                    by: caller.staff_id(),
                    ..Default::default()
                },
            )
            .await?
        {
            Ok(g) => g,
            Err(f) => return Ok(Err(f)),
        };
        uow.commit().await?;
        let done = self
            .finish_refunds(tenant, Some(caller), given.refunds)
            .await?;
        if let Some(failed) = done
            .iter()
            .find(|r| r.state == super::entity::refund_state::FAILED)
        {
            return Ok(Err(PaymentFailure {
                code: "PAYMENT_DECLINED".into(),
                message: failed.message.clone().unwrap_or_default(),
            }));
        }
        Ok(Ok(self.payment_of(tenant, payment_id).await?))
    }

    /// Moves an order to `to` on a staff user's say (`ORDER_WRITE`), for the steps nobody
    /// else takes (releasing an order held by an extension's state, `Delivered`, …).
    /// Placement, payments and cancellation have their own operations.
    pub async fn transition_by_staff(
        &self,
        caller: &Caller,
        id: Uuid,
        to: &str,
        reason: Option<String>,
    ) -> AppResult<Result<order::Model, TransitionFailure>> {
        caller.require(Permission::OrderWrite)?;
        let to = to.trim();
        if !self.process.knows(to) {
            return Err(AppError::validation(
                "state",
                format!("`{to}` is not a state of the order process"),
            ));
        }
        let managed = [
            state::CART,
            state::ARRANGING_PAYMENT,
            state::PLACED,
            state::PAYMENT_AUTHORIZED,
            state::PAYMENT_SETTLED,
            state::CANCELLED,
        ];
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), caller.tenant, id)
            .await?
            .filter(|o| o.state != state::CART)
            .ok_or_else(|| AppError::not_found("Order", id))?;
        // Releasing a held order (from an approval or an extension's review state) places it.
        let release = to == state::PLACED
            && order.state != state::ARRANGING_PAYMENT
            && self.process.allows(&order.state, state::PLACED);
        if managed.contains(&to) && !release && self.process.allows(&order.state, to) {
            return Ok(Err(TransitionFailure {
                code: "MANAGED_TRANSITION".into(),
                message: format!(
                    "{to} is reached through its own operation (placeOrder, settlePayment, cancelOrder)"
                ),
                from: order.state.clone(),
                to: to.to_owned(),
            }));
        }
        let payments = self.payments_in(uow.tx(), caller.tenant, vec![id]).await?;
        let paid = payments
            .iter()
            .filter(|p| p.state == payment_state::AUTHORIZED || p.state == payment_state::SETTLED)
            .map(|p| p.amount)
            .sum();
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            return Err(AppError::validation(
                "reason",
                "is longer than 500 characters",
            ));
        }
        let actor = actor_of(caller);
        let mut moved = self
            .transition(&mut uow, &order, paid, to, &actor, reason.as_deref())
            .await?;
        if release
            && let Ok(placed) = &moved
            && let Some(p) = payments
                .iter()
                .find(|p| p.state == payment_state::AUTHORIZED)
        {
            moved = self
                .authorized(&mut uow, placed.clone(), &actor, p.id)
                .await?;
        }
        if moved.is_ok() {
            uow.commit().await?;
        }
        Ok(moved)
    }

    async fn payment_of(&self, tenant: TenantId, id: Uuid) -> AppResult<payment::Model> {
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(payment::Entity::find_by_id(id)
                        .filter(payment::Column::TenantId.eq(tenant.0))
                        .one(tx)
                        .await?)
                })
            })
            .await?
            .ok_or_else(|| AppError::not_found("Payment", id))
    }

    /// The order (locked first: it is the aggregate) and the payment, locked.
    pub(crate) async fn lock_payment(
        &self,
        uow: &UnitOfWork,
        tenant: TenantId,
        p: &payment::Model,
    ) -> AppResult<(order::Model, payment::Model)> {
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, p.order_id)
            .await?
            .ok_or_else(|| AppError::not_found("Order", p.order_id))?;
        let locked = crate::db::lock::lock::<payment::Entity, _>(uow.tx(), tenant, p.id)
            .await?
            .ok_or_else(|| AppError::not_found("Payment", p.id))?;
        Ok((order, locked))
    }

    pub(crate) fn handler_of(
        &self,
        p: &payment::Model,
    ) -> AppResult<Arc<dyn PaymentMethodHandler>> {
        self.payment_handler(&p.method).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("no payment method handler `{}`", p.method))
        })
    }

    fn request_of(p: &payment::Model) -> PaymentRequest {
        PaymentRequest {
            idempotency_key: p.id,
            order_id: p.order_id,
            order_code: None,
            amount: money(p.amount, &p.currency),
            metadata: serde_json::from_str(&p.metadata).unwrap_or_default(),
            transaction_id: p.transaction_id.clone(),
        }
    }

    /// Copies an order's lines into the caller's cart (adding to what is there), reporting the
    /// lines that can no longer be bought and those whose price differs from the order's.
    pub async fn reorder(
        &self,
        caller: &Caller,
        token: Option<&str>,
        id: Uuid,
    ) -> AppResult<ReorderOutcome> {
        // Orders go back into the caller's own cart: customers only, checked before any lookup.
        match caller.principal {
            crate::auth::Principal::Customer { .. } => {}
            crate::auth::Principal::Storefront => {
                return Err(AppError::Unauthenticated(
                    "log in as a customer to reorder".into(),
                ));
            }
            _ => {
                return Err(AppError::Rejected {
                    code: crate::error::code::FORBIDDEN,
                    message: "orders are reordered into a customer's cart".into(),
                });
            }
        }
        let order = self.order(caller, id).await?;
        let all = PageRequest {
            first: crate::cart::service::MAX_CART_LINES as u64,
            after: None,
        };
        let lines = self
            .cart
            .lines(caller.tenant, order.id, all, Default::default())
            .await?
            .lines;
        // Lines cancelled in full are not ordered again; errors keep the order's positions.
        let kept: Vec<usize> = (0..lines.len())
            .filter(|i| lines[*i].0.current_quantity() > 0)
            .collect();
        let inputs = kept
            .iter()
            .map(|i| crate::cart::service::LineInput {
                variant_id: Some(lines[*i].0.variant_id),
                sku: None,
                quantity: lines[*i].0.current_quantity(),
            })
            .collect();
        let outcome = self
            .cart
            .change(
                caller,
                token,
                Some(&order.currency),
                crate::cart::service::CartChange::AddLines(inputs),
                true,
            )
            .await?;
        let mut changes = Vec::new();
        if let Some(cart) = outcome.cart.as_ref().filter(|_| outcome.applied) {
            let with_variants = crate::cart::service::LineRelations {
                variants: true,
                products: false,
                include_archived: true,
            };
            let now = self
                .cart
                .lines(caller.tenant, cart.id, all, with_variants)
                .await?
                .lines;
            let by_variant: std::collections::HashMap<Uuid, _> =
                now.iter().map(|(l, v)| (l.variant_id, (l, v))).collect();
            for (old, _) in &lines {
                if let Some((new, variant)) = by_variant.get(&old.variant_id)
                    && new.unit_price != old.unit_price
                {
                    changes.push(PriceChange {
                        line_id: new.id,
                        sku: variant.as_ref().map(|v| v.sku.clone()).unwrap_or_default(),
                        quantity: new.quantity,
                        old_unit_price: old.unit_price,
                        new_unit_price: Some(new.unit_price),
                    });
                }
            }
        }
        Ok(ReorderOutcome {
            cart: outcome.cart,
            applied: outcome.applied,
            errors: outcome
                .errors
                .into_iter()
                .map(|mut e| {
                    if let Some(i) = usize::try_from(e.index).ok().and_then(|i| kept.get(i)) {
                        e.index = i32::try_from(*i).unwrap_or(e.index);
                    }
                    e
                })
                .collect(),
            changes,
            token: outcome.token,
        })
    }

    /// Whether `caller` may see (or, with `change`, cancel) `order`: its buyer, a company user
    /// with `VIEW_ORDERS` (`PLACE_ORDERS` to change) in the order company's subtree, a sales rep
    /// assigned to the company, staff with `ORDER_READ` (`ORDER_WRITE`). Others get `NOT_FOUND`.
    pub async fn authorize<C: ConnectionTrait>(
        &self,
        tx: &C,
        caller: &Caller,
        order: &order::Model,
        change: bool,
    ) -> AppResult<()> {
        let not_found = || AppError::not_found("Order", order.id);
        match &caller.principal {
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                let need = if change {
                    Permission::OrderWrite
                } else {
                    Permission::OrderRead
                };
                if caller.has(need) {
                    return Ok(());
                }
                if !change
                    && caller.has(Permission::Impersonate)
                    && let (Some(staff), Some(company)) = (caller.staff_id(), order.company_id)
                    && self
                        .companies
                        .rep_covers(caller.tenant, staff, company)
                        .await?
                {
                    return Ok(());
                }
                Err(AppError::Forbidden(crate::auth::permission_name(need)))
            }
            Principal::Customer { id, membership, .. } => {
                if order.customer_id == Some(*id) {
                    return Ok(());
                }
                let (Some(m), Some(company)) = (membership, order.company_id) else {
                    return Err(not_found());
                };
                let need = if change {
                    CompanyPermission::PlaceOrders
                } else {
                    CompanyPermission::ViewOrders
                };
                if !m.can(need) {
                    return Err(not_found());
                }
                if self
                    .companies
                    .within(tx, caller.tenant, m.company_id, company)
                    .await?
                {
                    Ok(())
                } else {
                    Err(not_found())
                }
            }
            Principal::Storefront => Err(AppError::Unauthenticated("log in to see orders".into())),
        }
    }

    /// An order the caller may see (never a cart).
    pub async fn order(&self, caller: &Caller, id: Uuid) -> AppResult<order::Model> {
        let tx = self
            .core
            .db
            .read(crate::db::Scope::Tenant(caller.tenant))
            .await?;
        let order = order::Entity::find_by_id(id)
            .filter(order::Column::TenantId.eq(caller.tenant.0))
            .filter(order::Column::State.ne(state::CART))
            .one(&tx)
            .await?
            .ok_or_else(|| AppError::not_found("Order", id))?;
        self.authorize(&tx, caller, &order, false).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// A page of the orders the caller may see, newest first by placement: a customer's own
    /// (`mine`), or for staff (`ORDER_READ`), company users (`VIEW_ORDERS`, their subtree) and
    /// sales reps (their assigned companies) those matching `filter`.
    pub async fn list(
        &self,
        caller: &Caller,
        mine: bool,
        filter: OrderFilter,
        page: PageRequest,
    ) -> AppResult<Page<order::Model>> {
        let tenant = caller.tenant;
        let backend = self.core.db.backend();
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let mut q = order::Entity::find()
            .filter(order::Column::TenantId.eq(tenant.0))
            .filter(order::Column::PlacedAt.is_not_null());
        if mine {
            let (customer, _) = caller.require_customer()?;
            q = q.filter(order::Column::CustomerId.eq(customer));
        } else {
            match &caller.principal {
                Principal::Staff { .. } | Principal::ApiKey { .. }
                    if caller.has(Permission::OrderRead) => {}
                Principal::Staff { id, .. } if caller.has(Permission::Impersonate) => {
                    let companies = self.companies.covered_by_rep(&tx, tenant, *id).await?;
                    q = q.filter(crate::db::id_in(
                        backend,
                        (order::Entity, order::Column::CompanyId),
                        companies,
                    ));
                }
                Principal::Customer {
                    membership: Some(m),
                    ..
                } if m.can(CompanyPermission::ViewOrders) => {
                    let companies = self.companies.subtree_of(&tx, tenant, m.company_id).await?;
                    q = q.filter(crate::db::id_in(
                        backend,
                        (order::Entity, order::Column::CompanyId),
                        companies,
                    ));
                }
                Principal::Storefront => {
                    return Err(AppError::Unauthenticated("log in to see orders".into()));
                }
                _ => return Err(AppError::Forbidden("ORDER_READ".into())),
            }
        }
        if let Some(s) = &filter.state {
            q = q.filter(order::Column::State.eq(s.clone()));
        }
        if let Some(c) = filter.company_id {
            q = q.filter(order::Column::CompanyId.eq(c));
        }
        if let Some(c) = filter.customer_id {
            q = q.filter(order::Column::CustomerId.eq(c));
        }
        if let Some(c) = &filter.code {
            q = q.filter(order::Column::Code.eq(c.trim().to_owned()));
        }
        if let Some(p) = &filter.po_number {
            q = q.filter(order::Column::PoNumber.eq(p.trim().to_owned()));
        }
        if let Some(from) = filter.placed_from {
            q = q.filter(order::Column::PlacedAt.gte(from));
        }
        if let Some(until) = filter.placed_until {
            q = q.filter(order::Column::PlacedAt.lt(until));
        }
        // Newest first: order ids are UUID v7, so id order is creation order.
        if let Some(after) = page.after {
            q = q.filter(order::Column::Id.lt(after));
        }
        let rows = sea_orm::QuerySelect::limit(q.order_by_desc(order::Column::Id), page.limit())
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(page.page(rows, 0))
    }

    /// Payments of orders (for loaders and checks), oldest first.
    pub async fn payments_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<payment::Model>> {
        let backend = self.core.db.backend();
        Ok(payment::Entity::find()
            .filter(payment::Column::TenantId.eq(tenant.0))
            .filter(crate::db::id_in(
                backend,
                (payment::Entity, payment::Column::OrderId),
                orders,
            ))
            .order_by_asc(payment::Column::Id)
            .all(tx)
            .await?)
    }

    /// Payments of orders in their own transaction.
    pub async fn payments(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<payment::Model>> {
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let rows = self.payments_in(&tx, tenant, orders).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Transitions of orders, oldest first.
    pub async fn history(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<transition::Model>> {
        let backend = self.core.db.backend();
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let rows = transition::Entity::find()
            .filter(transition::Column::TenantId.eq(tenant.0))
            .filter(crate::db::id_in(
                backend,
                (transition::Entity, transition::Column::OrderId),
                orders,
            ))
            .order_by_asc(transition::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Payment metadata as stored: card numbers keep their last four digits only.
fn redact_card(metadata: &serde_json::Value) -> serde_json::Value {
    let mut m = metadata.clone();
    if let Some(card) = m.get_mut("cardNumber")
        && let Some(number) = card.as_str()
    {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        let last4 = &digits[digits.len().saturating_sub(4)..];
        *card = json!(format!("…{last4}"));
    }
    m
}
