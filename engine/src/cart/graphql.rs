//! GraphQL for carts: `cart`, the bulk line mutations, quick order, coupons, shipping.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vectis_strategies::{CurrencyCode, Money};

use super::CartToken;
use super::entity::{coupon, line, order};
use super::quick_order::parse_quick_order;
use super::service::{
    CartChange, CartOutcome, CartService, LineInput, LineRelations, LineUpdate, LinesPage,
    MAX_CART_LINES, NewCoupon, StoredAdjustment, StoredPriceSource, StoredTaxLine,
    StoredTaxSummary,
};
use crate::auth::Permission;
use crate::catalog::entity::variant;
use crate::catalog::graphql::{Variant, prefetch_variants};
use crate::catalog::loader::catalog_loader;
use crate::catalog::loader::{ProductById, VariantById};
use crate::error::{AppError, ItemError};
use crate::graphql::address::PostalAddressInput;
use crate::graphql::connection::{IdCursor, connection, node_selections, page_request};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::parse_id;
use crate::graphql::scalars::{Int64, MoneyObject};
use crate::pricing::graphql::PriceSourceKind;

fn money(amount: i64, currency: CurrencyCode) -> MoneyObject {
    Money::new(amount, currency).into()
}

fn currency(cart: &order::Model) -> CurrencyCode {
    cart.currency.parse().unwrap_or(CurrencyCode::EUR)
}

/// A cart: an order in its first state, with totals computed on every change and stored, so
/// reading it never re-prices it.
pub struct Cart(pub order::Model);

/// Amounts of a cart.
#[derive(SimpleObject)]
pub struct CartTotals {
    /// Sum of the line prices (net, or gross when prices include tax).
    pub subtotal: MoneyObject,
    /// Sum of the order discounts (positive).
    pub discounts: MoneyObject,
    /// Shipping of the chosen method.
    pub shipping: MoneyObject,
    /// Tax: line tax plus the tax effect of discounts and shipping.
    pub tax: MoneyObject,
    /// What the buyer pays.
    pub total: MoneyObject,
}

/// A discount applied to the cart.
#[derive(SimpleObject)]
pub struct CartAdjustment {
    /// The coupon code.
    pub code: String,
    /// The amount (negative).
    pub amount: MoneyObject,
}

/// Taxable amount and tax per tax category (shipping has its own entry).
#[derive(SimpleObject)]
pub struct CartTaxSummary {
    /// `standard`, `reduced`, `zero` or `shipping`.
    pub category: String,
    /// Taxable amount after discounts.
    pub amount: MoneyObject,
    /// Tax.
    pub tax: MoneyObject,
}

/// A shipping method offered for the cart.
#[derive(SimpleObject)]
pub struct ShippingMethodQuote {
    /// Code for `setShippingMethod`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Price for this cart.
    pub price: MoneyObject,
}

/// A cart's shipping address.
#[derive(SimpleObject)]
pub struct CartAddress {
    /// First street line.
    pub street_line1: String,
    /// Second street line.
    pub street_line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Region.
    pub region: Option<String>,
    /// Country code.
    pub country_code: String,
}

/// Fields of a page of cart lines.
#[derive(SimpleObject)]
pub struct CartLineConnectionFields {
    /// Lines on all pages.
    pub total_count: i64,
}

#[Object]
impl Cart {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
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
    /// Sum of the quantities.
    async fn total_quantity(&self) -> Int64 {
        Int64(self.0.total_quantity)
    }
    /// Total weight in grams.
    async fn total_weight_grams(&self) -> Int64 {
        Int64(self.0.total_weight_grams)
    }
    /// Stored totals.
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
    /// Applied coupon codes (a code whose conditions no longer hold stays, without discount).
    async fn coupons(&self) -> Vec<String> {
        serde_json::from_str(&self.0.coupons).unwrap_or_default()
    }
    /// Discounts applied.
    async fn adjustments(&self) -> Vec<CartAdjustment> {
        let c = currency(&self.0);
        serde_json::from_str::<Vec<StoredAdjustment>>(&self.0.adjustments)
            .unwrap_or_default()
            .into_iter()
            .map(|a| CartAdjustment {
                code: a.code,
                amount: money(a.amount, c),
            })
            .collect()
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
    /// Shipping address.
    async fn shipping_address(&self) -> Option<CartAddress> {
        CartService::address_of(&self.0).map(|a| CartAddress {
            street_line1: a.street_line1,
            street_line2: a.street_line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country_code: a.country_code,
        })
    }
    /// Chosen shipping method code.
    async fn shipping_method(&self) -> Option<&str> {
        self.0.shipping_method.as_deref()
    }
    /// Shipping methods offered for this cart, cheapest first.
    async fn shipping_methods(&self, ctx: &Context<'_>) -> Result<Vec<ShippingMethodQuote>> {
        Ok(services(ctx)
            .cart
            .shipping_methods(&self.0)?
            .into_iter()
            .map(|q| ShippingMethodQuote {
                code: q.code,
                name: q.name,
                price: q.price.into(),
            })
            .collect())
    }
    /// Version, incremented by every change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Lines in the order they were added. `first` takes up to 10,000, so a whole cart reads
    /// in one request; variants and products are loaded in one batch each for the page.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "Page size, 0-10000.")] first: i32,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, CartLine, CartLineConnectionFields>> {
        line_connection(ctx, &self.0, first, after).await
    }
}

