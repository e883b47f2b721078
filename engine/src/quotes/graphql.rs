//! Quotes GraphQL: the buyer's requests and answers, the rep's pricing and sending, the
//! quote with its lines and history, and the tenant's quote settings.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Union};
use chrono::{DateTime, NaiveDate, Utc};
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{history, line, quote};
use super::service::{LineChange, Outcome, QuoteSettings, Refusal, RequestInput, UpdateInput};
use crate::catalog::graphql::Variant;
use crate::catalog::loader::{VariantById, catalog_loader};
use crate::error::ItemError;
use crate::graphql::address::PostalAddressInput;
use crate::graphql::connection::{IdCursor, connection, page_request};
use crate::graphql::context::{caller, services};
use crate::graphql::ids::{id, parse_id};
use crate::graphql::scalars::{Int64, MoneyObject};
use crate::orders::graphql::{OrderObject, PlaceOrderResult};
use crate::orders::service::{PlaceInput, PlaceOutcome};

fn currency(q: &quote::Model) -> CurrencyCode {
    q.currency.parse().unwrap_or(CurrencyCode::EUR)
}

/// A quote: a buyer's request, priced by a sales rep, sent, and answered.
pub struct QuoteObject(pub quote::Model);

#[Object(name = "Quote")]
impl QuoteObject {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// `Requested` (with the rep), `Sent` (with the buyer), `Renegotiating` (back with the
    /// rep), `Accepted`, `Declined` or `Expired`.
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// The buyer's company.
    async fn company_id(&self) -> ID {
        id(self.0.company_id)
    }
    /// The company location it is for.
    async fn location_id(&self) -> Option<ID> {
        self.0.location_id.map(id)
    }
    /// The company user who asked for it.
    async fn customer_id(&self) -> ID {
        id(self.0.customer_id)
    }
    /// Currency.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// What the buyer asked for.
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// When the buyer would like it delivered.
    async fn requested_delivery_date(&self) -> Option<NaiveDate> {
        self.0.requested_delivery_date
    }
    /// The sales rep (staff user) who last priced or sent it.
    async fn rep_id(&self) -> Option<ID> {
        self.0.rep_id.map(id)
    }
    /// The rep's note for the buyer.
    async fn rep_comment(&self) -> Option<&str> {
        self.0.rep_comment.as_deref()
    }
    /// Why the buyer declined it.
    async fn decline_reason(&self) -> Option<&str> {
        self.0.decline_reason.as_deref()
    }
    /// Lines.
    async fn line_count(&self) -> Int64 {
        Int64(self.0.line_count)
    }
    /// The lines at the buyer's own prices when they asked.
    async fn list_subtotal(&self) -> MoneyObject {
        Money::new(self.0.list_subtotal, currency(&self.0)).into()
    }
    /// The lines at the quoted prices (line discounts included).
    async fn subtotal(&self) -> MoneyObject {
        Money::new(self.0.subtotal, currency(&self.0)).into()
    }
    /// The order-level discount.
    async fn discount(&self) -> MoneyObject {
        Money::new(self.0.discount, currency(&self.0)).into()
    }
    /// Subtotal less the discount, before shipping and tax (the order adds them).
    async fn total(&self) -> MoneyObject {
        Money::new(self.0.total, currency(&self.0)).into()
    }
    /// 1 for the request, one more per renegotiation.
    async fn round(&self) -> i32 {
        self.0.round
    }
    /// Until when it may be accepted, once sent.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When it was last sent.
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    /// The order it became.
    async fn order_id(&self) -> Option<ID> {
        self.0.order_id.map(id)
    }
    /// The order it became, for those who see it.
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<OrderObject>> {
        let Some(order) = self.0.order_id else {
            return Ok(None);
        };
        Ok(services(ctx)
            .orders
            .order(caller(ctx)?, order)
            .await
            .ok()
            .map(OrderObject::from))
    }
    /// Created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Version.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Lines in the order they were requested; `first` takes up to 10,000.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Page size, 0-10000.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, QuoteLine, QuoteLineConnectionFields>> {
        let caller = caller(ctx)?;
        let request = page_request(
            first,
            after.as_deref(),
            super::service::MAX_QUOTE_LINES as u64,
        )?;
        let rows = if request.first == 0 {
            Vec::new()
        } else {
            services(ctx)
                .quotes
                .lines(caller.tenant, self.0.id, request)
                .await?
        };
        crate::catalog::graphql::preload_line_variants(
            ctx,
            rows.iter().map(|l| l.variant_id).collect(),
        )
        .await?;
        let page = request.page(rows, u64::try_from(self.0.line_count).unwrap_or(0));
        let c = currency(&self.0);
        Ok(connection(
            &request,
            page,
            |l| l.id,
            |l| QuoteLine(l, c),
            QuoteLineConnectionFields {
                total_count: self.0.line_count,
            },
        ))
    }
    /// The negotiation, oldest first: the request, each sending with its totals, and the
    /// buyer's answers.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<QuoteHistoryEntry>> {
        let c = currency(&self.0);
        Ok(services(ctx)
            .quotes
            .history(caller(ctx)?.tenant, self.0.id)
            .await?
            .into_iter()
            .map(|h| QuoteHistoryEntry(h, c))
            .collect())
    }
}

