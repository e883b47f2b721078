//! Pricing GraphQL: price lists and batch price quotes.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use vectis_strategies::Money;
use vectis_strategies::pricing::{PriceListScope, PriceSource};

use super::entity::price_list;
use super::service::{NewPriceList, QuoteLine, SkuTiers, scope_of};
use crate::auth::Permission;
use crate::catalog::graphql::Variant;
use crate::error::{AppError, ItemError};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::parse_id;
use crate::graphql::scalars::{Int64, MoneyObject};

/// Who a price list applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PriceListScopeKind {
    /// Every buyer.
    Everyone,
    /// Buyers in a customer group.
    CustomerGroup,
    /// Buyers of a company and its divisions.
    Company,
    /// Buyers acting in one company location.
    Location,
}

/// A price list.
pub struct PriceListObject(pub price_list::Model);

#[Object(name = "PriceList")]
impl PriceListObject {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Higher wins over lower.
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    /// Scope kind.
    async fn scope(&self) -> PriceListScopeKind {
        match scope_of(&self.0) {
            PriceListScope::Everyone => PriceListScopeKind::Everyone,
            PriceListScope::CustomerGroup(_) => PriceListScopeKind::CustomerGroup,
            PriceListScope::Company(_) => PriceListScopeKind::Company,
            PriceListScope::Location(_) => PriceListScopeKind::Location,
        }
    }
    /// The customer group, company or location of the scope.
    async fn scope_id(&self) -> Option<ID> {
        self.0.scope_id.map(|s| ID(s.to_string()))
    }
    /// Currency.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Valid from.
    async fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.0.valid_from
    }
    /// Valid until.
    async fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.0.valid_until
    }
}

/// Input of `createPriceList`.
#[derive(InputObject)]
pub struct CreatePriceListInput {
    /// Name.
    pub name: String,
    /// Higher wins over lower (default 0).
    #[graphql(default = 0)]
    pub priority: i32,
    /// Scope kind.
    pub scope: PriceListScopeKind,
    /// The customer group, company or location (not for `EVERYONE`).
    pub scope_id: Option<ID>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Valid from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
}

/// A volume tier.
#[derive(InputObject)]
pub struct TierInput {
    /// From this quantity on.
    pub min_quantity: Int64,
    /// Unit price in minor units.
    pub amount: Int64,
}

/// The tiers of one SKU; an empty list removes the SKU from the price list.
#[derive(InputObject)]
pub struct PriceListPriceInput {
    /// SKU.
    pub sku: String,
    /// Tiers.
    pub tiers: Vec<TierInput>,
}

/// Result of `setPriceListPrices`: all applied, or none and the errors.
#[derive(SimpleObject)]
pub struct SetPriceListPricesPayload {
    /// Whether the prices were written.
    pub applied: bool,
    /// Bad items with their index.
    pub errors: Vec<ItemError>,
}

/// A line to quote.
#[derive(InputObject)]
pub struct QuoteLineInput {
    /// SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: Int64,
}

/// Where a unit price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PriceSourceKind {
    /// The variant's base price.
    BasePrice,
    /// A price list.
    PriceList,
    /// A quote the buyer accepted (the line's price was agreed in it).
    Quote,
}

/// What the caller pays for a variant in one currency.
#[derive(SimpleObject)]
pub struct VariantPricing {
    /// The unit price at quantity 1: for a logged-in customer or company user, what their
    /// price lists (company and its parents, location, customer group; validity) give, as in
    /// the cart; the base price for anonymous visitors and staff. Null without a price.
    pub unit_price: Option<MoneyObject>,
    /// Where the unit price comes from.
    pub source: Option<crate::cart::graphql::LinePriceSource>,
    /// The base price.
    pub base_price: Option<MoneyObject>,
    /// The volume tiers that apply to the caller, ascending: from `minQuantity` units on, each
    /// unit costs `unitPrice`.
    pub tiers: Vec<PriceTier>,
}

/// A volume tier of the caller's price.
#[derive(SimpleObject)]
pub struct PriceTier {
    /// From this many units.
    pub min_quantity: Int64,
    /// The unit price.
    pub unit_price: MoneyObject,
    /// Where it comes from.
    pub source: crate::cart::graphql::LinePriceSource,
}