/// A page of an order's (or cart's) lines with what the selection asks of their variants and
/// products, in one transaction and one batch per relation, whatever the page size.
pub async fn line_connection(
    ctx: &Context<'_>,
    order: &order::Model,
    first: i32,
    after: Option<String>,
) -> Result<Connection<IdCursor, CartLine, CartLineConnectionFields>> {
    let caller = caller(ctx)?;
    let request = page_request(first, after.as_deref(), MAX_CART_LINES as u64)?;
    // `edges { node { variant } }` and `nodes { variant }` alike.
    let variants: Vec<_> = node_selections(ctx)
        .into_iter()
        .map(|node| node.field("variant"))
        .filter(|v| v.exists())
        .collect();
    // Lines and their variants in one transaction; the variants are fed to the request's
    // catalog loader so nested selections (product, prices) batch from there.
    let with = LineRelations {
        variants: !variants.is_empty(),
        products: variants.iter().any(|v| v.field("product").exists()),
        include_archived: caller.has(Permission::CatalogRead),
    };
    let page = if request.first == 0 {
        LinesPage::default()
    } else {
        services(ctx)
            .cart
            .lines(caller.tenant, order.id, request, with)
            .await?
    };
    let lines = request.page(page.lines, u64::try_from(order.line_count).unwrap_or(0));
    if with.variants {
        // Fed to the request's catalog loader, so nested selections (the product's fields,
        // prices, options) resolve from it or batch from there.
        let loaded: Vec<_> = lines.rows.iter().filter_map(|(_, v)| v.clone()).collect();
        let loader = catalog_loader(ctx)?;
        loader
            .feed_many(loaded.iter().map(|v| (VariantById(v.id), v.clone())))
            .await;
        loader
            .feed_many(page.products.into_iter().map(|p| (ProductById(p.id), p)))
            .await;
        for selection in variants {
            prefetch_variants(ctx, selection, &loaded).await?;
        }
    }
    let c = currency(order);
    let total_count = order.line_count;
    Ok(connection(
        &request,
        lines,
        |(l, _)| l.id,
        |(l, v)| CartLine(l, c, v),
        CartLineConnectionFields { total_count },
    ))
}

/// A cart line: one variant with its quantity, price and tax as computed at the last change.
pub struct CartLine(
    pub line::Model,
    pub CurrencyCode,
    /// The variant, when the selection asked for it (loaded with the page).
    pub Option<variant::Model>,
);

/// The origin of a line's unit price.
#[derive(SimpleObject)]
pub struct LinePriceSource {
    /// Base price or price list.
    pub kind: PriceSourceKind,
    /// The price list.
    pub price_list_id: Option<ID>,
    /// The volume tier's minimum quantity.
    pub min_quantity: Option<Int64>,
    /// The quote the price was agreed in.
    pub quote_id: Option<ID>,
}

/// An applied tax rate of a line.
#[derive(SimpleObject)]
pub struct CartTaxLine {
    /// Label, e.g. `VAT DE 19%`.
    pub label: String,
    /// Rate in basis points (1900 = 19 %).
    pub rate_basis_points: i32,
    /// Tax.
    pub amount: MoneyObject,
    /// The recipient accounts for the tax (EU B2B reverse charge).
    pub reverse_charge: bool,
    /// Note for the invoice.
    pub note: Option<String>,
}