/// Beside the edges of a quote's lines.
#[derive(SimpleObject)]
pub struct QuoteLineConnectionFields {
    /// Lines of the quote.
    pub total_count: i64,
}

/// A line of a quote.
pub struct QuoteLine(pub line::Model, pub CurrencyCode);

#[Object]
impl QuoteLine {
    /// Id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// SKU.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// The variant's id.
    async fn variant_id(&self) -> ID {
        id(self.0.variant_id)
    }
    /// The variant (its prices are the caller's own, as on catalog pages).
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<Variant>> {
        Ok(catalog_loader(ctx)?
            .load_one(VariantById(self.0.variant_id))
            .await?
            .map(Variant))
    }
    /// Quantity.
    async fn quantity(&self) -> Int64 {
        Int64(self.0.quantity)
    }
    /// The buyer's own unit price when they asked.
    async fn list_price(&self) -> MoneyObject {
        Money::new(self.0.list_price, self.1).into()
    }
    /// The quoted unit price, before the line discount.
    async fn unit_price(&self) -> MoneyObject {
        Money::new(self.0.unit_price, self.1).into()
    }
    /// The line discount in basis points (500 = 5 %).
    async fn discount_basis_points(&self) -> i32 {
        self.0.discount_bp
    }
    /// Quantity × the unit price after the line discount.
    async fn line_price(&self) -> MoneyObject {
        Money::new(self.0.line_price, self.1).into()
    }
}

/// A step of a quote's negotiation.
pub struct QuoteHistoryEntry(pub history::Model, pub CurrencyCode);

#[Object]
impl QuoteHistoryEntry {
    /// `requested`, `sent`, `renegotiation_requested`, `accepted`, `declined` or `expired`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The round it belongs to.
    async fn round(&self) -> i32 {
        self.0.round
    }
    /// Who (a customer or staff user id; none for the expiry sweep).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.map(id)
    }
    /// What they wrote.
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// The quote's subtotal then.
    async fn subtotal(&self) -> MoneyObject {
        Money::new(self.0.subtotal, self.1).into()
    }
    /// Its discount then.
    async fn discount(&self) -> MoneyObject {
        Money::new(self.0.discount, self.1).into()
    }
    /// Its total then.
    async fn total(&self) -> MoneyObject {
        Money::new(self.0.total, self.1).into()
    }
    /// Its expiry then.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A quote operation was refused; nothing changed.
#[derive(SimpleObject)]
pub struct QuoteError {
    /// `EMPTY_CART`, `QUOTE_NOT_EDITABLE`, `QUOTE_NOT_SENT`, `QUOTE_EXPIRED`,
    /// `QUOTE_ALREADY_ACCEPTED`, `NOT_ASSIGNED`, `LINES_REFUSED`, `QUOTE_EMPTY`,
    /// `DISCOUNT_EXCEEDS_SUBTOTAL`, `QUOTE_OTHER_COMPANY`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Per line, by position in the input (`LINES_REFUSED`): `UNKNOWN_LINE`,
    /// `NEGATIVE_PRICE`, `ABOVE_LIST_PRICE`, `VALIDATION`.
    pub lines: Vec<ItemError>,
}

impl From<Refusal> for QuoteError {
    fn from(r: Refusal) -> Self {
        QuoteError {
            code: r.code.into(),
            message: r.message,
            lines: r.lines,
        }
    }
}

/// The result of the quote mutations.
#[derive(Union)]
pub enum QuoteResult {
    /// The quote after the change.
    Quote(Box<QuoteObject>),
    /// Refused.
    Refused(QuoteError),
}

