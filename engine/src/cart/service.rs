//! The cart service: bulk line changes priced and taxed in batch, totals stored on the cart.
//!
//! Every mutation runs in one transaction with a constant number of statements, whatever the
//! number of lines it touches or the cart holds:
//!
//! 1. the cart row (created on first use),
//! 2. the variants named by the input and the cart lines they already have (one query each),
//! 3. the pricing data of those variants (three queries, see `PricingService::data_in`),
//! 4. pricing and tax through the configured strategies, once, with all changed lines,
//! 5. one multi-row upsert (the rows travel as one JSON parameter, so neither SQLite's nor
//!    PostgreSQL's bind-parameter limit applies) and one multi-row delete,
//! 6. one aggregate over the cart's lines per tax category, from which promotions, shipping
//!    and order-level tax compute the totals (without reading the lines themselves),
//! 7. the cart row update and the outbox event.
//!
//! Only the lines a mutation names are priced, so adding one line to a 10,000-line cart costs
//! the same as adding it to an empty one. Changing what every line depends on (the shipping
//! address, hence the tax zone) re-prices all lines in the same statements.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::pricing::{LinePrice, PriceLine, PriceSource, PricingError};
use vectis_strategies::promotions::{Coupon, CouponRejection, Discount, PromotionContext};
use vectis_strategies::shipping::{ShippingContext, ShippingQuote};
use vectis_strategies::tax::{TaxContext, TaxLine, TaxableLine};
use vectis_strategies::{CurrencyCode, Money, MoneyError, Strategies};

use super::entity::{coupon, line, order};
use crate::auth::{Caller, CompanyPermission, Principal};
use crate::catalog::entity::{product, variant};
use crate::catalog::read as catalog;
use crate::catalog::service::ARCHIVED;
use crate::db::id_in;
use crate::db::page::PageRequest;
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::kernel::PostalAddress;
use crate::kernel::{TenantId, hash_key};
use crate::pricing::PricingService;
use crate::pricing::service::{Buyer, MAX_LINE_QUANTITY};

/// Most lines one call takes, and most lines a cart holds.
pub const MAX_CART_LINES: usize = 10_000;
/// Most coupons on one cart.
pub const MAX_COUPONS: usize = 5;
/// The state of an order that is still a cart.
pub const CART: &str = "cart";
/// Prefix of guest cart tokens.
pub const CART_TOKEN_PREFIX: &str = "ct_";

/// Codes of per-item cart errors.
pub mod item_code {
    /// The variant is archived and cannot be bought.
    pub const ARCHIVED: &str = "ARCHIVED";
    /// The variant has no price in the cart's currency.
    pub const NO_PRICE: &str = "NO_PRICE";
    /// The cart would hold more than 10,000 lines.
    pub const CART_FULL: &str = "CART_FULL";
    /// A coupon that does not apply to this cart.
    pub const COUPON_NOT_APPLICABLE: &str = "COUPON_NOT_APPLICABLE";
    /// A shipping method not offered for this cart.
    pub const SHIPPING_METHOD_NOT_AVAILABLE: &str = "SHIPPING_METHOD_NOT_AVAILABLE";
}

/// Seller-side settings carts are priced with.
#[derive(Debug, Clone)]
pub struct CartSettings {
    /// The seller's country (tax origin).
    pub seller_country: String,
    /// Whether prices are entered including tax (gross) or not (net, the B2B default).
    pub prices_include_tax: bool,
}

/// A line to add: a variant by id or by SKU, and a quantity.
#[derive(Debug, Clone, Default)]
pub struct LineInput {
    /// The variant.
    pub variant_id: Option<Uuid>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// Quantity to add.
    pub quantity: i64,
}

/// A line to change: by line id, variant id or SKU; quantity 0 removes the line. Naming a
/// variant that is not in the cart adds it with that quantity.
#[derive(Debug, Clone, Default)]
pub struct LineUpdate {
    /// The cart line.
    pub line_id: Option<Uuid>,
    /// Or the variant.
    pub variant_id: Option<Uuid>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// New quantity.
    pub quantity: i64,
}

/// A change to a cart.
#[derive(Debug, Clone)]
pub enum CartChange {
    /// Add quantities (merging with lines of the same variant).
    AddLines(Vec<LineInput>),
    /// Set quantities.
    UpdateLines(Vec<LineUpdate>),
    /// Remove lines by id.
    RemoveLines(Vec<Uuid>),
    /// Remove every line.
    Clear,
    /// Apply a coupon code.
    ApplyCoupon(String),
    /// Remove a coupon code.
    RemoveCoupon(String),
    /// Set the shipping address (re-taxes every line).
    ShippingAddress(PostalAddress),
    /// Choose a shipping method.
    ShippingMethod(String),
}

/// The outcome of a cart mutation.
#[derive(Debug, Clone, Default)]
pub struct CartOutcome {
    /// The cart after the change (unchanged when it was not applied).
    pub cart: Option<order::Model>,
    /// Whether the change was applied.
    pub applied: bool,
    /// Invalid items with their index in the input.
    pub errors: Vec<ItemError>,
    /// The token of a guest cart created by this call (shown once).
    pub token: Option<String>,
}

/// Input of `createCoupon`.
#[derive(Debug, Clone)]
pub struct NewCoupon {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Percentage off in basis points.
    pub percent_bp: Option<i32>,
    /// Or a fixed amount off.
    pub amount_off: Option<i64>,
    /// Currency code as given.
    pub currency: String,
    /// Minimum subtotal.
    pub min_order: Option<i64>,
    /// Valid from.
    pub valid_from: Option<chrono::DateTime<Utc>>,
    /// Valid until (exclusive).
    pub valid_until: Option<chrono::DateTime<Utc>>,
    /// Switched on.
    pub active: bool,
}

/// A stored tax line of a cart line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTaxLine {
    /// Label, e.g. `VAT DE 19%`.
    pub label: String,
    /// Rate in basis points.
    pub rate_bp: u32,
    /// Tax amount in minor units.
    pub amount: i64,
    /// Reverse charge.
    pub reverse_charge: bool,
    /// Invoice note.
    pub note: Option<String>,
}

impl From<&TaxLine> for StoredTaxLine {
    fn from(t: &TaxLine) -> Self {
        StoredTaxLine {
            label: t.label.clone(),
            rate_bp: t.rate_bp,
            amount: t.amount.amount,
            reverse_charge: t.reverse_charge,
            note: t.note.clone(),
        }
    }
}

/// Where a stored unit price came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPriceSource {
    /// `BASE_PRICE` or `PRICE_LIST`.
    pub kind: String,
    /// The price list.
    pub price_list_id: Option<Uuid>,
    /// The tier's minimum quantity.
    pub min_quantity: Option<i64>,
}

impl From<PriceSource> for StoredPriceSource {
    fn from(s: PriceSource) -> Self {
        match s {
            PriceSource::Base => StoredPriceSource {
                kind: "BASE_PRICE".into(),
                price_list_id: None,
                min_quantity: None,
            },
            PriceSource::PriceList {
                price_list,
                min_quantity,
            } => StoredPriceSource {
                kind: "PRICE_LIST".into(),
                price_list_id: Some(price_list),
                min_quantity: Some(min_quantity),
            },
        }
    }
}

