//! After-sale GraphQL: `cancelOrderLines`, `requestReturn`, `receiveReturn`, and the returns
//! and refunds of an order.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};
use vectis_strategies::{CurrencyCode, Money};

use super::cancel_lines::{CancelLinesOutcome, LineUnits};
use super::returns::{Receipt, ReturnLine, ReturnOutcome};
use crate::graphql::context::{caller, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::{Int64, MoneyObject};
use crate::inventory::entity::{order_return, return_line};
use crate::inventory::fulfil::LineRefusal;
use crate::orders::entity::refund;
use crate::orders::graphql::{OrderObject, PaymentOperationError, TransitionError};

fn money(amount: i64, currency: &str) -> MoneyObject {
    Money::new(amount, currency.parse().unwrap_or(CurrencyCode::EUR)).into()
}

/// A line that cannot ship, be cancelled or be returned as asked.
#[derive(SimpleObject)]
pub struct OrderLineProblem {
    /// `UNKNOWN_LINE`; shipping: `EXCEEDS_ORDERED`, `EXCEEDS_RESERVED` (at that location);
    /// cancelling: `EXCEEDS_UNSHIPPED`; returning: `EXCEEDS_RETURNABLE` (more than shipped and
    /// not yet returned); `VALIDATION` (not positive, given twice, a missing reason).
    pub code: String,
    /// The line.
    pub line_id: ID,
    /// Its SKU.
    pub sku: String,
    /// Units asked for.
    pub requested: Int64,
    /// Units that could be.
    pub possible: Int64,
}

/// Lines refused; nothing changed.
#[derive(SimpleObject)]
pub struct OrderLinesError {
    /// `LINES_REFUSED`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The lines at fault.
    pub lines: Vec<OrderLineProblem>,
}

impl From<LineRefusal> for OrderLineProblem {
    fn from(r: LineRefusal) -> Self {
        OrderLineProblem {
            code: r.code.into(),
            line_id: id(r.line_id),
            sku: r.sku,
            requested: Int64(r.requested),
            possible: Int64(r.possible),
        }
    }
}

impl OrderLinesError {
    fn new(refusals: Vec<LineRefusal>) -> Self {
        OrderLinesError {
            code: "LINES_REFUSED".into(),
            message: format!("{} line(s) cannot change as asked", refusals.len()),
            lines: refusals.into_iter().map(Into::into).collect(),
        }
    }
}

/// Units of an order line.
#[derive(InputObject)]
pub struct OrderLineQuantityInput {
    /// The order line.
    pub line_id: ID,
    /// Units (1 or more).
    pub quantity: Int64,
}

/// Units of an order line to return, and why.
#[derive(InputObject)]
pub struct ReturnLineInput {
    /// The order line.
    pub line_id: ID,
    /// Units (1 or more, at most those shipped and not returned yet).
    pub quantity: Int64,
    /// Why (1-500 characters), e.g. "damaged in transit".
    pub reason: String,
}

/// How a return is received.
#[derive(InputObject)]
pub struct ReceiveReturnInput {
    /// The return.
    pub return_id: ID,
    /// The stock location (code) the returned units go back to; needed unless every line is
    /// written off.
    pub restock_location: Option<String>,
    /// Order lines of the return whose units are written off (damaged) instead of restocked.
    #[graphql(default)]
    pub write_off_line_ids: Vec<ID>,
    /// The refund, in minor units; by default the returned units' share of what the order
    /// charged for goods (discounts and tax included, shipping not). Never more than was paid
    /// and not yet refunded.
    pub refund_amount: Option<Int64>,
}

/// A request to send back shipped units, and what happened when they arrived.
pub struct OrderReturnObject(
    pub order_return::Model,
    pub Vec<return_line::Model>,
    /// The order's currency.
    pub String,
);

#[Object(name = "OrderReturn")]
impl OrderReturnObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The order.
    async fn order_id(&self) -> ID {
        id(self.0.order_id)
    }
    /// `Requested`, `Received` or `Declined`.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Why staff declined it.
    async fn decline_reason(&self) -> Option<&str> {
        self.0.decline_reason.as_deref()
    }
    /// When it was requested.
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was received.
    async fn received_at(&self) -> Option<DateTime<Utc>> {
        self.0.received_at
    }
    /// Refunded for it.
    async fn refunded(&self) -> MoneyObject {
        money(self.0.refunded, &self.2)
    }
    /// Its lines.
    async fn lines(&self) -> Vec<OrderReturnLine> {
        self.1
            .iter()
            .map(|l| OrderReturnLine {
                line_id: id(l.line_id),
                quantity: Int64(l.quantity),
                reason: l.reason.clone(),
                restocked: l.restocked,
                location_id: l.location_id.map(id),
            })
            .collect()
    }
}

/// Units of an order line in a return.
#[derive(SimpleObject)]
pub struct OrderReturnLine {
    /// The order line.
    pub line_id: ID,
    /// Units.
    pub quantity: Int64,
    /// Why.
    pub reason: String,
    /// Once received: put back into stock (`true`) or written off.
    pub restocked: Option<bool>,
    /// Where the units went back into stock.
    pub location_id: Option<ID>,
}

/// Money paid back, or part of an authorisation released, through the payment handler.
pub struct RefundObject(pub refund::Model);