impl From<Outcome<quote::Model>> for QuoteResult {
    fn from(o: Outcome<quote::Model>) -> Self {
        match o {
            Ok(q) => QuoteResult::Quote(Box::new(QuoteObject(q))),
            Err(r) => QuoteResult::Refused(r.into()),
        }
    }
}

/// The result of `acceptQuote`: what `placeOrder` returns, or why the quote cannot be
/// accepted.
#[derive(Union)]
pub enum AcceptQuoteResult {
    /// As `placeOrder`.
    #[graphql(flatten)]
    Placement(PlaceOrderResult),
    /// The quote cannot be accepted.
    Refused(QuoteError),
}

/// Input of `requestQuote`.
#[derive(InputObject, Default)]
pub struct RequestQuoteInput {
    /// What you need (up to 2,000 characters).
    pub comment: Option<String>,
    /// When you would like it delivered.
    pub requested_delivery_date: Option<NaiveDate>,
}

/// A rep's change to one line.
#[derive(InputObject)]
pub struct QuoteLineChangeInput {
    /// The quote line.
    pub line_id: ID,
    /// The quoted unit price in minor units, before the line discount.
    pub unit_price: Option<Int64>,
    /// A line discount in basis points (0-10000).
    pub discount_basis_points: Option<i32>,
    /// A new quantity; 0 removes the line.
    pub quantity: Option<Int64>,
}

/// Input of `updateQuote`.
#[derive(InputObject, Default)]
pub struct UpdateQuoteInput {
    /// Line changes (up to 10,000).
    #[graphql(default)]
    pub lines: Vec<QuoteLineChangeInput>,
    /// The order-level discount in minor units of the quote's currency.
    pub discount: Option<Int64>,
    /// Until when the quote will be valid once sent.
    pub expires_at: Option<DateTime<Utc>>,
    /// A note for the buyer.
    pub comment: Option<String>,
}

/// Input of `acceptQuote`: the checkout details of the order it becomes.
#[derive(InputObject)]
pub struct AcceptQuoteInput {
    /// The payment method's code (`paymentMethods` lists them).
    pub payment_method: String,
    /// What the payment method needs.
    pub payment_metadata: Option<async_graphql::Json<serde_json::Value>>,
    /// Ship-to; defaults to the company location.
    pub shipping_address: Option<PostalAddressInput>,
    /// Bill-to; defaults to the company location, then the ship-to.
    pub billing_address: Option<PostalAddressInput>,
    /// A shipping method offered for the quote's lines.
    pub shipping_method: Option<String>,
    /// The buyer's purchase-order number.
    pub purchase_order_number: Option<String>,
}

/// A tenant's quote settings.
#[derive(SimpleObject)]
pub struct QuoteSettingsObject {
    /// Whether reps may quote above the buyer's own price.
    pub allow_above_list_prices: bool,
    /// How many days a sent quote stays valid unless the rep gives an expiry.
    pub validity_days: i32,
}

impl From<QuoteSettings> for QuoteSettingsObject {
    fn from(s: QuoteSettings) -> Self {
        QuoteSettingsObject {
            allow_above_list_prices: s.allow_above_list,
            validity_days: s.validity_days,
        }
    }
}

/// Quote queries.
#[derive(Default)]
pub struct QuotesQuery;

#[Object]
impl QuotesQuery {
    /// A quote: for its buyer (and company users with `VIEW_ORDERS` in its company or a
    /// parent), the company's sales reps and staff with `ORDER_READ`.
    async fn quote(&self, ctx: &Context<'_>, id: ID) -> Result<QuoteObject> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(QuoteObject(services(ctx).quotes.quote(caller, id).await?))
    }

    /// Quotes the caller may see, newest first.
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        state: Option<String>,
        company_id: Option<ID>,
        #[graphql(default = 50, desc = "At most 100.")] first: i32,
    ) -> Result<Vec<QuoteObject>> {
        let caller = caller(ctx)?;
        let company = company_id
            .as_ref()
            .map(|c| parse_id("companyId", c))
            .transpose()?;
        Ok(services(ctx)
            .quotes
            .list(caller, state, company, first.max(1) as u64)
            .await?
            .into_iter()
            .map(QuoteObject)
            .collect())
    }

    /// The tenant's quote settings (`ORDER_READ`).
    async fn quote_settings(&self, ctx: &Context<'_>) -> Result<QuoteSettingsObject> {
        Ok(services(ctx).quotes.settings(caller(ctx)?).await?.into())
    }
}