/// An order adjustment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAdjustment {
    /// Coupon code.
    pub code: String,
    /// Amount (negative for discounts).
    pub amount: i64,
}

/// Net amount and tax of one tax category in a cart, after discounts and with shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTaxSummary {
    /// Tax category (`standard`, `reduced`, `zero`, or `shipping`).
    pub category: String,
    /// Taxable amount (as entered: net or gross).
    pub amount: i64,
    /// Tax.
    pub tax: i64,
}

/// A priced and taxed line ready to be written (the JSON shape of the bulk upsert).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LineRow {
    id: String,
    variant: String,
    quantity: i64,
    unit_price: i64,
    line_price: i64,
    tax: i64,
    tax_category: String,
    weight: i64,
    price_source: String,
    tax_lines: String,
}

/// Why one line cannot be priced: an item error code and message.
type LineFault = (&'static str, String);

/// Per tax category sums of a cart's lines.
#[derive(Debug, Clone, Default)]
struct Aggregate {
    category: String,
    lines: i64,
    quantity: i64,
    weight: i64,
    amount: i64,
    tax: i64,
}

/// What to load with a page of cart lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineRelations {
    /// The lines' variants.
    pub variants: bool,
    /// The variants' products.
    pub products: bool,
    /// Archived variants and products too (staff with `CATALOG_READ`).
    pub include_archived: bool,
}

/// A page of cart lines with what was asked of their relations.
#[derive(Debug, Clone, Default)]
pub struct LinesPage {
    /// Lines in order, each with its variant when asked (and visible).
    pub lines: Vec<(line::Model, Option<variant::Model>)>,
    /// The variants' products, when asked.
    pub products: Vec<product::Model>,
}

/// Carts.
#[derive(Clone)]
pub struct CartService {
    core: Core,
    pricing: PricingService,
    strategies: Strategies,
    settings: Arc<CartSettings>,
}

fn json_text<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(e.into()))
}

fn overflow(field: &str) -> AppError {
    AppError::validation(field, "the amount overflows")
}

/// Normalises a coupon code: trimmed, upper case.
pub fn coupon_code(code: &str) -> AppResult<String> {
    let code = code.trim().to_uppercase();
    if code.is_empty()
        || code.len() > 64
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::validation(
            "code",
            "must be 1-64 letters, digits, `-` or `_`",
        ));
    }
    Ok(code)
}

/// The strategy's view of a stored coupon.
pub fn to_coupon(c: &coupon::Model) -> Option<Coupon> {
    let currency: CurrencyCode = c.currency.parse().ok()?;
    let discount = match (c.kind.as_str(), c.percentage_bp, c.amount) {
        ("percentage", Some(bp), _) => Discount::Percentage(u32::try_from(bp).ok()?),
        ("fixed", _, Some(amount)) => Discount::Fixed(Money::new(amount, currency)),
        _ => return None,
    };
    Some(Coupon {
        code: c.code.clone(),
        discount,
        min_order: c.min_order.map(|m| Money::new(m, currency)),
        valid_from: c.valid_from.map(|t| t.timestamp()),
        valid_until: c.valid_until.map(|t| t.timestamp()),
        active: c.active,
    })
}

/// Splits `total` over `weights` in proportion, exactly (largest remainders get the leftover).
fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<(usize, i64, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let raw = i128::from(total) * i128::from(*w);
            // Shares are at most `total`, so they fit in i64.
            (i, (raw / sum) as i64, raw % sum)
        })
        .collect();
    let mut left = total - shares.iter().map(|s| s.1).sum::<i64>();
    shares.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for s in shares.iter_mut() {
        if left == 0 {
            break;
        }
        s.1 += left.signum();
        left -= left.signum();
    }
    shares.sort_by_key(|s| s.0);
    shares.into_iter().map(|s| s.1).collect()
}

impl CartService {
    /// A cart service pricing with `strategies`.
    pub fn new(
        core: Core,
        pricing: PricingService,
        strategies: Strategies,
        settings: CartSettings,
    ) -> Self {
        CartService {
            core,
            pricing,
            strategies,
            settings: Arc::new(settings),
        }
    }

    /// The key of the caller's active cart: a customer in a company location, a customer, or a
    /// guest token. Staff and API keys have no cart.
    fn cart_key(caller: &Caller, token: Option<&str>) -> AppResult<Option<String>> {
        match &caller.principal {
            Principal::Customer { id, membership, .. } => Ok(Some(match membership {
                Some(m) => format!(
                    "customer:{id}:{}:{}",
                    m.company_id,
                    m.location_id.map(|l| l.to_string()).unwrap_or_default()
                ),
                None => format!("customer:{id}"),
            })),
            Principal::Storefront => Ok(token
                .filter(|t| t.starts_with(CART_TOKEN_PREFIX))
                .map(|t| format!("guest:{}", hash_key(t)))),
            Principal::Staff { .. } | Principal::ApiKey { .. } => Err(AppError::Rejected {
                code: code::FORBIDDEN,
                message: "carts belong to customers and storefront guests".into(),
            }),
        }
    }

    /// Company users need `PLACE_ORDERS` to change a cart.
    fn require_buyer(caller: &Caller) -> AppResult<()> {
        if let Principal::Customer {
            membership: Some(m),
            ..
        } = &caller.principal
            && !m.can(CompanyPermission::PlaceOrders)
        {
            return Err(AppError::Forbidden("PLACE_ORDERS".into()));
        }
        Ok(())
    }

    /// Creates a coupon (`CATALOG_WRITE`).
    pub async fn create_coupon(
        &self,
        caller: &Caller,
        input: NewCoupon,
    ) -> AppResult<coupon::Model> {
        caller.require(crate::auth::Permission::CatalogWrite)?;
        let code = coupon_code(&input.code)?;
        let name = crate::kernel::text::name("name", &input.name, 200)?;
        let currency: CurrencyCode = input
            .currency
            .parse()
            .map_err(|e: MoneyError| AppError::validation("currency", e.to_string()))?;
        let kind = match (input.percent_bp, input.amount_off) {
            (Some(bp), None) if (1..=10_000).contains(&bp) => "percentage",
            (Some(_), None) => {
                return Err(AppError::validation(
                    "percentBasisPoints",
                    "must be between 1 and 10000",
                ));
            }
            (None, Some(amount)) => {
                crate::catalog::service::validate_amount(amount)
                    .map_err(|m| AppError::validation("amountOff", m))?;
                if amount == 0 {
                    return Err(AppError::validation("amountOff", "must be positive"));
                }
                "fixed"
            }
            _ => {
                return Err(AppError::validation(
                    "percentBasisPoints",
                    "give exactly one of percentBasisPoints and amountOff",
                ));
            }
        };
        if let Some(min) = input.min_order {
            crate::catalog::service::validate_amount(min)
                .map_err(|m| AppError::validation("minOrder", m))?;
        }
        if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
            && from >= until
        {
            return Err(AppError::validation(
                "validUntil",
                "must be after validFrom",
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let now = Utc::now();
        let created = coupon::Entity::insert(coupon::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(caller.tenant.0),
            code: Set(code.clone()),
            name: Set(name),
            kind: Set(kind.into()),
            percentage_bp: Set(input.percent_bp),
            amount: Set(input.amount_off),
            currency: Set(currency.to_string()),
            min_order: Set(input.min_order),
            valid_from: Set(input.valid_from),
            valid_until: Set(input.valid_until),
            active: Set(input.active),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_coupons_tenant_code",
            "coupons.tenant_id, coupons.code",
            format!("coupon `{code}` exists"),
        ))?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "coupon",
            created.id,
            1,
            "vectis.coupon.created",
            json!({ "id": created.id, "code": created.code, "kind": created.kind,
                    "percentBasisPoints": created.percentage_bp, "amountOff": created.amount,
                    "currency": created.currency, "minOrder": created.min_order, "active": created.active }),
        ));
        uow.commit().await?;
        Ok(created)
    }

