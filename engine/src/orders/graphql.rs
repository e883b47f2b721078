//! Orders GraphQL: the order process, placing orders (typed results), reading orders and their
//! lines, history and payments, and cancelling.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{payment, transition};
use super::loader::{
    AllocationsOf, HistoryOf, PaymentsOf, RefundsOf, ReturnsOf, ShipmentsOf, load,
};
use super::service::{OrderFilter, PlaceInput, PlaceOutcome, TransitionFailure};
use crate::cart::CartToken;
use crate::cart::entity::order;
use crate::cart::graphql::{
    CartAddress, CartLine, CartLineConnectionFields, CartTaxSummary, CartTotals, line_connection,
};
use crate::cart::service::{PriceChange, StoredTaxSummary};
use crate::graphql::address::PostalAddressInput;
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::{Int64, MoneyObject};

/// The `Idempotency-Key` header of a request, when sent.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

fn currency(o: &order::Model) -> CurrencyCode {
    o.currency.parse().unwrap_or(CurrencyCode::EUR)
}

fn money(amount: i64, c: CurrencyCode) -> MoneyObject {
    Money::new(amount, c).into()
}

fn address(json: Option<&str>) -> Option<CartAddress> {
    let a: crate::kernel::PostalAddress = serde_json::from_str(json?).ok()?;
    Some(CartAddress {
        street_line1: a.street_line1,
        street_line2: a.street_line2,
        city: a.city,
        postal_code: a.postal_code,
        region: a.region,
        country_code: a.country_code,
    })
}

/// A placed order: everything it was placed with, frozen (prices, taxes, addresses, the
/// buyer's company and location), its state in the order process, history and payments.
pub struct OrderObject(pub Box<order::Model>);

impl From<order::Model> for OrderObject {
    fn from(o: order::Model) -> Self {
        OrderObject(Box::new(o))
    }
}

