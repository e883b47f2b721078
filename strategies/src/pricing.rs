//! Pricing: the unit price of every cart line, decided in one call per cart operation.
//!
//! **What it decides.** For each line (variant, quantity) the unit price in the cart's
//! currency and where it came from (the base price or a price list and tier).
//!
//! **When it is called.** Once per cart operation (add, update, remove lines; change of
//! company location or currency) with *all* lines of the cart and the price data the engine
//! loaded for those variants in one go. Never once per line.
//!
//! **Performance budget.** Pure computation over in-memory data: a 10,000-line cart must price
//! in a few milliseconds. No I/O.
//!
//! **Default.** [`DefaultPricing`]: the variant's base price in the cart currency, overridden by
//! the best applicable price list. A price list applies when its currency is the cart's, its
//! validity window contains the pricing time, and its scope matches the buyer (everyone, the
//! buyer's customer group, or the buyer's company or one of its ancestors). Among applicable
//! lists the highest priority wins, then the lowest price. Within a list, volume tiers apply by
//! minimum quantity: the tier with the largest minimum not above the line quantity.
//!
//! **Instead.** Implement [`PricingStrategy`] for contract prices from an ERP, cost-plus
//! pricing, or rounding to price points.

use std::collections::HashMap;

use uuid::Uuid;

use crate::money::{CurrencyCode, Money};

/// Who buys, in which currency, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingContext {
    /// Currency of the cart.
    pub currency: CurrencyCode,
    /// The buyer's customer group.
    pub customer_group: Option<Uuid>,
    /// The buyer's company and its ancestors (nearest first), for company-scoped lists.
    pub companies: Vec<Uuid>,
    /// The company location the buyer acts in.
    pub location: Option<Uuid>,
    /// Pricing time, seconds since the Unix epoch.
    pub at: i64,
}

/// One line to price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceLine {
    /// The variant.
    pub variant: Uuid,
    /// Quantity (positive).
    pub quantity: i64,
}

/// Who a price list applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceListScope {
    /// Every buyer.
    Everyone,
    /// Buyers in a customer group.
    CustomerGroup(Uuid),
    /// Buyers of a company (and its divisions).
    Company(Uuid),
    /// Buyers acting in one company location.
    Location(Uuid),
}

/// A price list header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    /// Id.
    pub id: Uuid,
    /// Higher wins over lower.
    pub priority: i32,
    /// Who it applies to.
    pub scope: PriceListScope,
    /// Currency of its prices.
    pub currency: CurrencyCode,
    /// Valid from (inclusive, epoch seconds).
    pub valid_from: Option<i64>,
    /// Valid until (exclusive, epoch seconds).
    pub valid_until: Option<i64>,
}

/// A volume tier: from `min_quantity` on, each unit costs `unit_amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Smallest quantity the tier applies to (at least 1).
    pub min_quantity: i64,
    /// Unit price in minor units of the list's currency.
    pub unit_amount: i64,
}

/// The tiers of one variant in one price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPrice {
    /// The price list.
    pub price_list: Uuid,
    /// Tiers, in any order.
    pub tiers: Vec<Tier>,
}

/// Everything pricing may use, loaded by the engine in batch for the cart's variants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricingData {
    /// Base prices by variant (in every currency the variant has).
    pub base_prices: HashMap<Uuid, Vec<Money>>,
    /// Price lists of the tenant that might apply.
    pub price_lists: Vec<PriceList>,
    /// Price-list prices by variant.
    pub list_prices: HashMap<Uuid, Vec<ListPrice>>,
}

/// Where a unit price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The variant's base price.
    Base,
    /// A price list, at the tier with this minimum quantity.
    PriceList {
        /// The price list.
        price_list: Uuid,
        /// The tier's minimum quantity.
        min_quantity: i64,
    },
}

/// The price of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePrice {
    /// Unit price.
    pub unit: Money,
    /// Where it came from.
    pub source: PriceSource,
}

/// Why a line has no price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// Neither a base price nor an applicable list price in the cart currency.
    #[error("no price in {0}")]
    NoPrice(CurrencyCode),
    /// Quantity zero or negative.
    #[error("quantity must be positive")]
    InvalidQuantity,
}

