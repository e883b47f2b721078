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

mod checkout;
mod coupons;
mod lines;
mod totals;

pub use checkout::{Placement, PriceChange};
pub use coupons::{coupon_code, to_coupon};
use lines::Work;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
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
/// The state of an order that is still a cart (the order process's initial state).
pub const CART: &str = vectis_strategies::order_process::state::CART;
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
    /// `BASE_PRICE`, `PRICE_LIST` or `QUOTE`.
    pub kind: String,
    /// The price list.
    pub price_list_id: Option<Uuid>,
    /// The tier's minimum quantity.
    pub min_quantity: Option<i64>,
    /// The quote whose price it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_id: Option<Uuid>,
}

impl StoredPriceSource {
    /// The price agreed in quote `quote`.
    pub fn quote(quote: Uuid) -> Self {
        StoredPriceSource {
            kind: "QUOTE".into(),
            price_list_id: None,
            min_quantity: None,
            quote_id: Some(quote),
        }
    }
}

impl From<PriceSource> for StoredPriceSource {
    fn from(s: PriceSource) -> Self {
        match s {
            PriceSource::Base => StoredPriceSource {
                kind: "BASE_PRICE".into(),
                price_list_id: None,
                min_quantity: None,
                quote_id: None,
            },
            PriceSource::PriceList {
                price_list,
                min_quantity,
            } => StoredPriceSource {
                kind: "PRICE_LIST".into(),
                price_list_id: Some(price_list),
                min_quantity: Some(min_quantity),
                quote_id: None,
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
    pub(super) fn cart_key(caller: &Caller, token: Option<&str>) -> AppResult<Option<String>> {
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
    pub(crate) fn require_buyer(caller: &Caller) -> AppResult<()> {
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

    pub(super) fn currency_of(cart: &order::Model) -> AppResult<CurrencyCode> {
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
                self.create(&uow, &key, &buyer, currency, None).await?
            }
            None => return Err(AppError::not_found("Cart", "active cart")),
        };
        let mut cart = cart;
        if cart.state != CART {
            return Err(AppError::Rejected {
                code: "CART_LOCKED",
                message: "the cart is being checked out; try again in a moment".into(),
            });
        }
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
    pub(super) async fn lock_cart(uow: &UnitOfWork, key: &str) -> AppResult<Option<order::Model>> {
        Ok(order::Entity::find()
            .filter(order::Column::TenantId.eq(uow.tenant().0))
            .filter(order::Column::CartKey.eq(key.to_owned()))
            .lock_exclusive()
            .one(uow.tx())
            .await?)
    }

    /// Creates the cart with `key` unless a concurrent call just did, and returns it locked,
    /// with whether this call created it.
    pub(crate) async fn create(
        &self,
        uow: &UnitOfWork,
        key: &str,
        buyer: &Buyer,
        currency: Option<CurrencyCode>,
        quote: Option<Uuid>,
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
            code: Set(None),
            placed_at: Set(None),
            billing_address: Set(None),
            po_number: Set(None),
            payment_method: Set(None),
            idempotency_key: Set(None),
            customer_email: Set(None),
            quote_id: Set(quote),
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
    pub(super) fn tax_context(&self, buyer: &Buyer, cart: &order::Model) -> AppResult<TaxContext> {
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
}