    /// All coupons of the tenant, by code.
    pub async fn coupons(&self, caller: &Caller) -> AppResult<Vec<coupon::Model>> {
        caller.require(crate::auth::Permission::CatalogRead)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(coupon::Entity::find()
                        .filter(coupon::Column::TenantId.eq(tenant.0))
                        .order_by_asc(coupon::Column::Code)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// The caller's active cart, if any (one statement).
    pub async fn active(
        &self,
        caller: &Caller,
        token: Option<&str>,
    ) -> AppResult<Option<order::Model>> {
        let Some(key) = Self::cart_key(caller, token)? else {
            return Ok(None);
        };
        let tenant = caller.tenant;
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(order::Entity::find()
                        .filter(order::Column::TenantId.eq(tenant.0))
                        .filter(order::Column::CartKey.eq(key))
                        .one(tx)
                        .await?)
                })
            })
            .await
    }

    /// A page of a cart's lines in the order they were added (with the one extra line of
    /// [`PageRequest::limit`]), with their variants and products as `with` asks (archived ones
    /// only with `include_archived`); one transaction, up to three queries.
    pub async fn lines(
        &self,
        tenant: TenantId,
        order_id: Uuid,
        page: PageRequest,
        with: LineRelations,
    ) -> AppResult<LinesPage> {
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    let q = line::Entity::find()
                        .filter(line::Column::TenantId.eq(tenant.0))
                        .filter(line::Column::OrderId.eq(order_id));
                    let lines = page.apply(q, line::Column::Id).all(tx).await?;
                    if !with.variants || lines.is_empty() {
                        return Ok(LinesPage {
                            lines: lines.into_iter().map(|l| (l, None)).collect(),
                            products: Vec::new(),
                        });
                    }
                    let ids: Vec<Uuid> = lines
                        .iter()
                        .map(|l| l.variant_id)
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    let archived = with.include_archived;
                    let found: HashMap<Uuid, variant::Model> =
                        catalog::variants_by_id(tx, tenant, ids, archived)
                            .await?
                            .into_iter()
                            .map(|v| (v.id, v))
                            .collect();
                    let products = if with.products {
                        let ids: Vec<Uuid> = found
                            .values()
                            .map(|v| v.product_id)
                            .collect::<HashSet<_>>()
                            .into_iter()
                            .collect();
                        catalog::products_by_id(tx, tenant, ids, archived).await?
                    } else {
                        Vec::new()
                    };
                    Ok(LinesPage {
                        lines: lines
                            .into_iter()
                            .map(|l| {
                                let v = found.get(&l.variant_id).cloned();
                                (l, v)
                            })
                            .collect(),
                        products,
                    })
                })
            })
            .await
    }

    /// The shipping methods offered for a cart, cheapest first (no statement: from the stored
    /// totals).
    pub fn shipping_methods(&self, cart: &order::Model) -> AppResult<Vec<ShippingQuote>> {
        let currency = Self::currency_of(cart)?;
        let ctx = ShippingContext {
            currency,
            destination_country: Self::address_of(cart).map(|a| a.country_code),
            subtotal: Money::new(cart.subtotal - cart.discount, currency),
            total_quantity: cart.total_quantity,
            total_weight_grams: cart.total_weight_grams,
        };
        self.strategies
            .shipping
            .quotes(&ctx)
            .map_err(|_| overflow("shipping"))
    }

    fn currency_of(cart: &order::Model) -> AppResult<CurrencyCode> {
        cart.currency
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("cart with a bad currency")))
    }

    /// The stored shipping address.
    pub fn address_of(cart: &order::Model) -> Option<PostalAddress> {
        serde_json::from_str(cart.shipping_address.as_deref()?).ok()
    }

    /// Applies `change` to the caller's cart. Bulk changes are all-or-nothing unless `partial`:
    /// then valid items apply and the rest are reported.
    pub async fn change(
        &self,
        caller: &Caller,
        token: Option<&str>,
        currency: Option<&str>,
        change: CartChange,
        partial: bool,
    ) -> AppResult<CartOutcome> {
        Self::require_buyer(caller)?;
        let items = match &change {
            CartChange::AddLines(l) => l.len(),
            CartChange::UpdateLines(l) => l.len(),
            CartChange::RemoveLines(l) => l.len(),
            _ => 0,
        };
        if items > MAX_CART_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {MAX_CART_LINES} lines per call"),
            ));
        }
        let currency: Option<CurrencyCode> = currency
            .map(|c| {
                c.parse()
                    .map_err(|e: MoneyError| AppError::validation("currency", e.to_string()))
            })
            .transpose()?;
        let change = match change {
            CartChange::ShippingAddress(a) => CartChange::ShippingAddress(a.validated()?),
            other => other,
        };
        let creates = matches!(
            change,
            CartChange::AddLines(_)
                | CartChange::ApplyCoupon(_)
                | CartChange::ShippingAddress(_)
                | CartChange::ShippingMethod(_)
        );
        let buyer = self.pricing.buyer(caller).await?;
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let key = Self::cart_key(caller, token)?;
        // The cart is the aggregate: its row is locked before anything is read, so concurrent
        // changes of one cart run one after the other and each sees the lines and totals the
        // previous one committed.
        let existing = match &key {
            Some(key) => Self::lock_cart(&uow, key).await?,
            None => None,
        };
        let mut new_token = None;
        let (cart, created) = match existing {
            Some(cart) => (cart, false),
            None if creates => {
                // Guests never choose their token: a token that names no cart (expired,
                // mistyped, another tenant's) is replaced by a new server-issued one.
                let key = match key {
                    Some(key) if matches!(caller.principal, Principal::Customer { .. }) => key,
                    _ => {
                        let token = format!("{CART_TOKEN_PREFIX}{}", crate::auth::random_secret());
                        let key = format!("guest:{}", hash_key(&token));
                        new_token = Some(token);
                        key
                    }
                };
                self.create(&uow, &key, &buyer, currency).await?
            }
            None => return Err(AppError::not_found("Cart", "active cart")),
        };
        let mut cart = cart;
        if let Some(c) = currency
            && c.to_string() != cart.currency
        {
            if cart.line_count > 0 {
                return Err(AppError::validation(
                    "currency",
                    format!(
                        "must be {}, the currency of the cart's lines (clear the cart to change it)",
                        cart.currency
                    ),
                ));
            }
            cart.currency = c.to_string();
        }
        let mut work = Work {
            service: self,
            uow: &uow,
            buyer: &buyer,
            cart: &mut cart,
            errors: Vec::new(),
            upserts: Vec::new(),
            deletes: Vec::new(),
            delete_all: false,
            event: json!({}),
            event_type: "vectis.cart.updated",
        };
        work.run(change).await?;
        let Work {
            errors,
            upserts,
            deletes,
            delete_all,
            event,
            event_type,
            ..
        } = work;
        let nothing_valid = upserts.is_empty() && deletes.is_empty() && !delete_all;
        if !errors.is_empty() && (!partial || nothing_valid) {
            // Dropping the unit of work rolls everything back, a cart created now included.
            let mut errors = errors;
            errors.sort_by_key(|e| e.index);
            return Ok(CartOutcome {
                cart: if created { None } else { Some(cart) },
                applied: false,
                errors,
                token: None,
            });
        }
        self.write_lines(&uow, &cart, upserts, deletes, delete_all)
            .await?;
        let saved = self.save_totals(&mut uow, &buyer, &cart).await?;
        let mut data = event;
        if let Some(obj) = data.as_object_mut() {
            obj.insert("cartId".into(), json!(saved.id));
            obj.insert("customerId".into(), json!(saved.customer_id));
            obj.insert("companyId".into(), json!(saved.company_id));
            obj.insert("locationId".into(), json!(saved.location_id));
            obj.insert("lineCount".into(), json!(saved.line_count));
            obj.insert("currency".into(), json!(saved.currency));
            obj.insert("total".into(), json!(saved.total));
        }
        if created {
            uow.record(DomainEvent::new(
                tenant,
                "order",
                saved.id,
                1,
                "vectis.cart.created",
                json!({ "cartId": saved.id, "customerId": saved.customer_id, "companyId": saved.company_id, "locationId": saved.location_id, "currency": saved.currency }),
            ));
        }
        uow.record(DomainEvent::new(
            tenant,
            "order",
            saved.id,
            saved.version,
            event_type,
            data,
        ));
        uow.commit().await?;
        let mut errors = errors;
        errors.sort_by_key(|e| e.index);
        Ok(CartOutcome {
            cart: Some(saved),
            applied: true,
            errors,
            token: new_token,
        })
    }

    /// The cart with `key`, locked for the rest of the unit of work.
    async fn lock_cart(uow: &UnitOfWork, key: &str) -> AppResult<Option<order::Model>> {
        Ok(order::Entity::find()
            .filter(order::Column::TenantId.eq(uow.tenant().0))
            .filter(order::Column::CartKey.eq(key.to_owned()))
            .lock_exclusive()
            .one(uow.tx())
            .await?)
    }

    /// Creates the cart with `key` unless a concurrent call just did, and returns it locked,
    /// with whether this call created it.
    async fn create(
        &self,
        uow: &UnitOfWork,
        key: &str,
        buyer: &Buyer,
        currency: Option<CurrencyCode>,
    ) -> AppResult<(order::Model, bool)> {
        let tenant = uow.tenant();
        let currency = match currency {
            Some(c) => c.to_string(),
            None => crate::tenancy::default_currency_in(uow.tx(), tenant)
                .await?
                .to_string(),
        };
        let now = Utc::now();
        let model = order::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            state: Set(CART.into()),
            cart_key: Set(Some(key.to_owned())),
            customer_id: Set(buyer.customer),
            company_id: Set(buyer.company),
            location_id: Set(buyer.location.as_ref().map(|l| l.id)),
            currency: Set(currency),
            prices_include_tax: Set(self.settings.prices_include_tax),
            line_count: Set(0),
            total_quantity: Set(0),
            total_weight_grams: Set(0),
            subtotal: Set(0),
            discount: Set(0),
            shipping: Set(0),
            tax: Set(0),
            total: Set(0),
            coupons: Set("[]".into()),
            adjustments: Set("[]".into()),
            tax_summary: Set("[]".into()),
            shipping_address: Set(None),
            shipping_method: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // A concurrent first change of the same cart waits here for the other insert and
        // then inserts nothing; both continue with the one row, locked.
        let inserted = order::Entity::insert(model)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    order::Column::TenantId,
                    order::Column::CartKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(uow.tx())
            .await?;
        let cart = Self::lock_cart(uow, key)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the new cart is gone")))?;
        Ok((cart, inserted == 1))
    }

    /// The tax context of a cart for a buyer.
    fn tax_context(&self, buyer: &Buyer, cart: &order::Model) -> AppResult<TaxContext> {
        Ok(TaxContext {
            currency: Self::currency_of(cart)?,
            prices_include_tax: cart.prices_include_tax,
            seller_country: self.settings.seller_country.clone(),
            ship_to_country: Self::address_of(cart)
                .map(|a| a.country_code)
                .or_else(|| buyer.location_country.clone()),
            bill_to_country: None,
            buyer_vat_id: buyer.vat_id.clone(),
            buyer_tax_exempt: buyer.tax_exempt,
        })
    }

    /// Prices and taxes `(variant, quantity, existing line id)` in one call to each strategy.
    /// Returns one result per input: the row, or an item error code and message.
    async fn price(
        &self,
        uow: &UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
        items: &[(&variant::Model, i64, Option<Uuid>)],
    ) -> AppResult<Vec<Result<LineRow, LineFault>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let currency = Self::currency_of(cart)?;
        let ids: Vec<Uuid> = items
            .iter()
            .map(|(v, _, _)| v.id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let data = self
            .pricing
            .data_in(uow.tx(), uow.tenant(), ids, currency)
            .await?;
        let ctx = buyer.pricing(currency);
        let lines: Vec<PriceLine> = items
            .iter()
            .map(|(v, q, _)| PriceLine {
                variant: v.id,
                quantity: *q,
            })
            .collect();
        let prices = self.strategies.pricing.price(&ctx, &lines, &data);
        let mut amounts: Vec<Result<(LinePrice, Money), LineFault>> =
            Vec::with_capacity(items.len());
        for ((_, quantity, _), price) in items.iter().zip(prices) {
            amounts.push(match price {
                Ok(p) => match p.unit.checked_mul(*quantity) {
                    Ok(total) => Ok((p, total)),
                    Err(_) => Err((code::VALIDATION, "the line price overflows".to_owned())),
                },
                Err(PricingError::NoPrice(c)) => Err((
                    item_code::NO_PRICE,
                    format!("the variant has no price in {c}"),
                )),
                Err(PricingError::InvalidQuantity) => {
                    Err((code::VALIDATION, "quantity must be positive".to_owned()))
                }
            });
        }
        let tax_ctx = self.tax_context(buyer, cart)?;
        let taxable: Vec<TaxableLine> = items
            .iter()
            .zip(&amounts)
            .filter_map(|((v, _, _), a)| {
                a.as_ref().ok().map(|(_, total)| TaxableLine {
                    amount: *total,
                    category: v.tax_category.clone(),
                })
            })
            .collect();
        let mut taxes = self.strategies.tax.tax(&tax_ctx, &taxable).into_iter();
        let mut out = Vec::with_capacity(items.len());
        for ((v, quantity, line_id), amount) in items.iter().zip(amounts) {
            let (price, total) = match amount {
                Ok(a) => a,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let tax = match taxes.next() {
                Some(Ok(t)) => t,
                _ => {
                    out.push(Err((code::VALIDATION, "the line tax overflows".to_owned())));
                    continue;
                }
            };
            let tax_lines: Vec<StoredTaxLine> = tax.lines.iter().map(Into::into).collect();
            out.push(Ok(LineRow {
                id: line_id.unwrap_or_else(Uuid::now_v7).simple().to_string(),
                variant: v.id.simple().to_string(),
                quantity: *quantity,
                unit_price: price.unit.amount,
                line_price: total.amount,
                tax: tax.tax.amount,
                tax_category: v.tax_category.clone(),
                weight: v.weight_grams,
                price_source: json_text(&StoredPriceSource::from(price.source))?,
                tax_lines: json_text(&tax_lines)?,
            }));
        }
        Ok(out)
    }

    /// Writes lines with one upsert and one delete, whatever their number.
    async fn write_lines(
        &self,
        uow: &UnitOfWork,
        cart: &order::Model,
        upserts: Vec<LineRow>,
        deletes: Vec<Uuid>,
        delete_all: bool,
    ) -> AppResult<()> {
        let backend = self.core.db.backend();
        let tenant = uow.tenant();
        if delete_all {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(tenant.0))
                .filter(line::Column::OrderId.eq(cart.id))
                .exec(uow.tx())
                .await?;
        } else if !deletes.is_empty() {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(tenant.0))
                .filter(line::Column::OrderId.eq(cart.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), deletes))
                .exec(uow.tx())
                .await?;
        }
        if upserts.is_empty() {
            return Ok(());
        }
        let rows = json_text(&upserts)?;
        let now = Utc::now();
        let update = "ON CONFLICT (order_id, variant_id) DO UPDATE SET quantity = excluded.quantity, \
             unit_price = excluded.unit_price, line_price = excluded.line_price, tax = excluded.tax, \
             tax_category = excluded.tax_category, unit_weight_grams = excluded.unit_weight_grams, \
             price_source = excluded.price_source, tax_lines = excluded.tax_lines, \
             updated_at = excluded.updated_at";
        let columns = "id, tenant_id, order_id, variant_id, quantity, unit_price, line_price, tax, \
             tax_category, unit_weight_grams, price_source, tax_lines, created_at, updated_at";
        let statement = if backend == DbBackend::Postgres {
            Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO order_lines ({columns}) SELECT (x->>'id')::uuid, $1, $2, \
                     (x->>'variant')::uuid, (x->>'quantity')::bigint, (x->>'unitPrice')::bigint, \
                     (x->>'linePrice')::bigint, (x->>'tax')::bigint, x->>'taxCategory', \
                     (x->>'weight')::bigint, x->>'priceSource', x->>'taxLines', $3, $3 \
                     FROM jsonb_array_elements($4::jsonb) AS x {update}"
                ),
                [tenant.0.into(), cart.id.into(), now.into(), rows.into()],
            )
        } else {
            Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO order_lines ({columns}) SELECT unhex(json_extract(value, '$.id')), ?, ?, \
                     unhex(json_extract(value, '$.variant')), json_extract(value, '$.quantity'), \
                     json_extract(value, '$.unitPrice'), json_extract(value, '$.linePrice'), \
                     json_extract(value, '$.tax'), json_extract(value, '$.taxCategory'), \
                     json_extract(value, '$.weight'), json_extract(value, '$.priceSource'), \
                     json_extract(value, '$.taxLines'), ?, ? FROM json_each(?) WHERE true {update}"
                ),
                [
                    tenant.0.into(),
                    cart.id.into(),
                    now.into(),
                    now.into(),
                    rows.into(),
                ],
            )
        };
        uow.tx().execute_raw(statement).await?;
        Ok(())
    }

    /// Sums the cart's lines per tax category in one statement.
    async fn aggregate(&self, uow: &UnitOfWork, cart: &order::Model) -> AppResult<Vec<Aggregate>> {
        let backend = self.core.db.backend();
        let sql = if backend == DbBackend::Postgres {
            "SELECT tax_category, count(*)::bigint AS n, sum(quantity)::bigint AS q, \
             sum(quantity * unit_weight_grams)::bigint AS w, sum(line_price)::bigint AS p, \
             sum(tax)::bigint AS t FROM order_lines WHERE tenant_id = $1 AND order_id = $2 \
             GROUP BY tax_category ORDER BY tax_category"
        } else {
            "SELECT tax_category, count(*) AS n, sum(quantity) AS q, \
             sum(quantity * unit_weight_grams) AS w, sum(line_price) AS p, sum(tax) AS t \
             FROM order_lines WHERE tenant_id = ? AND order_id = ? \
             GROUP BY tax_category ORDER BY tax_category"
        };
        let rows = uow
            .tx()
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [uow.tenant().0.into(), cart.id.into()],
            ))
            .await
            .map_err(|e| {
                if e.to_string().contains("overflow") || e.to_string().contains("out of range") {
                    overflow("lines")
                } else {
                    e.into()
                }
            })?;
        rows.iter()
            .map(|r| {
                Ok(Aggregate {
                    category: r.try_get("", "tax_category")?,
                    lines: r.try_get("", "n")?,
                    quantity: r.try_get("", "q")?,
                    weight: r.try_get("", "w")?,
                    amount: r.try_get("", "p")?,
                    tax: r.try_get("", "t")?,
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(Into::into)
    }

    /// Recomputes the totals from the line aggregates, the coupons and the shipping method,
    /// and stores them with a version bump.
    async fn save_totals(
        &self,
        uow: &mut UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
    ) -> AppResult<order::Model> {
        let currency = Self::currency_of(cart)?;
        let aggregates = self.aggregate(uow, cart).await?;
        let sum = |f: fn(&Aggregate) -> i64| -> AppResult<i64> {
            aggregates
                .iter()
                .try_fold(0_i64, |acc, a| acc.checked_add(f(a)))
                .ok_or_else(|| overflow("lines"))
        };
        let line_count = sum(|a| a.lines)?;
        let quantity = sum(|a| a.quantity)?;
        let weight = sum(|a| a.weight)?;
        let subtotal = sum(|a| a.amount)?;
        let line_tax = sum(|a| a.tax)?;

        // Promotions, on the amounts per tax category.
        let codes: Vec<String> = serde_json::from_str(&cart.coupons).unwrap_or_default();
        let coupons: Vec<Coupon> = if codes.is_empty() {
            Vec::new()
        } else {
            let rows = coupon::Entity::find()
                .filter(coupon::Column::TenantId.eq(uow.tenant().0))
                .filter(coupon::Column::Code.is_in(codes.clone()))
                .all(uow.tx())
                .await?;
            codes
                .iter()
                .filter_map(|c| rows.iter().find(|r| &r.code == c).and_then(to_coupon))
                .collect()
        };
        let promo_ctx = PromotionContext {
            currency,
            at: Utc::now().timestamp(),
        };
        let category_amounts: Vec<Money> = aggregates
            .iter()
            .map(|a| Money::new(a.amount, currency))
            .collect();
        let adjustments = self
            .strategies
            .promotions
            .adjust(&promo_ctx, &category_amounts, &coupons)
            .map_err(|_| overflow("discounts"))?;
        let discount = adjustments
            .iter()
            .try_fold(0_i64, |acc, a| acc.checked_sub(a.amount.amount))
            .ok_or_else(|| overflow("discounts"))?;

        // Shipping, on the discounted subtotal.
        let mut shipping_method = cart.shipping_method.clone();
        let mut shipping = 0;
        // An empty cart ships nothing: no charge, though the chosen method stays for later.
        if let Some(method) = cart.shipping_method.as_ref().filter(|_| line_count > 0) {
            let probe = order::Model {
                subtotal,
                discount,
                total_quantity: quantity,
                total_weight_grams: weight,
                ..cart.clone()
            };
            match self
                .shipping_methods(&probe)?
                .into_iter()
                .find(|q| &q.code == method)
            {
                Some(q) => shipping = q.price.amount,
                None => shipping_method = None,
            }
        }

        // Order-level tax: the discount split over the tax categories in proportion, and
        // shipping at the standard rate; line tax is already stored per line.
        let tax_ctx = self.tax_context(buyer, cart)?;
        let shares = allocate(
            discount,
            &aggregates.iter().map(|a| a.amount).collect::<Vec<_>>(),
        );
        let mut taxable: Vec<TaxableLine> = aggregates
            .iter()
            .zip(&shares)
            .map(|(a, share)| TaxableLine {
                amount: Money::new(-share, currency),
                category: a.category.clone(),
            })
            .collect();
        taxable.push(TaxableLine {
            amount: Money::new(shipping, currency),
            category: "standard".into(),
        });
        let order_taxes = self.strategies.tax.tax(&tax_ctx, &taxable);
        let mut summary = Vec::with_capacity(aggregates.len() + 1);
        let mut tax = line_tax;
        for (i, t) in order_taxes.into_iter().enumerate() {
            let t = t.map_err(|_| overflow("tax"))?;
            tax = tax
                .checked_add(t.tax.amount)
                .ok_or_else(|| overflow("tax"))?;
            match aggregates.get(i) {
                Some(a) => summary.push(StoredTaxSummary {
                    category: a.category.clone(),
                    amount: a.amount - shares[i],
                    tax: a.tax + t.tax.amount,
                }),
                None if shipping != 0 => summary.push(StoredTaxSummary {
                    category: "shipping".into(),
                    amount: shipping,
                    tax: t.tax.amount,
                }),
                None => {}
            }
        }
        let mut total = subtotal
            .checked_sub(discount)
            .and_then(|t| t.checked_add(shipping))
            .ok_or_else(|| overflow("total"))?;
        if !cart.prices_include_tax {
            total = total.checked_add(tax).ok_or_else(|| overflow("total"))?;
        }
        let stored_adjustments: Vec<StoredAdjustment> = adjustments
            .iter()
            .map(|a| StoredAdjustment {
                code: a.code.clone(),
                amount: a.amount.amount,
            })
            .collect();
        let sets: Vec<(order::Column, Expr)> = vec![
            (order::Column::LineCount, Expr::value(line_count)),
            (order::Column::TotalQuantity, Expr::value(quantity)),
            (order::Column::TotalWeightGrams, Expr::value(weight)),
            (order::Column::Subtotal, Expr::value(subtotal)),
            (order::Column::Discount, Expr::value(discount)),
            (order::Column::Shipping, Expr::value(shipping)),
            (order::Column::Tax, Expr::value(tax)),
            (order::Column::Total, Expr::value(total)),
            (order::Column::Currency, Expr::value(cart.currency.clone())),
            (order::Column::Coupons, Expr::value(cart.coupons.clone())),
            (
                order::Column::Adjustments,
                Expr::value(json_text(&stored_adjustments)?),
            ),
            (order::Column::TaxSummary, Expr::value(json_text(&summary)?)),
            (
                order::Column::ShippingAddress,
                Expr::value(cart.shipping_address.clone()),
            ),
            (order::Column::ShippingMethod, Expr::value(shipping_method)),
        ];
        uow.bump::<order::Entity>(cart.id, sets, "Cart").await
    }
}

/// One mutation in progress: collects line writes, item errors and the event payload.
struct Work<'a> {
    service: &'a CartService,
    uow: &'a UnitOfWork,
    buyer: &'a Buyer,
    cart: &'a mut order::Model,
    errors: Vec<ItemError>,
    upserts: Vec<LineRow>,
    deletes: Vec<Uuid>,
    delete_all: bool,
    event: serde_json::Value,
    event_type: &'static str,
}

/// How an input item names a variant.
#[derive(Clone, Copy)]
enum VariantRef<'i> {
    Id(Uuid),
    Sku(&'i str),
}

impl Work<'_> {
    fn error(&mut self, index: usize, code: &str, field: &str, message: impl Into<String>) {
        self.errors
            .push(ItemError::new(index, code, Some(field), message));
    }

    async fn run(&mut self, change: CartChange) -> AppResult<()> {
        match change {
            CartChange::AddLines(lines) => {
                self.event_type = "vectis.cart.lines_added";
                let refs: Vec<(Option<VariantRef<'_>>, i64)> = lines
                    .iter()
                    .map(|l| {
                        (
                            Self::variant_ref(l.variant_id, l.sku.as_deref()),
                            l.quantity,
                        )
                    })
                    .collect();
                self.set_quantities(&refs, true).await
            }
            CartChange::UpdateLines(lines) => {
                self.event_type = "vectis.cart.lines_updated";
                self.update(&lines).await
            }
            CartChange::RemoveLines(ids) => {
                self.event_type = "vectis.cart.lines_removed";
                self.remove(&ids).await
            }
            CartChange::Clear => {
                self.event_type = "vectis.cart.cleared";
                self.delete_all = true;
                Ok(())
            }
            CartChange::ApplyCoupon(code) => {
                self.event_type = "vectis.cart.coupon_applied";
                let Some(code) = self.coupon_code(&code) else {
                    return Ok(());
                };
                self.apply_coupon(code).await
            }
            CartChange::RemoveCoupon(code) => {
                self.event_type = "vectis.cart.coupon_removed";
                let Some(code) = self.coupon_code(&code) else {
                    return Ok(());
                };
                let mut codes: Vec<String> =
                    serde_json::from_str(&self.cart.coupons).unwrap_or_default();
                if !codes.contains(&code) {
                    self.error(
                        0,
                        code::NOT_FOUND,
                        "code",
                        format!("coupon {code} is not on the cart"),
                    );
                    return Ok(());
                }
                codes.retain(|c| c != &code);
                self.cart.coupons = json_text(&codes)?;
                self.event = json!({ "code": code });
                Ok(())
            }
            CartChange::ShippingAddress(address) => {
                self.event_type = "vectis.cart.shipping_address_set";
                self.event = json!({ "countryCode": address.country_code });
                self.cart.shipping_address = Some(json_text(&address)?);
                self.reprice_all().await
            }
            CartChange::ShippingMethod(code) => {
                self.event_type = "vectis.cart.shipping_method_set";
                let offered = self.service.shipping_methods(self.cart)?;
                if !offered.iter().any(|q| q.code == code) {
                    let message = format!(
                        "shipping method `{code}` is not offered for this cart (offered: {})",
                        offered
                            .iter()
                            .map(|q| q.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.error(0, item_code::SHIPPING_METHOD_NOT_AVAILABLE, "code", message);
                    return Ok(());
                }
                self.event = json!({ "method": code });
                self.cart.shipping_method = Some(code);
                Ok(())
            }
        }
    }

    fn variant_ref<'i>(id: Option<Uuid>, sku: Option<&'i str>) -> Option<VariantRef<'i>> {
        match (id, sku) {
            (Some(id), None) => Some(VariantRef::Id(id)),
            (None, Some(sku)) => Some(VariantRef::Sku(sku.trim())),
            _ => None,
        }
    }

    /// The variants named by ids or SKUs, archived ones included (one statement).
    async fn variants(&self, refs: &[Option<VariantRef<'_>>]) -> AppResult<Vec<variant::Model>> {
        let mut ids = Vec::new();
        let mut skus = Vec::new();
        for r in refs.iter().flatten() {
            match r {
                VariantRef::Id(id) => ids.push(*id),
                VariantRef::Sku(sku) => skus.push((*sku).to_owned()),
            }
        }
        catalog::variants_by_ref(self.uow.tx(), self.uow.tenant(), ids, skus).await
    }

    /// The cart's lines of these variants (one statement).
    async fn lines_of(&self, variants: Vec<Uuid>) -> AppResult<Vec<line::Model>> {
        if variants.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.service.core.db.backend();
        Ok(line::Entity::find()
            .filter(line::Column::TenantId.eq(self.uow.tenant().0))
            .filter(line::Column::OrderId.eq(self.cart.id))
            .filter(id_in(
                backend,
                (line::Entity, line::Column::VariantId),
                variants,
            ))
            .all(self.uow.tx())
            .await?)
    }

    /// Adds (`add`) or sets quantities of variants; a resulting quantity of 0 removes the line.
    async fn set_quantities(
        &mut self,
        refs: &[(Option<VariantRef<'_>>, i64)],
        add: bool,
    ) -> AppResult<()> {
        let only_refs: Vec<Option<VariantRef<'_>>> = refs.iter().map(|(r, _)| *r).collect();
        let variants = self.variants(&only_refs).await?;
        let by_id: HashMap<Uuid, &variant::Model> = variants.iter().map(|v| (v.id, v)).collect();
        let by_sku: HashMap<&str, &variant::Model> =
            variants.iter().map(|v| (v.sku.as_str(), v)).collect();
        let existing = self
            .lines_of(variants.iter().map(|v| v.id).collect())
            .await?;
        let existing: HashMap<Uuid, &line::Model> =
            existing.iter().map(|l| (l.variant_id, l)).collect();

        // Validate each item and merge duplicates per variant, in input order.
        let min = if add { 1 } else { 0 };
        let mut merged: Vec<(Uuid, i64, Vec<usize>)> = Vec::new();
        let mut slot: HashMap<Uuid, usize> = HashMap::new();
        for (i, (r, quantity)) in refs.iter().enumerate() {
            let variant = match r {
                None => {
                    self.error(
                        i,
                        code::VALIDATION,
                        "variantId",
                        "give exactly one of variantId and sku",
                    );
                    continue;
                }
                Some(VariantRef::Id(id)) => by_id.get(id).copied(),
                Some(VariantRef::Sku(sku)) => by_sku.get(sku).copied(),
            };
            let field = if matches!(r, Some(VariantRef::Sku(_))) {
                "sku"
            } else {
                "variantId"
            };
            let Some(variant) = variant else {
                let what = match r {
                    Some(VariantRef::Sku(s)) => format!("SKU `{s}` not found"),
                    Some(VariantRef::Id(id)) => format!("variant {id} not found"),
                    None => String::new(),
                };
                self.error(i, code::NOT_FOUND, field, what);
                continue;
            };
            if variant.status == ARCHIVED && *quantity > 0 {
                self.error(
                    i,
                    item_code::ARCHIVED,
                    field,
                    format!("SKU `{}` is archived", variant.sku),
                );
                continue;
            }
            if !(min..=MAX_LINE_QUANTITY).contains(quantity) {
                self.error(
                    i,
                    code::VALIDATION,
                    "quantity",
                    format!("must be between {min} and {MAX_LINE_QUANTITY}"),
                );
                continue;
            }
            match slot.get(&variant.id) {
                Some(&s) => {
                    let entry = &mut merged[s];
                    entry.1 = if add { entry.1 + quantity } else { *quantity };
                    entry.2.push(i);
                }
                None => {
                    slot.insert(variant.id, merged.len());
                    merged.push((variant.id, *quantity, vec![i]));
                }
            }
        }

        // Resulting quantities, the per-line maximum and the cart's line limit.
        let mut new_lines = 0_i64;
        let mut to_price: Vec<(&variant::Model, i64, Option<Uuid>, Vec<usize>)> = Vec::new();
        let mut changes = Vec::new();
        for (variant_id, quantity, indexes) in merged {
            let variant = by_id[&variant_id];
            let line = existing.get(&variant_id);
            let before = line.map(|l| l.quantity).unwrap_or(0);
            let after = if add { before + quantity } else { quantity };
            let last = *indexes.last().unwrap_or(&0);
            if after > MAX_LINE_QUANTITY {
                self.error(
                    last,
                    code::VALIDATION,
                    "quantity",
                    format!("the line would hold {after}, more than {MAX_LINE_QUANTITY}"),
                );
                continue;
            }
            if after == 0 {
                if let Some(l) = line {
                    self.deletes.push(l.id);
                    changes.push(
                        json!({ "sku": variant.sku, "quantity": 0, "previousQuantity": before }),
                    );
                }
                continue;
            }
            if line.is_none() {
                if self.cart.line_count + new_lines >= MAX_CART_LINES as i64 {
                    for i in indexes {
                        self.error(
                            i,
                            item_code::CART_FULL,
                            "lines",
                            format!("a cart holds at most {MAX_CART_LINES} lines"),
                        );
                    }
                    continue;
                }
                new_lines += 1;
            }
            changes
                .push(json!({ "sku": variant.sku, "quantity": after, "previousQuantity": before }));
            to_price.push((variant, after, line.map(|l| l.id), indexes));
        }
        let items: Vec<(&variant::Model, i64, Option<Uuid>)> =
            to_price.iter().map(|(v, q, l, _)| (*v, *q, *l)).collect();
        let priced = self
            .service
            .price(self.uow, self.buyer, self.cart, &items)
            .await?;
        for ((variant, _, _, indexes), row) in to_price.iter().zip(priced) {
            match row {
                Ok(row) => self.upserts.push(row),
                Err((c, message)) => {
                    for i in indexes {
                        let field = if c == item_code::NO_PRICE {
                            "sku"
                        } else {
                            "quantity"
                        };
                        self.error(*i, c, field, format!("{}: {message}", variant.sku));
                    }
                }
            }
        }
        self.event = json!({ "lines": changes });
        Ok(())
    }

    async fn update(&mut self, updates: &[LineUpdate]) -> AppResult<()> {
        // Resolve line ids to their variants first (one statement).
        let line_ids: Vec<Uuid> = updates.iter().filter_map(|u| u.line_id).collect();
        let lines: HashMap<Uuid, line::Model> = if line_ids.is_empty() {
            HashMap::new()
        } else {
            let backend = self.service.core.db.backend();
            line::Entity::find()
                .filter(line::Column::TenantId.eq(self.uow.tenant().0))
                .filter(line::Column::OrderId.eq(self.cart.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), line_ids))
                .all(self.uow.tx())
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect()
        };
        let mut refs = Vec::with_capacity(updates.len());
        let mut missing = Vec::new();
        for (i, u) in updates.iter().enumerate() {
            let r = match (u.line_id, u.variant_id, u.sku.as_deref()) {
                (Some(id), None, None) => match lines.get(&id) {
                    Some(l) => Some(VariantRef::Id(l.variant_id)),
                    None => {
                        missing.push(i);
                        Some(VariantRef::Id(Uuid::nil()))
                    }
                },
                (None, id, sku) => Self::variant_ref(id, sku),
                _ => None,
            };
            refs.push((r, u.quantity));
        }
        let before = self.errors.len();
        self.set_quantities(&refs, false).await?;
        // A line id that is not in the cart reads better than "variant 000… not found".
        for e in self.errors.iter_mut().skip(before) {
            if missing.contains(&(e.index as usize)) {
                e.field = Some("lineId".into());
                e.message = format!(
                    "line {} is not in the cart",
                    updates[e.index as usize].line_id.unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    async fn remove(&mut self, ids: &[Uuid]) -> AppResult<()> {
        let backend = self.service.core.db.backend();
        let found: HashSet<Uuid> = if ids.is_empty() {
            HashSet::new()
        } else {
            line::Entity::find()
                .select_only()
                .column(line::Column::Id)
                .filter(line::Column::TenantId.eq(self.uow.tenant().0))
                .filter(line::Column::OrderId.eq(self.cart.id))
                .filter(id_in(
                    backend,
                    (line::Entity, line::Column::Id),
                    ids.to_vec(),
                ))
                .into_tuple::<Uuid>()
                .all(self.uow.tx())
                .await?
                .into_iter()
                .collect()
        };
        for (i, id) in ids.iter().enumerate() {
            if found.contains(id) {
                self.deletes.push(*id);
            } else {
                self.error(
                    i,
                    code::NOT_FOUND,
                    "lineIds",
                    format!("line {id} is not in the cart"),
                );
            }
        }
        self.event = json!({ "lineIds": self.deletes });
        Ok(())
    }

    /// A normalised coupon code, or an item error.
    fn coupon_code(&mut self, code: &str) -> Option<String> {
        match coupon_code(code) {
            Ok(code) => Some(code),
            Err(err) => {
                self.error(0, code::VALIDATION, "code", err.message());
                None
            }
        }
    }

    async fn apply_coupon(&mut self, code: String) -> AppResult<()> {
        let mut codes: Vec<String> = serde_json::from_str(&self.cart.coupons).unwrap_or_default();
        self.event = json!({ "code": code });
        if codes.contains(&code) {
            return Ok(());
        }
        if codes.len() >= MAX_COUPONS {
            self.error(
                0,
                item_code::COUPON_NOT_APPLICABLE,
                "code",
                format!("a cart takes at most {MAX_COUPONS} coupons"),
            );
            return Ok(());
        }
        let Some(row) = coupon::Entity::find()
            .filter(coupon::Column::TenantId.eq(self.uow.tenant().0))
            .filter(coupon::Column::Code.eq(code.clone()))
            .one(self.uow.tx())
            .await?
        else {
            self.error(
                0,
                code::NOT_FOUND,
                "code",
                format!("coupon {code} does not exist"),
            );
            return Ok(());
        };
        let coupon = to_coupon(&row).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("coupon {} is malformed", row.code))
        })?;
        let currency = CartService::currency_of(self.cart)?;
        let ctx = PromotionContext {
            currency,
            at: Utc::now().timestamp(),
        };
        let subtotal = Money::new(self.cart.subtotal, currency);
        let currency_ok = row.currency == self.cart.currency;
        let check = if currency_ok {
            self.service
                .strategies
                .promotions
                .check(&ctx, subtotal, &coupon)
        } else {
            Err(CouponRejection::Currency(code.clone()))
        };
        if let Err(rejection) = check {
            self.error(
                0,
                item_code::COUPON_NOT_APPLICABLE,
                "code",
                rejection.to_string(),
            );
            return Ok(());
        }
        codes.push(code);
        self.cart.coupons = json_text(&codes)?;
        Ok(())
    }

    /// Re-prices every line of the cart (when what all lines depend on changed).
    async fn reprice_all(&mut self) -> AppResult<()> {
        let tenant = self.uow.tenant();
        let lines = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::OrderId.eq(self.cart.id))
            .all(self.uow.tx())
            .await?;
        if lines.is_empty() {
            return Ok(());
        }
        let ids = lines.iter().map(|l| l.variant_id).collect();
        let variants: HashMap<Uuid, variant::Model> =
            catalog::variants_by_id(self.uow.tx(), tenant, ids, true)
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        let items: Vec<(&variant::Model, i64, Option<Uuid>)> = lines
            .iter()
            .filter_map(|l| {
                variants
                    .get(&l.variant_id)
                    .map(|v| (v, l.quantity, Some(l.id)))
            })
            .collect();
        let priced = self
            .service
            .price(self.uow, self.buyer, self.cart, &items)
            .await?;
        for ((v, _, line_id), row) in items.iter().zip(priced) {
            match row {
                Ok(row) => self.upserts.push(row),
                // A line that can no longer be priced leaves the cart (its price is gone).
                Err(_) => {
                    if let Some(id) = line_id {
                        self.deletes.push(*id);
                    }
                    let _ = v;
                }
            }
        }
        Ok(())
    }
}