#[Object]
impl CartLine {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Quantity (of an order's line: the units still ordered, after cancellations).
    async fn quantity(&self) -> Int64 {
        Int64(self.0.current_quantity())
    }
    /// Units cancelled before they shipped (always 0 in a cart).
    async fn cancelled_quantity(&self) -> Int64 {
        Int64(self.0.cancelled_quantity)
    }
    /// Unit price (net, or gross when prices include tax).
    async fn unit_price(&self) -> MoneyObject {
        money(self.0.unit_price, self.1)
    }
    /// Unit price × quantity.
    async fn line_price(&self) -> MoneyObject {
        money(self.0.line_price, self.1)
    }
    /// Tax of the line (rounded per line, half away from zero).
    async fn tax(&self) -> MoneyObject {
        money(self.0.tax, self.1)
    }
    /// Tax category of the variant when priced.
    async fn tax_category(&self) -> &str {
        &self.0.tax_category
    }
    /// Applied tax rates.
    async fn tax_lines(&self) -> Vec<CartTaxLine> {
        serde_json::from_str::<Vec<StoredTaxLine>>(&self.0.tax_lines)
            .unwrap_or_default()
            .into_iter()
            .map(|t| CartTaxLine {
                label: t.label,
                rate_basis_points: i32::try_from(t.rate_bp).unwrap_or(i32::MAX),
                amount: money(t.amount, self.1),
                reverse_charge: t.reverse_charge,
                note: t.note,
            })
            .collect()
    }
    /// Where the unit price came from.
    async fn price_source(&self) -> LinePriceSource {
        let s: StoredPriceSource =
            serde_json::from_str(&self.0.price_source).unwrap_or(StoredPriceSource {
                kind: "BASE_PRICE".into(),
                price_list_id: None,
                min_quantity: None,
                quote_id: None,
            });
        LinePriceSource {
            kind: match s.kind.as_str() {
                "PRICE_LIST" => PriceSourceKind::PriceList,
                "QUOTE" => PriceSourceKind::Quote,
                _ => PriceSourceKind::BasePrice,
            },
            price_list_id: s.price_list_id.map(|id| ID(id.to_string())),
            min_quantity: s.min_quantity.map(Int64),
            quote_id: s.quote_id.map(|id| ID(id.to_string())),
        }
    }
    /// The variant's id.
    async fn variant_id(&self) -> ID {
        ID(self.0.variant_id.to_string())
    }
    /// The variant (null when it was archived since, for storefront callers).
    async fn variant(&self) -> Option<Variant> {
        self.2.clone().map(Variant)
    }
}

/// A line to add: `variantId` or `sku`, and a quantity.
#[derive(InputObject)]
pub struct CartLineInput {
    /// The variant.
    pub variant_id: Option<ID>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// Quantity to add (1-1,000,000 per line).
    pub quantity: i32,
}

/// A line to add as the cart service takes it. An id that is not a UUID names no variant:
/// it is reported as `NOT_FOUND`.
pub fn line_input(l: CartLineInput) -> LineInput {
    LineInput {
        variant_id: optional_id("variantId", l.variant_id.as_ref()).unwrap_or(Some(Uuid::nil())),
        sku: l.sku,
        quantity: i64::from(l.quantity),
    }
}

/// A line to change: `lineId`, `variantId` or `sku`, and the new quantity (0 removes it).
#[derive(InputObject)]
pub struct CartLineUpdateInput {
    /// The cart line.
    pub line_id: Option<ID>,
    /// Or the variant.
    pub variant_id: Option<ID>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// New quantity.
    pub quantity: i32,
}

/// Result of a cart mutation.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CartPayload {
    /// Whether the change was applied (with `partial`, the valid items were).
    pub applied: bool,
    /// Invalid items with their index in the input (for `quickOrder`, the line number - 1).
    pub errors: Vec<ItemError>,
    /// A new guest cart's token: send it as `X-Vectis-Cart-Token` from now on. Shown once.
    pub cart_token: Option<String>,
    #[graphql(skip)]
    pub cart: Option<order::Model>,
}

#[ComplexObject]
impl CartPayload {
    /// The cart after the change.
    async fn cart(&self) -> Option<Cart> {
        self.cart.clone().map(Cart)
    }
}

impl From<CartOutcome> for CartPayload {
    fn from(o: CartOutcome) -> Self {
        CartPayload {
            applied: o.applied,
            errors: o.errors,
            cart_token: o.token,
            cart: o.cart,
        }
    }
}

fn token<'a>(ctx: &'a Context<'_>) -> Option<&'a str> {
    ctx.data_opt::<CartToken>().map(|t| t.0.as_str())
}

fn optional_id(field: &str, id: Option<&ID>) -> Result<Option<Uuid>, AppError> {
    id.map(|id| parse_id(field, id)).transpose()
}

/// A coupon.
pub struct CouponObject(pub coupon::Model);