#[Object(name = "Refund")]
impl RefundObject {
    /// Id (the idempotency key of the handler's call).
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The payment.
    async fn payment_id(&self) -> ID {
        id(self.0.payment_id)
    }
    /// The return it is for.
    async fn return_id(&self) -> Option<ID> {
        self.0.return_id.map(id)
    }
    /// `refund` (paid back) or `void` (an authorised or invoiced amount released).
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// `Pending` (the provider is being asked), `Done` or `Failed`.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Amount.
    async fn amount(&self) -> MoneyObject {
        money(self.0.amount, &self.0.currency)
    }
    /// Why.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The provider's reason for a failure.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// When it was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The result of `cancelOrderLines`.
#[derive(Union)]
pub enum CancelOrderLinesResult {
    /// The order after it.
    Order(OrderObject),
    /// Lines refused; nothing changed.
    Refused(OrderLinesError),
    /// The order can no longer change (`ORDER_NOT_CANCELLABLE`) or the process refused.
    Transition(TransitionError),
}

/// The result of `requestReturn` and `receiveReturn`.
#[derive(Union)]
pub enum ReturnResult {
    /// The return.
    Return(OrderReturnObject),
    /// Lines refused; nothing changed.
    Refused(OrderLinesError),
    /// Not now (`NOTHING_SHIPPED`; `RETURN_NOT_OPEN`: received or declined already); nothing
    /// changed.
    NotReturnable(TransitionError),
    /// The refund was refused (`REFUND_EXCEEDS_PAYMENT`); nothing changed.
    Payment(PaymentOperationError),
}

impl ReturnResult {
    fn from_outcome(o: ReturnOutcome) -> Self {
        match o {
            ReturnOutcome::Return(r) => {
                let (r, lines, currency) = *r;
                ReturnResult::Return(OrderReturnObject(r, lines, currency))
            }
            ReturnOutcome::Refused(r) => ReturnResult::Refused(OrderLinesError::new(r)),
            ReturnOutcome::NotReturnable(f) => ReturnResult::NotReturnable(f.into()),
            ReturnOutcome::Payment(f) => ReturnResult::Payment(PaymentOperationError {
                code: f.code,
                message: f.message,
            }),
        }
    }
}

fn units(lines: Vec<OrderLineQuantityInput>) -> Result<Vec<LineUnits>, crate::error::AppError> {
    lines
        .into_iter()
        .map(|l| {
            Ok(LineUnits {
                line_id: parse_id("lineId", &l.line_id)?,
                quantity: l.quantity.0,
            })
        })
        .collect()
}

/// Cancelling lines, returns and their refunds.
#[derive(Default)]
pub struct AfterSaleMutation;

#[Object]
impl AfterSaleMutation {
    /// Cancels units of an order's lines before they ship (its buyer, a company user with
    /// `PLACE_ORDERS` in its company, staff with `ORDER_WRITE`): their stock is released, the
    /// totals shrink (the discount in proportion; shipping stays) and the difference is
    /// released from an authorised payment or refunded from a settled one through its
    /// handler. Cancelling every unit left cancels the order.
    async fn cancel_order_lines(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        lines: Vec<OrderLineQuantityInput>,
        reason: Option<String>,
    ) -> Result<CancelOrderLinesResult> {
        let caller = caller(ctx)?;
        let order = parse_id("orderId", &order_id)?;
        let lines = units(lines)?;
        Ok(
            match services(ctx)
                .orders
                .cancel_lines(caller, order, lines, reason)
                .await?
            {
                CancelLinesOutcome::Cancelled(o) => CancelOrderLinesResult::Order(OrderObject(o)),
                CancelLinesOutcome::Refused(r) => {
                    CancelOrderLinesResult::Refused(OrderLinesError::new(r))
                }
                CancelLinesOutcome::Transition(f) => CancelOrderLinesResult::Transition(f.into()),
            },
        )
    }

    /// Opens a return of shipped units with a reason per line (the order's buyer, a company
    /// user with `PLACE_ORDERS` in its company, staff with `ORDER_WRITE`). Returning more
    /// than shipped and not yet returned is refused per line.
    async fn request_return(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        lines: Vec<ReturnLineInput>,
    ) -> Result<ReturnResult> {
        let caller = caller(ctx)?;
        let order = parse_id("orderId", &order_id)?;
        let lines = lines
            .into_iter()
            .map(|l| {
                Ok(ReturnLine {
                    units: LineUnits {
                        line_id: parse_id("lineId", &l.line_id)?,
                        quantity: l.quantity.0,
                    },
                    reason: l.reason,
                })
            })
            .collect::<Result<Vec<_>, crate::error::AppError>>()?;
        let outcome = services(ctx)
            .orders
            .request_return(caller, order, lines)
            .await?;
        Ok(ReturnResult::from_outcome(outcome))
    }

    /// Declines a requested return (`ORDER_WRITE`), with a reason the buyer sees; its units may
    /// be returned again.
    async fn decline_return(
        &self,
        ctx: &Context<'_>,
        return_id: ID,
        reason: Option<String>,
    ) -> Result<ReturnResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let return_id = parse_id("returnId", &return_id)?;
        let outcome = services(ctx)
            .orders
            .decline_return(caller, return_id, reason)
            .await?;
        Ok(ReturnResult::from_outcome(outcome))
    }

    /// Receives a return (`ORDER_WRITE`): its units go back into stock at `restockLocation`
    /// (or are written off), and the refund is paid back through the payment handler. A
    /// return is received once.
    async fn receive_return(
        &self,
        ctx: &Context<'_>,
        input: ReceiveReturnInput,
    ) -> Result<ReturnResult> {
        let caller = caller(ctx)?;
        caller.require(crate::auth::Permission::OrderWrite)?;
        let return_id = parse_id("returnId", &input.return_id)?;
        let write_off = input
            .write_off_line_ids
            .iter()
            .map(|l| parse_id("writeOffLineIds", l))
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = services(ctx)
            .orders
            .receive_return(
                caller,
                return_id,
                Receipt {
                    location: input.restock_location,
                    write_off,
                    refund: input.refund_amount.map(|a| a.0),
                },
            )
            .await?;
        Ok(ReturnResult::from_outcome(outcome))
    }
}