/// Decides unit prices for all lines of a cart at once.
pub trait PricingStrategy: Send + Sync {
    /// One result per line, in the order of `lines`.
    fn price(
        &self,
        ctx: &PricingContext,
        lines: &[PriceLine],
        data: &PricingData,
    ) -> Vec<Result<LinePrice, PricingError>>;
}

/// Base prices overridden by the best applicable price list with volume tiers.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPricing;

impl DefaultPricing {
    fn applies(ctx: &PricingContext, list: &PriceList) -> bool {
        list.currency == ctx.currency
            && list.valid_from.is_none_or(|from| ctx.at >= from)
            && list.valid_until.is_none_or(|until| ctx.at < until)
            && match list.scope {
                PriceListScope::Everyone => true,
                PriceListScope::CustomerGroup(g) => ctx.customer_group == Some(g),
                PriceListScope::Company(c) => ctx.companies.contains(&c),
                PriceListScope::Location(l) => ctx.location == Some(l),
            }
    }
}

/// The tier for `quantity`: the largest minimum quantity not above it.
pub fn tier_for(tiers: &[Tier], quantity: i64) -> Option<Tier> {
    tiers
        .iter()
        .filter(|t| t.min_quantity <= quantity)
        .max_by_key(|t| t.min_quantity)
        .copied()
}