#[Object(name = "Coupon")]
impl CouponObject {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Code (upper case; buyers enter it in any case).
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Percentage off in basis points (1000 = 10 %).
    async fn percent_basis_points(&self) -> Option<i32> {
        self.0.percentage_bp
    }
    /// Fixed amount off.
    async fn amount_off(&self) -> Option<MoneyObject> {
        let c: CurrencyCode = self.0.currency.parse().ok()?;
        self.0.amount.map(|a| money(a, c))
    }
    /// Currency the coupon is valid in.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Minimum subtotal.
    async fn min_order(&self) -> Option<MoneyObject> {
        let c: CurrencyCode = self.0.currency.parse().ok()?;
        self.0.min_order.map(|a| money(a, c))
    }
    /// Valid from.
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    /// Valid until (exclusive).
    async fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.valid_until
    }
    /// Switched on.
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// Input of `createCoupon`: exactly one of `percentBasisPoints` and `amountOff`.
#[derive(InputObject)]
pub struct CreateCouponInput {
    /// Code buyers enter (letters, digits, `-`, `_`; case-insensitive).
    pub code: String,
    /// Name.
    pub name: String,
    /// Percentage off in basis points (1-10000; 1000 = 10 %).
    pub percent_basis_points: Option<i32>,
    /// Fixed amount off, in minor units of `currency`.
    pub amount_off: Option<Int64>,
    /// Currency the coupon is valid in.
    pub currency: String,
    /// Minimum subtotal, in minor units.
    pub min_order: Option<Int64>,
    /// Valid from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until (exclusive).
    pub valid_until: Option<DateTime<Utc>>,
    /// Switched on.
    #[graphql(default = true)]
    pub active: bool,
}

/// Cart queries.
#[derive(Default)]
pub struct CartQuery;

#[Object]
impl CartQuery {
    /// The caller's active cart: a customer's (per company location for company users), or a
    /// guest's named by the `X-Vectis-Cart-Token` header; null before the first change.
    async fn cart(&self, ctx: &Context<'_>) -> Result<Option<Cart>> {
        let caller = caller(ctx)?;
        Ok(services(ctx)
            .cart
            .active(caller, token(ctx))
            .await?
            .map(Cart))
    }

    /// Coupons (staff with `CATALOG_READ`).
    async fn coupons(&self, ctx: &Context<'_>) -> Result<Vec<CouponObject>> {
        let caller = require(ctx, Permission::CatalogRead)?;
        Ok(services(ctx)
            .cart
            .coupons(caller)
            .await?
            .into_iter()
            .map(CouponObject)
            .collect())
    }
}

/// Cart mutations: customers and storefront guests; company users need `PLACE_ORDERS`.
#[derive(Default)]
pub struct CartMutation;

impl CartMutation {
    async fn change(
        ctx: &Context<'_>,
        currency: Option<String>,
        change: CartChange,
        partial: bool,
    ) -> Result<CartPayload> {
        let caller = caller(ctx)?;
        let outcome = services(ctx)
            .cart
            .change(caller, token(ctx), currency.as_deref(), change, partial)
            .await?;
        if let Ok(loader) = catalog_loader(ctx) {
            crate::catalog::loader::clear(loader);
        }
        Ok(outcome.into())
    }
}

#[Object]
impl CartMutation {
    /// Adds up to 10,000 lines at once; lines of the same variant merge. All-or-nothing: if any
    /// item is invalid nothing changes and `errors` lists each (`NOT_FOUND`, `ARCHIVED`,
    /// `NO_PRICE`, `VALIDATION`, `CART_FULL`); with `partial: true` the valid items apply.
    /// `currency` chooses the currency of a new (or empty) cart.
    async fn add_cart_lines(
        &self,
        ctx: &Context<'_>,
        lines: Vec<CartLineInput>,
        #[graphql(default = false)] partial: bool,
        currency: Option<String>,
    ) -> Result<CartPayload> {
        let input = lines.into_iter().map(line_input).collect();
        Self::change(ctx, currency, CartChange::AddLines(input), partial).await
    }

    /// Sets the quantities of up to 10,000 lines, each named by `lineId`, `variantId` or `sku`;
    /// 0 removes a line, a variant not in the cart is added. All-or-nothing unless `partial`.
    async fn update_cart_lines(
        &self,
        ctx: &Context<'_>,
        lines: Vec<CartLineUpdateInput>,
        #[graphql(default = false)] partial: bool,
    ) -> Result<CartPayload> {
        let input = lines
            .into_iter()
            .map(|l| LineUpdate {
                line_id: optional_id("lineId", l.line_id.as_ref()).unwrap_or(Some(Uuid::nil())),
                variant_id: optional_id("variantId", l.variant_id.as_ref())
                    .unwrap_or(Some(Uuid::nil())),
                sku: l.sku,
                quantity: i64::from(l.quantity),
            })
            .collect();
        Self::change(ctx, None, CartChange::UpdateLines(input), partial).await
    }