/// Quote mutations.
#[derive(Default)]
pub struct QuotesMutation;

#[Object]
impl QuotesMutation {
    /// Asks for a quote for the caller's cart (a company user with `PLACE_ORDERS`): its lines
    /// at the buyer's own prices go to the company's sales reps. The cart stays as it is.
    async fn request_quote(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] input: RequestQuoteInput,
    ) -> Result<QuoteResult> {
        let caller = caller(ctx)?;
        Ok(services(ctx)
            .quotes
            .request(
                caller,
                RequestInput {
                    comment: input.comment,
                    requested_delivery_date: input.requested_delivery_date,
                },
            )
            .await?
            .into())
    }

    /// Prices a requested or renegotiated quote (staff with `ORDER_WRITE`, or a sales rep
    /// assigned to the company): line prices, line discounts, quantities, the order discount,
    /// the expiry and a note. Unless the tenant allows it, no line is quoted above the buyer's
    /// own price; prices are never negative. One bad line refuses the whole change.
    async fn update_quote(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateQuoteInput,
    ) -> Result<QuoteResult> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        let lines = input
            .lines
            .into_iter()
            .map(|l| {
                Ok(LineChange {
                    line_id: parse_id("lines.lineId", &l.line_id)?,
                    unit_price: l.unit_price.map(|p| p.0),
                    discount_bp: l.discount_basis_points,
                    quantity: l.quantity.map(|q| q.0),
                })
            })
            .collect::<Result<Vec<_>, crate::error::AppError>>()?;
        Ok(services(ctx)
            .quotes
            .update(
                caller,
                id,
                UpdateInput {
                    lines,
                    discount: input.discount.map(|d| d.0),
                    expires_at: input.expires_at,
                    comment: input.comment,
                },
            )
            .await?
            .into())
    }

    /// Sends a quote to its buyer (as `updateQuote`); its prices are frozen from then on. It
    /// is valid until `expiresAt` (else the one set before, else the tenant's validity).
    async fn send_quote(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expires_at: Option<DateTime<Utc>>,
        comment: Option<String>,
    ) -> Result<QuoteResult> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx)
            .quotes
            .send(caller, id, expires_at, comment)
            .await?
            .into())
    }

    /// Accepts a sent quote before it expires (its buyer, or a company user with
    /// `PLACE_ORDERS` and `VIEW_ORDERS`): it is placed as an order through the normal
    /// checkout at the quoted prices, with the quote's discount; approval rules and the
    /// credit limit apply as to any order. A quote is accepted once.
    async fn accept_quote(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AcceptQuoteInput,
    ) -> Result<AcceptQuoteResult> {
        let caller = caller(ctx)?;
        let quote = parse_id("id", &id)?;
        let cur = services(ctx)
            .quotes
            .quote(caller, quote)
            .await
            .map(|q| currency(&q))
            .unwrap_or(CurrencyCode::EUR);
        let outcome = services(ctx)
            .orders
            .accept_quote(
                caller,
                quote,
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
                    email: None,
                    accept_price_changes: false,
                    expected_version: None,
                    idempotency_key: None,
                },
            )
            .await?;
        Ok(match outcome {
            PlaceOutcome::Quote(r) => AcceptQuoteResult::Refused(r.into()),
            o => AcceptQuoteResult::Placement(PlaceOrderResult::from_outcome(o, cur)),
        })
    }

    /// Declines a sent quote with a reason (as `acceptQuote`).
    async fn decline_quote(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> Result<QuoteResult> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx)
            .quotes
            .decline(caller, id, &reason)
            .await?
            .into())
    }

    /// Asks for changes to a sent quote (as `acceptQuote`): it goes back to the rep in a new
    /// round; the history keeps what was sent before.
    async fn renegotiate_quote(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: String,
    ) -> Result<QuoteResult> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(services(ctx)
            .quotes
            .renegotiate(caller, id, &comment)
            .await?
            .into())
    }

    /// Changes the tenant's quote settings (`ORDER_WRITE`).
    async fn update_quote_settings(
        &self,
        ctx: &Context<'_>,
        allow_above_list_prices: Option<bool>,
        validity_days: Option<i32>,
    ) -> Result<QuoteSettingsObject> {
        Ok(services(ctx)
            .quotes
            .update_settings(caller(ctx)?, allow_above_list_prices, validity_days)
            .await?
            .into())
    }
}