impl crate::cart::graphql::LinePriceSource {
    /// The GraphQL shape of a strategy's price source.
    pub fn of(source: PriceSource) -> Self {
        match source {
            PriceSource::Base => crate::cart::graphql::LinePriceSource {
                kind: PriceSourceKind::BasePrice,
                price_list_id: None,
                min_quantity: None,
                quote_id: None,
            },
            PriceSource::PriceList {
                price_list,
                min_quantity,
            } => crate::cart::graphql::LinePriceSource {
                kind: PriceSourceKind::PriceList,
                price_list_id: Some(ID(price_list.to_string())),
                min_quantity: Some(Int64(min_quantity)),
                quote_id: None,
            },
        }
    }
}

impl From<super::service::VariantPrice> for VariantPricing {
    fn from(p: super::service::VariantPrice) -> Self {
        VariantPricing {
            unit_price: p.unit.map(|u| u.unit.into()),
            source: p
                .unit
                .map(|u| crate::cart::graphql::LinePriceSource::of(u.source)),
            base_price: p.base.map(Into::into),
            tiers: p
                .tiers
                .into_iter()
                .map(|(min, price)| PriceTier {
                    min_quantity: Int64(min),
                    unit_price: price.unit.into(),
                    source: crate::cart::graphql::LinePriceSource::of(price.source),
                })
                .collect(),
        }
    }
}

/// What `caller` pays for `variant` in `currency` (see [`VariantPricing::unit_price`]); staff
/// and anonymous visitors get the base price (`base`).
pub async fn variant_price(
    ctx: &Context<'_>,
    variant: uuid::Uuid,
    currency: &str,
    base: impl std::future::Future<Output = Result<Option<Money>>>,
) -> Result<super::service::VariantPrice> {
    let currency: vectis_strategies::CurrencyCode =
        currency
            .parse()
            .map_err(|e: vectis_strategies::MoneyError| {
                AppError::validation("currency", e.to_string())
            })?;
    let caller = caller(ctx)?;
    if !matches!(caller.principal, crate::auth::Principal::Customer { .. }) {
        return Ok(super::service::VariantPrice::base_only(base.await?));
    }
    Ok(ctx
        .data::<super::loader::BuyerPricesDataLoader>()?
        .load_one(super::loader::PriceFor { variant, currency })
        .await?
        .unwrap_or_else(|| super::service::VariantPrice::base_only(None)))
}

/// A priced line.
pub struct QuotedLineObject(super::service::QuotedLine);

#[Object(name = "QuotedLine")]
impl QuotedLineObject {
    /// Index of the line in the input.
    async fn index(&self) -> i32 {
        i32::try_from(self.0.index).unwrap_or(i32::MAX)
    }
    /// Quantity.
    async fn quantity(&self) -> Int64 {
        Int64(self.0.quantity)
    }
    /// The variant.
    async fn variant(&self) -> Variant {
        Variant(self.0.variant.clone())
    }
    /// Unit price.
    async fn unit_price(&self) -> MoneyObject {
        self.0.price.unit.into()
    }
    /// Unit price × quantity.
    async fn line_price(&self) -> MoneyObject {
        self.0.line_price.into()
    }
    /// Where the unit price came from.
    async fn source(&self) -> PriceSourceKind {
        match self.0.price.source {
            PriceSource::Base => PriceSourceKind::BasePrice,
            PriceSource::PriceList { .. } => PriceSourceKind::PriceList,
        }
    }
    /// The price list, if one applied.
    async fn price_list_id(&self) -> Option<ID> {
        match self.0.price.source {
            PriceSource::PriceList { price_list, .. } => Some(ID(price_list.to_string())),
            PriceSource::Base => None,
        }
    }
    /// The minimum quantity of the tier that applied.
    async fn tier_min_quantity(&self) -> Option<Int64> {
        match self.0.price.source {
            PriceSource::PriceList { min_quantity, .. } => Some(Int64(min_quantity)),
            PriceSource::Base => None,
        }
    }
}