#[Object(name = "Order")]
impl OrderObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Human-readable number, e.g. `VX-2026-000123`.
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// State in the order process.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// The states it can move to next.
    async fn next_states(&self, ctx: &Context<'_>) -> Vec<String> {
        services(ctx).orders.process().next(&self.0.state)
    }
    /// When it was placed.
    async fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.0.placed_at
    }
    /// The buyer.
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(id)
    }
    /// A guest's email.
    async fn email(&self) -> Option<&str> {
        self.0.customer_email.as_deref()
    }
    /// The buyer's company.
    async fn company_id(&self) -> Option<ID> {
        self.0.company_id.map(id)
    }
    /// The company location it was placed for.
    async fn location_id(&self) -> Option<ID> {
        self.0.location_id.map(id)
    }
    /// The buyer's purchase-order number.
    async fn purchase_order_number(&self) -> Option<&str> {
        self.0.po_number.as_deref()
    }
    /// The payment method's code.
    async fn payment_method(&self) -> Option<&str> {
        self.0.payment_method.as_deref()
    }
    /// ISO 4217 currency of every amount.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Whether line prices include tax.
    async fn prices_include_tax(&self) -> bool {
        self.0.prices_include_tax
    }
    /// Number of lines.
    async fn line_count(&self) -> i64 {
        self.0.line_count
    }
    /// Totals as placed.
    async fn totals(&self) -> CartTotals {
        let c = currency(&self.0);
        CartTotals {
            subtotal: money(self.0.subtotal, c),
            discounts: money(self.0.discount, c),
            shipping: money(self.0.shipping, c),
            tax: money(self.0.tax, c),
            total: money(self.0.total, c),
        }
    }
    /// Taxable amount and tax per tax category.
    async fn tax_summary(&self) -> Vec<CartTaxSummary> {
        let c = currency(&self.0);
        serde_json::from_str::<Vec<StoredTaxSummary>>(&self.0.tax_summary)
            .unwrap_or_default()
            .into_iter()
            .map(|t| CartTaxSummary {
                category: t.category,
                amount: money(t.amount, c),
                tax: money(t.tax, c),
            })
            .collect()
    }
    /// Ship-to.
    async fn shipping_address(&self) -> Option<CartAddress> {
        address(self.0.shipping_address.as_deref())
    }
    /// Bill-to.
    async fn billing_address(&self) -> Option<CartAddress> {
        address(self.0.billing_address.as_deref())
    }
    /// The shipping method.
    async fn shipping_method(&self) -> Option<&str> {
        self.0.shipping_method.as_deref()
    }
    /// Version, incremented by every change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Lines as placed, in the order they were added (up to 10,000 per page; variants and
    /// products load in one batch each, as for carts).
    async fn lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Page size, 0-10000.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, CartLine, CartLineConnectionFields>> {
        line_connection(ctx, &self.0, first, after).await
    }
    /// Every transition, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<OrderTransitionObject>> {
        Ok(load(ctx, HistoryOf(self.0.id))
            .await?
            .into_iter()
            .map(OrderTransitionObject)
            .collect())
    }
    /// Shipments, oldest first, with their lines.
    async fn shipments(&self, ctx: &Context<'_>) -> Result<Vec<ShipmentObject>> {
        Ok(load(ctx, ShipmentsOf(self.0.id))
            .await?
            .into_iter()
            .map(|(s, lines)| ShipmentObject(s, lines))
            .collect())
    }
    /// Where its stock is reserved: per line and location, reserved, shipped and released
    /// units.
    async fn stock_allocations(&self, ctx: &Context<'_>) -> Result<Vec<StockAllocationObject>> {
        Ok(load(ctx, AllocationsOf(self.0.id))
            .await?
            .into_iter()
            .map(StockAllocationObject)
            .collect())
    }
    /// Returns, oldest first, with their lines.
    async fn returns(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::after_sale::graphql::OrderReturnObject>> {
        Ok(load(ctx, ReturnsOf(self.0.id))
            .await?
            .into_iter()
            .map(|(r, l)| {
                super::after_sale::graphql::OrderReturnObject(r, l, self.0.currency.clone())
            })
            .collect())
    }
    /// Refunds and released amounts of its payments, oldest first.
    async fn refunds(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::after_sale::graphql::RefundObject>> {
        Ok(load(ctx, RefundsOf(self.0.id))
            .await?
            .into_iter()
            .map(super::after_sale::graphql::RefundObject)
            .collect())
    }
    /// Its approval, when it needed one: what is asked for, how far each requirement got,
    /// and every decision.
    async fn approval(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<crate::approvals::graphql::OrderApproval>> {
        crate::approvals::graphql::order_approval(ctx, self.0.id).await
    }
    /// Payments, oldest first.
    async fn payments(&self, ctx: &Context<'_>) -> Result<Vec<PaymentObject>> {
        Ok(load(ctx, PaymentsOf(self.0.id))
            .await?
            .into_iter()
            .map(PaymentObject)
            .collect())
    }
}

/// Units of an order line reserved at a stock location.
pub struct StockAllocationObject(pub crate::inventory::entity::allocation::Model);

#[Object(name = "StockAllocation")]
impl StockAllocationObject {
    /// The order line.
    async fn line_id(&self) -> ID {
        id(self.0.line_id)
    }
    /// The stock location.
    async fn location_id(&self) -> ID {
        id(self.0.location_id)
    }
    /// Units allocated.
    async fn quantity(&self) -> Int64 {
        Int64(self.0.quantity)
    }
    /// Of them, shipped.
    async fn shipped(&self) -> Int64 {
        Int64(self.0.shipped)
    }
    /// Of them, released (cancelled, expired).
    async fn released(&self) -> Int64 {
        Int64(self.0.released)
    }
    /// When a checkout reservation expires (null for an order's).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
}

/// Some lines of an order, sent from one stock location.
pub struct ShipmentObject(
    pub crate::inventory::entity::shipment::Model,
    pub Vec<crate::inventory::entity::shipment_line::Model>,
);

#[Object(name = "Shipment")]
impl ShipmentObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The order.
    async fn order_id(&self) -> ID {
        id(self.0.order_id)
    }
    /// The stock location it left.
    async fn location_id(&self) -> ID {
        id(self.0.location_id)
    }
    /// Carrier.
    async fn carrier(&self) -> Option<&str> {
        self.0.carrier.as_deref()
    }
    /// Tracking number.
    async fn tracking_number(&self) -> Option<&str> {
        self.0.tracking_number.as_deref()
    }
    /// `Shipped` or `Delivered`.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// When it shipped.
    async fn shipped_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it arrived.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// Lines and quantities.
    async fn lines(&self) -> Vec<ShipmentLine> {
        self.1
            .iter()
            .map(|l| ShipmentLine {
                line_id: id(l.line_id),
                quantity: Int64(l.quantity),
            })
            .collect()
    }
}

/// Units of an order line in a shipment.
#[derive(SimpleObject)]
pub struct ShipmentLine {
    /// The order line.
    pub line_id: ID,
    /// Units.
    pub quantity: Int64,
}

/// Lines that cannot ship as asked; nothing was shipped.
#[derive(SimpleObject)]
pub struct ShipmentError {
    /// `SHIPMENT_REFUSED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The lines at fault.
    pub lines: Vec<super::after_sale::graphql::OrderLineProblem>,
}

/// The result of `createShipment`.
#[derive(Union)]
pub enum CreateShipmentResult {
    /// Shipped.
    Shipment(ShipmentObject),
    /// Lines refused.
    Refused(ShipmentError),
    /// The order process refused (e.g. not paid or authorised yet).
    Transition(TransitionError),
}

/// The result of `markShipmentDelivered`.
#[derive(Union)]
pub enum MarkShipmentDeliveredResult {
    /// The shipment.
    Shipment(ShipmentObject),
    /// The order process refused.
    Transition(TransitionError),
}

/// Units of an order line to ship.
#[derive(InputObject)]
pub struct ShipmentLineInput {
    /// The order line.
    pub line_id: ID,
    /// Units (1 or more).
    pub quantity: Int64,
}

/// One step of an order through its process.
pub struct OrderTransitionObject(pub transition::Model);

#[Object(name = "OrderTransition")]
impl OrderTransitionObject {
    /// From.
    async fn from(&self) -> &str {
        &self.0.from_state
    }
    /// To.
    async fn to(&self) -> &str {
        &self.0.to_state
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who: the staff user or customer (none for the engine itself).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.map(id)
    }
    /// The sales rep acting for the customer, if one did.
    async fn acting_staff_id(&self) -> Option<ID> {
        self.0.acting_staff_id.map(id)
    }
    /// Why, if given.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

/// A payment of an order.
pub struct PaymentObject(pub payment::Model);

#[Object(name = "Payment")]
impl PaymentObject {
    /// Id (the idempotency key of every call to the provider about it).
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The payment method's code.
    async fn method(&self) -> &str {
        &self.0.method
    }
    /// `Pending`, `Authorized`, `Settled`, `Declined`, `Failed`, `Cancelled` or `Refunded`.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// The amount.
    async fn amount(&self) -> MoneyObject {
        money(
            self.0.amount,
            self.0.currency.parse().unwrap_or(CurrencyCode::EUR),
        )
    }
    /// Settled so far.
    async fn settled_amount(&self) -> MoneyObject {
        money(
            self.0.settled_amount,
            self.0.currency.parse().unwrap_or(CurrencyCode::EUR),
        )
    }
    /// Refunded so far.
    async fn refunded_amount(&self) -> MoneyObject {
        money(
            self.0.refunded_amount,
            self.0.currency.parse().unwrap_or(CurrencyCode::EUR),
        )
    }
    /// The provider's reference.
    async fn transaction_id(&self) -> Option<&str> {
        self.0.transaction_id.as_deref()
    }
    /// When an invoice is due.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    /// The provider's message (why it was declined).
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
}

/// Nothing to order: the cart is empty (or there is none).
#[derive(SimpleObject)]
pub struct EmptyCartError {
    /// `EMPTY_CART`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// The cart changed since the version the buyer saw.
#[derive(SimpleObject)]
pub struct CartChangedError {
    /// `CART_CHANGED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The cart's version now.
    pub version: i64,
}

/// A line whose price changed since it was added.
#[derive(SimpleObject)]
pub struct PriceChangeObject {
    /// The line.
    pub line_id: ID,
    /// Its SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: i64,
    /// The unit price the cart showed.
    pub old_unit_price: MoneyObject,
    /// The unit price now; null when the line can no longer be bought.
    pub new_unit_price: Option<MoneyObject>,
}

/// Prices changed since the lines were added; nothing was placed. Review and place again with
/// `acceptPriceChanges: true`.
#[derive(SimpleObject)]
pub struct PriceChangedError {
    /// `PRICE_CHANGED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The lines that changed.
    pub changes: Vec<PriceChangeObject>,
}

/// An address (or a guest's email) is missing.
#[derive(SimpleObject)]
pub struct MissingAddressError {
    /// `MISSING_ADDRESS`.
    pub code: String,
    /// For people.
    pub message: String,
    /// `shippingAddress`, `billingAddress` or `email`.
    pub field: String,
}

/// No shipping method, or one that is not offered for this cart.
#[derive(SimpleObject)]
pub struct ShippingMethodError {
    /// `SHIPPING_METHOD_NOT_AVAILABLE`.
    pub code: String,
    /// For people (lists what is offered).
    pub message: String,
}

/// The payment method is unknown or not offered to this buyer.
#[derive(SimpleObject)]
pub struct PaymentMethodError {
    /// `PAYMENT_METHOD_UNKNOWN` or `PAYMENT_METHOD_NOT_ELIGIBLE`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// The order would exceed the company's credit limit.
#[derive(SimpleObject)]
pub struct CreditLimitExceededError {
    /// `CREDIT_LIMIT_EXCEEDED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// What is left of the limit.
    pub available: MoneyObject,
}

/// The payment was declined; nothing was charged and the cart is editable again.
#[derive(SimpleObject)]
pub struct PaymentDeclinedError {
    /// `PAYMENT_DECLINED`.
    pub code: String,
    /// The provider's reason.
    pub message: String,
}

/// The order process refused a transition.
#[derive(SimpleObject)]
pub struct TransitionError {
    /// `INVALID_TRANSITION` or a guard's code.
    pub code: String,
    /// For people.
    pub message: String,
    /// From.
    pub from_state: String,
    /// To.
    pub to_state: String,
}

impl From<TransitionFailure> for TransitionError {
    fn from(f: TransitionFailure) -> Self {
        TransitionError {
            code: f.code,
            message: f.message,
            from_state: f.from,
            to_state: f.to,
        }
    }
}

/// A line that cannot be served from stock.
#[derive(SimpleObject)]
pub struct StockShortage {
    /// The line.
    pub line_id: ID,
    /// Its SKU.
    pub sku: String,
    /// Units asked for.
    pub requested: Int64,
    /// Units that can be served now (stock plus any backorder allowance).
    pub available: Int64,
}

/// Not enough stock for some lines; nothing was reserved or placed. Lower the quantities (or
/// remove the lines) and place again.
#[derive(SimpleObject)]
pub struct InsufficientStockError {
    /// `INSUFFICIENT_STOCK`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The lines short of stock.
    pub lines: Vec<StockShortage>,
}

impl InsufficientStockError {
    /// The error for `shortages`.
    pub fn new(shortages: Vec<vectis_strategies::allocation::Shortage>) -> Self {
        let skus: Vec<&str> = shortages.iter().take(5).map(|s| s.sku.as_str()).collect();
        let more = shortages.len().saturating_sub(skus.len());
        InsufficientStockError {
            code: "INSUFFICIENT_STOCK".into(),
            message: format!(
                "not enough stock for {}{}",
                skus.join(", "),
                if more > 0 {
                    format!(" and {more} more line(s)")
                } else {
                    String::new()
                }
            ),
            lines: shortages
                .into_iter()
                .map(|s| StockShortage {
                    line_id: id(s.line_id),
                    sku: s.sku,
                    requested: Int64(s.requested),
                    available: Int64(s.available),
                })
                .collect(),
        }
    }
}

/// The result of `placeOrder`.
#[derive(Union)]
pub enum PlaceOrderResult {
    /// Placed.
    Order(OrderObject),
    /// Nothing to order.
    EmptyCart(EmptyCartError),
    /// The cart changed.
    CartChanged(CartChangedError),
    /// Prices changed.
    PriceChanged(PriceChangedError),
    /// An address is missing.
    MissingAddress(MissingAddressError),
    /// The shipping method.
    ShippingMethod(ShippingMethodError),
    /// The payment method.
    PaymentMethod(PaymentMethodError),
    /// The credit limit.
    CreditLimitExceeded(CreditLimitExceededError),
    /// The payment was declined.
    PaymentDeclined(PaymentDeclinedError),
    /// The order process refused.
    Transition(TransitionError),
    /// Not enough stock.
    InsufficientStock(InsufficientStockError),
}

/// A payment operation was refused.
#[derive(SimpleObject)]
pub struct PaymentOperationError {
    /// `PAYMENT_NOT_SETTLEABLE`, `REFUND_EXCEEDS_PAYMENT`, `PAYMENT_DECLINED`, …
    pub code: String,
    /// For people.
    pub message: String,
}

/// The result of `settlePayment` and `refundPayment`.
#[derive(Union)]
pub enum PaymentOperationResult {
    /// The payment after the operation.
    Payment(Box<PaymentObject>),
    /// Refused; nothing changed.
    Refused(PaymentOperationError),
}

impl From<Result<payment::Model, super::service::PaymentFailure>> for PaymentOperationResult {
    fn from(r: Result<payment::Model, super::service::PaymentFailure>) -> Self {
        match r {
            Ok(p) => PaymentOperationResult::Payment(Box::new(PaymentObject(p))),
            Err(f) => PaymentOperationResult::Refused(PaymentOperationError {
                code: f.code,
                message: f.message,
            }),
        }
    }
}

/// The result of `transitionOrder`.
#[derive(Union)]
pub enum TransitionOrderResult {
    /// The order in its new state.
    Order(OrderObject),
    /// Refused by the order process; nothing changed.
    Transition(TransitionError),
}

/// What `reorder` did.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ReorderPayload {
    /// Whether any line was added.
    pub applied: bool,
    /// Lines of the order that could not be added (by their position in the order), e.g.
    /// archived variants or variants without a price.
    pub errors: Vec<crate::error::ItemError>,
    /// Lines now priced differently from the order.
    pub price_changes: Vec<PriceChangeObject>,
    /// A new guest cart's token (shown once).
    pub cart_token: Option<String>,
    #[graphql(skip)]
    pub cart: Option<order::Model>,
}

#[async_graphql::ComplexObject]
impl ReorderPayload {
    /// The caller's cart after it.
    async fn cart(&self) -> Option<crate::cart::graphql::Cart> {
        self.cart.clone().map(crate::cart::graphql::Cart)
    }
}

/// Stock held for the caller's cart until `expiresAt`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CartReservation {
    /// Until when.
    pub expires_at: DateTime<Utc>,
    #[graphql(skip)]
    pub cart: Box<order::Model>,
}

#[async_graphql::ComplexObject]
impl CartReservation {
    /// The cart.
    async fn cart(&self) -> crate::cart::graphql::Cart {
        crate::cart::graphql::Cart((*self.cart).clone())
    }
}

/// The result of `reserveCartStock`.
#[derive(Union)]
pub enum ReserveCartStockResult {
    /// Reserved.
    Reserved(CartReservation),
    /// Not enough stock; nothing was reserved.
    InsufficientStock(InsufficientStockError),
}

/// The result of `cancelOrder`.
#[derive(Union)]
pub enum CancelOrderResult {
    /// Cancelled.
    Order(OrderObject),
    /// Not from this state (e.g. shipped already).
    Transition(TransitionError),
}

fn price_change(c: PriceChange, cur: CurrencyCode) -> PriceChangeObject {
    PriceChangeObject {
        line_id: id(c.line_id),
        sku: c.sku,
        quantity: c.quantity,
        old_unit_price: money(c.old_unit_price, cur),
        new_unit_price: c.new_unit_price.map(|p| money(p, cur)),
    }
}

impl PlaceOrderResult {
    pub(crate) fn from_outcome(o: PlaceOutcome, cur: CurrencyCode) -> Self {
        let err = |code: &str, message: String| (code.to_owned(), message);
        match o {
            PlaceOutcome::Placed(order) => PlaceOrderResult::Order(OrderObject(order)),
            PlaceOutcome::EmptyCart => {
                let (code, message) =
                    err("EMPTY_CART", "there is nothing in the cart to order".into());
                PlaceOrderResult::EmptyCart(EmptyCartError { code, message })
            }
            PlaceOutcome::CartChanged { version } => {
                PlaceOrderResult::CartChanged(CartChangedError {
                    code: "CART_CHANGED".into(),
                    message: format!(
                        "the cart changed since you saw it (it is at version {version}); review it and place again"
                    ),
                    version,
                })
            }
            PlaceOutcome::PriceChanged(changes) => {
                PlaceOrderResult::PriceChanged(PriceChangedError {
                    code: "PRICE_CHANGED".into(),
                    message: format!(
                        "{} line(s) changed price or can no longer be bought; review and place again with acceptPriceChanges",
                        changes.len()
                    ),
                    changes: changes.into_iter().map(|c| price_change(c, cur)).collect(),
                })
            }
            PlaceOutcome::MissingAddress { field, message } => {
                PlaceOrderResult::MissingAddress(MissingAddressError {
                    code: "MISSING_ADDRESS".into(),
                    message,
                    field: field.into(),
                })
            }
            PlaceOutcome::ShippingMethod { message } => {
                PlaceOrderResult::ShippingMethod(ShippingMethodError {
                    code: "SHIPPING_METHOD_NOT_AVAILABLE".into(),
                    message,
                })
            }
            PlaceOutcome::PaymentMethod { code, message } => {
                PlaceOrderResult::PaymentMethod(PaymentMethodError {
                    code: code.into(),
                    message,
                })
            }
            PlaceOutcome::CreditLimitExceeded { available } => {
                PlaceOrderResult::CreditLimitExceeded(CreditLimitExceededError {
                    code: "CREDIT_LIMIT_EXCEEDED".into(),
                    message: format!(
                        "the order exceeds the company's available credit of {available}"
                    ),
                    available: available.into(),
                })
            }
            PlaceOutcome::PaymentDeclined { message } => {
                PlaceOrderResult::PaymentDeclined(PaymentDeclinedError {
                    code: "PAYMENT_DECLINED".into(),
                    message,
                })
            }
            PlaceOutcome::Transition(f) => PlaceOrderResult::Transition(f.into()),
            PlaceOutcome::InsufficientStock(s) => {
                PlaceOrderResult::InsufficientStock(InsufficientStockError::new(s))
            }
            // Only `acceptQuote` meets a quote's refusal, and reports it as its own error.
            PlaceOutcome::Quote(r) => PlaceOrderResult::Transition(TransitionError {
                code: r.code.into(),
                message: r.message,
                from_state: String::new(),
                to_state: String::new(),
            }),
        }
    }
}

/// Input of `placeOrder`.
#[derive(InputObject)]
pub struct PlaceOrderInput {
    /// The payment method's code (`paymentMethods` lists them).
    pub payment_method: String,
    /// What the payment method needs, e.g. `{"cardNumber": "4242 4242 4242 4242"}` for
    /// `test-card`.
    pub payment_metadata: Option<Json<serde_json::Value>>,
    /// Ship-to; defaults to the cart's, then the company location.
    pub shipping_address: Option<PostalAddressInput>,
    /// Bill-to; defaults to the company location, then the ship-to.
    pub billing_address: Option<PostalAddressInput>,
    /// One of `cart.shippingMethods`; defaults to the cart's choice.
    pub shipping_method: Option<String>,
    /// The buyer's purchase-order number.
    pub purchase_order_number: Option<String>,
    /// A guest's email for the confirmation.
    pub email: Option<String>,
    /// Place even though prices changed since the lines were added.
    #[graphql(default = false)]
    pub accept_price_changes: bool,
    /// The cart version you saw: a repeated `placeOrder` with it returns the order it placed
    /// (and if the cart changed since, `CartChangedError`).
    pub expected_version: Option<i64>,
}

/// A filter over orders.
#[derive(InputObject, Default)]
pub struct OrderFilterInput {
    /// In this state.
    pub state: Option<String>,
    /// Of this company.
    pub company_id: Option<ID>,
    /// Of this customer.
    pub customer_id: Option<ID>,
    /// With this code.
    pub code: Option<String>,
    /// With this purchase-order number.
    pub purchase_order_number: Option<String>,
    /// Placed at or after.
    pub placed_from: Option<DateTime<Utc>>,
    /// Placed before.
    pub placed_until: Option<DateTime<Utc>>,
}

/// A payment method as offered to the caller.
#[derive(SimpleObject)]
pub struct PaymentMethodQuote {
    /// Code for `placeOrder`.
    pub code: String,
    /// What it is.
    pub description: String,
    /// Whether it is offered for the caller's cart now.
    pub eligible: bool,
    /// Why not, when it is not.
    pub reason: Option<String>,
}

/// Orders queries.
#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// The order process: states, whether they are terminal, and where each can lead (as
    /// merged from the configured `OrderProcess` strategies and validated at boot).
    async fn order_process(&self, ctx: &Context<'_>) -> Result<OrderProcessInfo> {
        caller(ctx)?;
        let graph = services(ctx).orders.process();
        Ok(OrderProcessInfo {
            initial: graph.initial().to_owned(),
            states: graph
                .states()
                .map(|(name, terminal, description)| OrderStateInfo {
                    name: name.to_owned(),
                    terminal,
                    description: description.to_owned(),
                    next: graph.next(name),
                })
                .collect(),
        })
    }

    /// An order the caller may see: their own, their company's (`VIEW_ORDERS`, within their
    /// divisions), an assigned company's (sales reps), any (`ORDER_READ`). Others are
    /// `NOT_FOUND`.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<OrderObject> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx).orders.order(caller, id).await?.into())
    }

    /// The calling customer's orders, newest first.
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 0-100.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, OrderObject, EmptyFields>> {
        let caller = caller(ctx)?;
        let request = page_request(first, after.as_deref(), 100)?;
        let page = services(ctx)
            .orders
            .list(caller, true, OrderFilter::default(), request)
            .await?;
        Ok(connection(
            &request,
            page,
            |o| o.id,
            OrderObject::from,
            EmptyFields,
        ))
    }

    /// Orders matching `filter`, newest first: staff with `ORDER_READ` see all, sales reps
    /// their assigned companies', company users with `VIEW_ORDERS` their company's.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 0-100.")] first: i32,
        after: Option<String>,
        #[graphql(default)] filter: OrderFilterInput,
    ) -> Result<Connection<IdCursor, OrderObject, EmptyFields>> {
        let caller = caller(ctx)?;
        let request = page_request(first, after.as_deref(), 100)?;
        let filter = OrderFilter {
            state: filter.state,
            company_id: filter
                .company_id
                .as_ref()
                .map(|c| parse_id("companyId", c))
                .transpose()?,
            customer_id: filter
                .customer_id
                .as_ref()
                .map(|c| parse_id("customerId", c))
                .transpose()?,
            code: filter.code,
            po_number: filter.purchase_order_number,
            placed_from: filter.placed_from,
            placed_until: filter.placed_until,
        };
        let page = services(ctx)
            .orders
            .list(caller, false, filter, request)
            .await?;
        Ok(connection(
            &request,
            page,
            |o| o.id,
            OrderObject::from,
            EmptyFields,
        ))
    }

    /// The payment methods, with whether each is offered for the caller's cart.
    async fn payment_methods(&self, ctx: &Context<'_>) -> Result<Vec<PaymentMethodQuote>> {
        let caller = caller(ctx)?;
        let services = services(ctx);
        let buyer = services.pricing.buyer(caller).await?;
        let token = ctx.data_opt::<CartToken>().map(|t| t.0.as_str());
        let cart = match &caller.principal {
            crate::auth::Principal::Customer { .. } | crate::auth::Principal::Storefront => {
                services.cart.active(caller, token).await?
            }
            _ => None,
        };
        let total = cart
            .as_ref()
            .map(|c| Money::new(c.total, currency(c)))
            .unwrap_or_else(|| Money::new(0, CurrencyCode::EUR));
        let context = super::OrdersService::payment_context(&buyer, total);
        Ok(services
            .orders
            .payment_handlers()
            .iter()
            .map(|h| {
                let check = h.eligible(&context);
                PaymentMethodQuote {
                    code: h.code().to_owned(),
                    description: h.description().to_owned(),
                    eligible: check.is_ok(),
                    reason: check.err(),
                }
            })
            .collect())
    }
}