    /// Removes lines by id. All-or-nothing unless `partial`.
    async fn remove_cart_lines(
        &self,
        ctx: &Context<'_>,
        line_ids: Vec<ID>,
        #[graphql(default = false)] partial: bool,
    ) -> Result<CartPayload> {
        let ids = line_ids
            .iter()
            .map(|id| Uuid::try_parse(id.as_str()).unwrap_or(Uuid::nil()))
            .collect();
        Self::change(ctx, None, CartChange::RemoveLines(ids), partial).await
    }

    /// Removes every line (coupons and addresses stay).
    async fn clear_cart(&self, ctx: &Context<'_>) -> Result<CartPayload> {
        Self::change(ctx, None, CartChange::Clear, false).await
    }

    /// Adds lines pasted as text: one `SKU, quantity` per line (comma, semicolon, tab or
    /// spaces; a missing quantity is 1; a `sku,quantity` header and `#` comments are skipped).
    /// Errors carry the 0-based line number as `index`. All-or-nothing unless `partial`.
    async fn quick_order(
        &self,
        ctx: &Context<'_>,
        text: String,
        #[graphql(default = false)] partial: bool,
        currency: Option<String>,
    ) -> Result<CartPayload> {
        let caller = caller(ctx)?;
        let parsed = parse_quick_order(&text)?;
        if !parsed.errors.is_empty() && !partial {
            return Ok(CartPayload {
                applied: false,
                errors: parsed.errors,
                cart_token: None,
                cart: services(ctx).cart.active(caller, token(ctx)).await?,
            });
        }
        let mut payload =
            Self::change(ctx, currency, CartChange::AddLines(parsed.lines), partial).await?;
        for e in payload.errors.iter_mut() {
            e.index = parsed.line_numbers[e.index as usize] as i32;
        }
        payload.errors.extend(parsed.errors);
        payload.errors.sort_by_key(|e| e.index);
        Ok(payload)
    }

    /// Applies a coupon code. A coupon that does not apply leaves the cart unchanged and is
    /// reported in `errors` (`NOT_FOUND`, `VALIDATION`, or `COUPON_NOT_APPLICABLE` when
    /// inactive, expired, in another currency or below its minimum order value).
    async fn apply_coupon(&self, ctx: &Context<'_>, code: String) -> Result<CartPayload> {
        Self::change(ctx, None, CartChange::ApplyCoupon(code), false).await
    }

    /// Removes a coupon code (`NOT_FOUND` in `errors` when the cart does not have it).
    async fn remove_coupon(&self, ctx: &Context<'_>, code: String) -> Result<CartPayload> {
        Self::change(ctx, None, CartChange::RemoveCoupon(code), false).await
    }

    /// Sets the shipping address; every line is re-taxed for the new destination.
    async fn set_shipping_address(
        &self,
        ctx: &Context<'_>,
        address: PostalAddressInput,
    ) -> Result<CartPayload> {
        Self::change(
            ctx,
            None,
            CartChange::ShippingAddress(address.into()),
            false,
        )
        .await
    }

    /// Chooses one of `cart.shippingMethods`; another code leaves the cart unchanged and is
    /// reported in `errors` as `SHIPPING_METHOD_NOT_AVAILABLE`.
    async fn set_shipping_method(&self, ctx: &Context<'_>, code: String) -> Result<CartPayload> {
        Self::change(ctx, None, CartChange::ShippingMethod(code), false).await
    }

    /// Creates a coupon (staff with `CATALOG_WRITE`).
    async fn create_coupon(
        &self,
        ctx: &Context<'_>,
        input: CreateCouponInput,
    ) -> Result<CouponObject> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let created = services(ctx)
            .cart
            .create_coupon(
                caller,
                NewCoupon {
                    code: input.code,
                    name: input.name,
                    percent_bp: input.percent_basis_points,
                    amount_off: input.amount_off.map(|a| a.0),
                    currency: input.currency,
                    min_order: input.min_order.map(|a| a.0),
                    valid_from: input.valid_from,
                    valid_until: input.valid_until,
                    active: input.active,
                },
            )
            .await?;
        Ok(CouponObject(created))
    }
}