/// A batch quote.
#[derive(SimpleObject)]
pub struct PriceQuote {
    /// Priced lines in input order.
    pub lines: Vec<QuotedLineObject>,
    /// Lines that could not be priced (unknown SKU, bad quantity, no price).
    pub errors: Vec<ItemError>,
    /// Sum of the priced lines.
    pub subtotal: MoneyObject,
}

/// Pricing queries.
#[derive(Default)]
pub struct PricingQuery;

#[Object]
impl PricingQuery {
    /// Price lists, highest priority first (`CATALOG_READ`).
    async fn price_lists(&self, ctx: &Context<'_>) -> Result<Vec<PriceListObject>> {
        let caller = require(ctx, Permission::CatalogRead)?;
        Ok(services(ctx)
            .pricing
            .lists(caller)
            .await?
            .into_iter()
            .map(PriceListObject)
            .collect())
    }

    /// Prices up to 10,000 lines at once for the caller: their company (and its divisions'
    /// ancestors), location and customer group select the price lists and volume tiers.
    async fn price_quote(
        &self,
        ctx: &Context<'_>,
        currency: String,
        lines: Vec<QuoteLineInput>,
    ) -> Result<PriceQuote> {
        let caller = caller(ctx)?;
        let lines = lines
            .into_iter()
            .map(|l| QuoteLine {
                sku: l.sku,
                quantity: l.quantity.0,
            })
            .collect();
        let quote = services(ctx)
            .pricing
            .quote(caller, &currency, lines)
            .await?;
        let subtotal: Money = quote.subtotal;
        Ok(PriceQuote {
            lines: quote.lines.into_iter().map(QuotedLineObject).collect(),
            errors: quote.errors,
            subtotal: subtotal.into(),
        })
    }
}

/// Pricing mutations.
#[derive(Default)]
pub struct PricingMutation;

#[Object]
impl PricingMutation {
    /// Creates a price list (`CATALOG_WRITE`).
    async fn create_price_list(
        &self,
        ctx: &Context<'_>,
        input: CreatePriceListInput,
    ) -> Result<PriceListObject> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let scope_id = input
            .scope_id
            .as_ref()
            .map(|s| parse_id("scopeId", s))
            .transpose()?;
        let scope = match (input.scope, scope_id) {
            (PriceListScopeKind::Everyone, None) => PriceListScope::Everyone,
            (PriceListScopeKind::CustomerGroup, Some(id)) => PriceListScope::CustomerGroup(id),
            (PriceListScopeKind::Company, Some(id)) => PriceListScope::Company(id),
            (PriceListScopeKind::Location, Some(id)) => PriceListScope::Location(id),
            (PriceListScopeKind::Everyone, Some(_)) => {
                return Err(AppError::validation("scopeId", "must be empty for EVERYONE").into());
            }
            (_, None) => {
                return Err(AppError::validation("scopeId", "is required for this scope").into());
            }
        };
        let created = services(ctx)
            .pricing
            .create(
                caller,
                NewPriceList {
                    name: input.name,
                    priority: input.priority,
                    scope,
                    currency: input.currency,
                    valid_from: input.valid_from,
                    valid_until: input.valid_until,
                },
            )
            .await?;
        Ok(PriceListObject(created))
    }

    /// Sets the volume tiers of up to 10,000 SKUs in a price list (`CATALOG_WRITE`).
    /// All-or-nothing: when any item is bad nothing changes and `errors` lists each.
    async fn set_price_list_prices(
        &self,
        ctx: &Context<'_>,
        price_list_id: ID,
        prices: Vec<PriceListPriceInput>,
    ) -> Result<SetPriceListPricesPayload> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let list = parse_id("priceListId", &price_list_id)?;
        let items = prices
            .into_iter()
            .map(|p| SkuTiers {
                sku: p.sku,
                tiers: p
                    .tiers
                    .into_iter()
                    .map(|t| (t.min_quantity.0, t.amount.0))
                    .collect(),
            })
            .collect();
        let errors = services(ctx)
            .pricing
            .set_prices(caller, list, items)
            .await?;
        Ok(SetPriceListPricesPayload {
            applied: errors.is_empty(),
            errors,
        })
    }
}