/// Orders mutations.
#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// Places the caller's cart (company users need `PLACE_ORDERS`; guests give an email).
    /// Lines are re-priced first: if any price changed, nothing is placed and
    /// `PriceChangedError` lists the changes (place again with `acceptPriceChanges`). The order
    /// freezes its prices, taxes, addresses and the buyer's company and location. Repeating
    /// the call with the same `expectedVersion` or `Idempotency-Key` header returns the same
    /// order. On account (`invoice`), the total is reserved against the company's credit limit.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceOrderInput,
    ) -> Result<PlaceOrderResult> {
        let caller = caller(ctx)?;
        let token = ctx.data_opt::<CartToken>().map(|t| t.0.as_str());
        let key = ctx.data_opt::<IdempotencyKey>().map(|k| k.0.clone());
        let services = services(ctx);
        let cur = services
            .cart
            .active(caller, token)
            .await?
            .map(|c| currency(&c))
            .unwrap_or(CurrencyCode::EUR);
        let outcome = services
            .orders
            .place(
                caller,
                token,
                PlaceInput {
                    shipping_address: input.shipping_address.map(Into::into),
                    billing_address: input.billing_address.map(Into::into),
                    shipping_method: input.shipping_method,
                    payment_method: input.payment_method,
                    payment_metadata: input
                        .payment_metadata
                        .map(|m| m.0)
                        .unwrap_or(serde_json::Value::Null),
                    po_number: input.purchase_order_number,
                    email: input.email,
                    accept_price_changes: input.accept_price_changes,
                    expected_version: input.expected_version,
                    idempotency_key: key,
                },
            )
            .await?;
        Ok(PlaceOrderResult::from_outcome(outcome, cur))
    }

    /// Records that a payment was taken (`ORDER_WRITE`): an invoice paid (the company's credit
    /// exposure drops) or a card authorisation captured; the order moves to `PaymentSettled`
    /// when it waits in `PaymentAuthorized`. A payment settles once.
    async fn settle_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
    ) -> Result<PaymentOperationResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let id = parse_id("paymentId", &payment_id)?;
        Ok(services(ctx).orders.settle(caller, id).await?.into())
    }

    /// Pays back part or all of a settled payment (`ORDER_WRITE`); never more than was taken
    /// and not yet refunded.
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        amount: crate::graphql::scalars::Int64,
    ) -> Result<PaymentOperationResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let id = parse_id("paymentId", &payment_id)?;
        Ok(services(ctx)
            .orders
            .refund(caller, id, amount.0)
            .await?
            .into())
    }

    /// Moves an order to another state of the order process (`ORDER_WRITE`), for the steps no
    /// other operation takes (e.g. releasing an order an extension's state holds, `Delivered`).
    async fn transition_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        state: String,
        reason: Option<String>,
    ) -> Result<TransitionOrderResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let id = parse_id("id", &id)?;
        Ok(
            match services(ctx)
                .orders
                .transition_by_staff(caller, id, &state, reason)
                .await?
            {
                Ok(order) => TransitionOrderResult::Order(order.into()),
                Err(f) => TransitionOrderResult::Transition(f.into()),
            },
        )
    }

    /// Copies an order's lines into the caller's cart, reporting lines that are no longer
    /// available and lines priced differently now.
    async fn reorder(&self, ctx: &Context<'_>, order_id: ID) -> Result<ReorderPayload> {
        let caller = caller(ctx)?;
        let id = parse_id("orderId", &order_id)?;
        let token = ctx.data_opt::<CartToken>().map(|t| t.0.as_str());
        let outcome = services(ctx).orders.reorder(caller, token, id).await?;
        let cur = outcome
            .cart
            .as_ref()
            .map(currency)
            .unwrap_or(CurrencyCode::EUR);
        Ok(ReorderPayload {
            applied: outcome.applied,
            errors: outcome.errors,
            price_changes: outcome
                .changes
                .into_iter()
                .map(|c| price_change(c, cur))
                .collect(),
            cart_token: outcome.token,
            cart: outcome.cart,
        })
    }

    /// Holds stock for the caller's cart while they check out, for the shop's checkout
    /// reservation time (`inventorySettings.checkoutReservationMinutes`; refused with
    /// `CHECKOUT_RESERVATIONS_OFF` when the shop reserves at placement only). Calling it again
    /// renews the reservation for the cart as it is; `placeOrder` within the time keeps the
    /// stock, otherwise it is released when the reservation expires.
    async fn reserve_cart_stock(&self, ctx: &Context<'_>) -> Result<ReserveCartStockResult> {
        let caller = caller(ctx)?;
        let token = ctx.data_opt::<CartToken>().map(|t| t.0.as_str());
        Ok(
            match services(ctx).orders.reserve_checkout(caller, token).await? {
                Ok((cart, expires_at)) => ReserveCartStockResult::Reserved(CartReservation {
                    expires_at,
                    cart: Box::new(cart),
                }),
                Err(short) => {
                    ReserveCartStockResult::InsufficientStock(InsufficientStockError::new(short))
                }
            },
        )
    }

    /// Ships lines of an order from a stock location (`ORDER_WRITE`), with carrier and
    /// tracking number: the reserved stock there is shipped, and the order moves to
    /// `PartiallyShipped` or `Shipped`. Shipping more than ordered, or than is reserved at that
    /// location, is a `ShipmentError` naming the lines.
    async fn create_shipment(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        location: String,
        lines: Vec<ShipmentLineInput>,
        carrier: Option<String>,
        tracking_number: Option<String>,
    ) -> Result<CreateShipmentResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let order = parse_id("orderId", &order_id)?;
        let lines = lines
            .into_iter()
            .map(|l| {
                Ok(crate::inventory::fulfil::ShipLine {
                    line_id: parse_id("lineId", &l.line_id)?,
                    quantity: l.quantity.0,
                })
            })
            .collect::<Result<Vec<_>, crate::error::AppError>>()?;
        let outcome = services(ctx)
            .orders
            .ship(caller, order, &location, lines, carrier, tracking_number)
            .await?;
        Ok(match outcome {
            super::service::ShipOutcome::Shipped(done) => {
                let (_, shipment) = *done;
                let lines = services(ctx)
                    .inventory
                    .shipments_of(caller.tenant, vec![shipment.order_id])
                    .await?
                    .into_iter()
                    .find(|(s, _)| s.id == shipment.id)
                    .map(|(_, l)| l)
                    .unwrap_or_default();
                CreateShipmentResult::Shipment(ShipmentObject(shipment, lines))
            }
            super::service::ShipOutcome::Refused(refusals) => {
                CreateShipmentResult::Refused(ShipmentError {
                    code: "SHIPMENT_REFUSED".into(),
                    message: format!("{} line(s) cannot ship as asked", refusals.len()),
                    lines: refusals.into_iter().map(Into::into).collect(),
                })
            }
            super::service::ShipOutcome::Transition(f) => {
                CreateShipmentResult::Transition(f.into())
            }
        })
    }

    /// Records that a shipment arrived (`ORDER_WRITE`); an order whose shipments have all
    /// arrived moves to `Delivered`.
    async fn mark_shipment_delivered(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<MarkShipmentDeliveredResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let shipment_id = parse_id("id", &id)?;
        Ok(
            match services(ctx).orders.deliver(caller, shipment_id).await? {
                Ok(s) => {
                    let lines = services(ctx)
                        .inventory
                        .shipments_of(caller.tenant, vec![s.order_id])
                        .await?
                        .into_iter()
                        .find(|(x, _)| x.id == s.id)
                        .map(|(_, l)| l)
                        .unwrap_or_default();
                    MarkShipmentDeliveredResult::Shipment(ShipmentObject(s, lines))
                }
                Err(f) => MarkShipmentDeliveredResult::Transition(f.into()),
            },
        )
    }

    /// Cancels an order before anything shipped (its buyer, a company user with
    /// `PLACE_ORDERS` in its company, staff with `ORDER_WRITE`): invoices release their credit
    /// reservation, authorised payments are cancelled.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<CancelOrderResult> {
        let caller = caller(ctx)?;
        let id: Uuid = parse_id("id", &id)?;
        Ok(
            match services(ctx).orders.cancel(caller, id, reason).await? {
                Ok(order) => CancelOrderResult::Order(order.into()),
                Err(f) => CancelOrderResult::Transition(f.into()),
            },
        )
    }
}

/// A state of the order process.
#[derive(SimpleObject)]
pub struct OrderStateInfo {
    /// Name, e.g. `Placed`.
    pub name: String,
    /// Whether an order in this state moves no further.
    pub terminal: bool,
    /// What the state means.
    pub description: String,
    /// The states an order can move to from here.
    pub next: Vec<String>,
}

/// The merged order process the engine runs with.
#[derive(SimpleObject)]
pub struct OrderProcessInfo {
    /// Where every order starts.
    pub initial: String,
    /// Every state, by name.
    pub states: Vec<OrderStateInfo>,
}