impl PricingStrategy for DefaultPricing {
    fn price(
        &self,
        ctx: &PricingContext,
        lines: &[PriceLine],
        data: &PricingData,
    ) -> Vec<Result<LinePrice, PricingError>> {
        let applicable: HashMap<Uuid, &PriceList> = data
            .price_lists
            .iter()
            .filter(|l| Self::applies(ctx, l))
            .map(|l| (l.id, l))
            .collect();
        lines
            .iter()
            .map(|line| {
                if line.quantity <= 0 {
                    return Err(PricingError::InvalidQuantity);
                }
                let from_list = data
                    .list_prices
                    .get(&line.variant)
                    .into_iter()
                    .flatten()
                    .filter_map(|lp| {
                        let list = applicable.get(&lp.price_list)?;
                        let tier = tier_for(&lp.tiers, line.quantity)?;
                        Some((list.priority, tier, list.id))
                    })
                    // Highest priority, then lowest price, then the smallest id for determinism.
                    .min_by_key(|(priority, tier, id)| {
                        (-i64::from(*priority), tier.unit_amount, *id)
                    });
                if let Some((_, tier, price_list)) = from_list {
                    return Ok(LinePrice {
                        unit: Money::new(tier.unit_amount, ctx.currency),
                        source: PriceSource::PriceList {
                            price_list,
                            min_quantity: tier.min_quantity,
                        },
                    });
                }
                data.base_prices
                    .get(&line.variant)
                    .and_then(|prices| prices.iter().find(|p| p.currency == ctx.currency))
                    .map(|unit| LinePrice {
                        unit: *unit,
                        source: PriceSource::Base,
                    })
                    .ok_or(PricingError::NoPrice(ctx.currency))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn ctx() -> PricingContext {
        PricingContext {
            currency: CurrencyCode::EUR,
            customer_group: Some(id(100)),
            companies: vec![id(200), id(201)],
            location: Some(id(300)),
            at: 1_000,
        }
    }

    fn list(n: u128, priority: i32, scope: PriceListScope) -> PriceList {
        PriceList {
            id: id(n),
            priority,
            scope,
            currency: CurrencyCode::EUR,
            valid_from: None,
            valid_until: None,
        }
    }

    fn data(lists: Vec<PriceList>, prices: Vec<(u128, Vec<(i64, i64)>)>) -> PricingData {
        PricingData {
            base_prices: HashMap::from([(
                id(1),
                vec![
                    Money::new(1000, CurrencyCode::EUR),
                    Money::new(1100, CurrencyCode::USD),
                ],
            )]),
            price_lists: lists,
            list_prices: HashMap::from([(
                id(1),
                prices
                    .into_iter()
                    .map(|(list, tiers)| ListPrice {
                        price_list: id(list),
                        tiers: tiers
                            .into_iter()
                            .map(|(min_quantity, unit_amount)| Tier {
                                min_quantity,
                                unit_amount,
                            })
                            .collect(),
                    })
                    .collect(),
            )]),
        }
    }

    fn unit(
        ctx: &PricingContext,
        d: &PricingData,
        quantity: i64,
    ) -> Result<LinePrice, PricingError> {
        DefaultPricing
            .price(
                ctx,
                &[PriceLine {
                    variant: id(1),
                    quantity,
                }],
                d,
            )
            .remove(0)
    }

    #[test]
    fn base_price_without_lists_and_no_price_in_other_currencies() {
        let d = data(vec![], vec![]);
        assert_eq!(
            unit(&ctx(), &d, 1).unwrap(),
            LinePrice {
                unit: Money::new(1000, CurrencyCode::EUR),
                source: PriceSource::Base
            }
        );
        let mut chf = ctx();
        chf.currency = "CHF".parse().unwrap();
        assert_eq!(unit(&chf, &d, 1), Err(PricingError::NoPrice(chf.currency)));
        assert_eq!(unit(&ctx(), &d, 0), Err(PricingError::InvalidQuantity));
    }

    #[test]
    fn tiers_apply_from_their_minimum_quantity() {
        let d = data(
            vec![list(10, 0, PriceListScope::Everyone)],
            vec![(10, vec![(10, 900), (100, 800), (1000, 700)])],
        );
        assert_eq!(
            unit(&ctx(), &d, 9).unwrap().source,
            PriceSource::Base,
            "below the first tier"
        );
        assert_eq!(unit(&ctx(), &d, 10).unwrap().unit.amount, 900);
        assert_eq!(unit(&ctx(), &d, 99).unwrap().unit.amount, 900);
        assert_eq!(unit(&ctx(), &d, 100).unwrap().unit.amount, 800);
        assert_eq!(unit(&ctx(), &d, 999).unwrap().unit.amount, 800);
        assert_eq!(unit(&ctx(), &d, 1000).unwrap().unit.amount, 700);
        assert_eq!(
            unit(&ctx(), &d, 1000).unwrap().source,
            PriceSource::PriceList {
                price_list: id(10),
                min_quantity: 1000
            }
        );
    }

    #[test]
    fn priority_beats_price_and_scope_must_match() {
        let lists = vec![
            list(10, 0, PriceListScope::Everyone),
            list(11, 5, PriceListScope::Company(id(201))),
            list(12, 9, PriceListScope::Company(id(999))),
            list(13, 5, PriceListScope::CustomerGroup(id(100))),
        ];
        let d = data(
            lists,
            vec![
                (10, vec![(1, 500)]),
                (11, vec![(1, 950)]),
                (12, vec![(1, 100)]),
                (13, vec![(1, 940)]),
            ],
        );
        let got = unit(&ctx(), &d, 1).unwrap();
        assert_eq!(
            got.unit.amount, 940,
            "priority 5 wins over the cheaper priority 0; among equals the lower price"
        );
        let mut stranger = ctx();
        stranger.companies.clear();
        stranger.customer_group = None;
        assert_eq!(unit(&stranger, &d, 1).unwrap().unit.amount, 500);
    }

    #[test]
    fn validity_window_and_currency_filter_lists() {
        let mut old = list(10, 1, PriceListScope::Everyone);
        old.valid_until = Some(1_000);
        let mut future = list(11, 1, PriceListScope::Everyone);
        future.valid_from = Some(1_001);
        let mut usd = list(12, 1, PriceListScope::Everyone);
        usd.currency = CurrencyCode::USD;
        let mut current = list(13, 1, PriceListScope::Location(id(300)));
        current.valid_from = Some(1_000);
        current.valid_until = Some(1_001);
        let d = data(
            vec![old, future, usd, current],
            vec![
                (10, vec![(1, 1)]),
                (11, vec![(1, 2)]),
                (12, vec![(1, 3)]),
                (13, vec![(1, 4)]),
            ],
        );
        assert_eq!(unit(&ctx(), &d, 1).unwrap().unit.amount, 4);
    }

    #[test]
    fn prices_many_lines_in_one_call() {
        let d = data(
            vec![list(10, 0, PriceListScope::Everyone)],
            vec![(10, vec![(5, 900)])],
        );
        let lines: Vec<PriceLine> = (0..10_000)
            .map(|i| PriceLine {
                variant: id(1),
                quantity: i % 10 + 1,
            })
            .collect();
        let priced = DefaultPricing.price(&ctx(), &lines, &d);
        assert_eq!(priced.len(), 10_000);
        assert_eq!(priced[0].as_ref().unwrap().unit.amount, 1000);
        assert_eq!(priced[4].as_ref().unwrap().unit.amount, 900);
    }
}
