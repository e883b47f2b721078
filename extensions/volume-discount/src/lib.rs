//! Volume discounts as a Vectis pricing strategy.
//!
//! Prices every line as the default pricing does (base prices, price lists and their tiers),
//! then takes a percentage off the unit price once the line's quantity reaches a tier: by
//! default 5 % from 100 units and 10 % from 1,000. Lines priced from a price list keep the
//! merchant's negotiated price unless `include_price_lists` is set. Amounts are rounded half
//! up to the minor unit; nothing overflows (the discount never exceeds the price).
//!
//! Enable it with `[strategies] pricing = "volume-discount"` in a binary that links this crate
//! (the `vectis` binary does), and set the tiers in
//! `[strategies.options.pricing.volume-discount]`:
//!
//! ```toml
//! [strategies.options.pricing.volume-discount]
//! tiers = [
//!   { min_quantity = 50, basis_points = 250 },   # 2.5 % from 50 units
//!   { min_quantity = 500, basis_points = 750 },  # 7.5 % from 500 units
//! ]
//! include_price_lists = false
//! ```

use std::sync::Arc;

use vectis_strategies::pricing::{
    LinePrice, PriceLine, PriceSource, PricingContext, PricingData, PricingError,
};
use vectis_strategies::registry::{Build, Registration, STRATEGIES};
use vectis_strategies::{DefaultPricing, PricingStrategy};

/// The registration: `strategies.pricing = "volume-discount"`.
#[linkme::distributed_slice(STRATEGIES)]
static VOLUME_DISCOUNT: Registration = Registration {
    name: "volume-discount",
    engine: "^0.1",
    build: Build::Pricing(|options| Ok(Arc::new(VolumeDiscount::new(options.parse()?)?))),
};

/// From `min_quantity` units on, `basis_points` / 100 percent off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountTier {
    /// The smallest line quantity the tier applies to (at least 2).
    pub min_quantity: i64,
    /// The discount in hundredths of a percent: 500 is 5 %, at most 10,000.
    pub basis_points: u32,
}

/// The strategy's options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The tiers, in any order; the one with the largest minimum not above the quantity wins.
    pub tiers: Vec<DiscountTier>,
    /// Whether lines priced from a price list are discounted too.
    pub include_price_lists: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tiers: vec![
                DiscountTier {
                    min_quantity: 100,
                    basis_points: 500,
                },
                DiscountTier {
                    min_quantity: 1_000,
                    basis_points: 1_000,
                },
            ],
            include_price_lists: false,
        }
    }
}

/// The default pricing with quantity discounts on top.
#[derive(Debug, Clone)]
pub struct VolumeDiscount {
    /// Sorted by minimum quantity, descending.
    tiers: Vec<DiscountTier>,
    include_price_lists: bool,
}

impl VolumeDiscount {
    /// The strategy with `settings`; an error names the tier at fault.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let mut tiers = settings.tiers;
        for (i, t) in tiers.iter().enumerate() {
            if t.min_quantity < 2 {
                return Err(format!("tiers[{i}].min_quantity: must be at least 2"));
            }
            if t.basis_points == 0 || t.basis_points > 10_000 {
                return Err(format!(
                    "tiers[{i}].basis_points: must be between 1 and 10000"
                ));
            }
        }
        tiers.sort_by_key(|t| std::cmp::Reverse(t.min_quantity));
        if let Some(w) = tiers
            .windows(2)
            .find(|w| w[0].min_quantity == w[1].min_quantity)
        {
            return Err(format!(
                "tiers: two tiers start at {} units",
                w[0].min_quantity
            ));
        }
        Ok(VolumeDiscount {
            tiers,
            include_price_lists: settings.include_price_lists,
        })
    }

    fn discount_for(&self, quantity: i64) -> Option<u32> {
        self.tiers
            .iter()
            .find(|t| quantity >= t.min_quantity)
            .map(|t| t.basis_points)
    }
}

/// `amount` less `basis_points` of it, the discount rounded half up (never negative).
fn discounted(amount: i64, basis_points: u32) -> i64 {
    let off = (i128::from(amount) * i128::from(basis_points) + 5_000) / 10_000;
    // `off` is at most `amount` (basis points ≤ 10,000), so this cannot overflow.
    amount - i64::try_from(off).unwrap_or(amount)
}

impl PricingStrategy for VolumeDiscount {
    fn price(
        &self,
        ctx: &PricingContext,
        lines: &[PriceLine],
        data: &PricingData,
    ) -> Vec<Result<LinePrice, PricingError>> {
        DefaultPricing
            .price(ctx, lines, data)
            .into_iter()
            .zip(lines)
            .map(|(priced, line)| {
                priced.map(|mut price| {
                    let eligible =
                        self.include_price_lists || matches!(price.source, PriceSource::Base);
                    if eligible
                        && price.unit.amount > 0
                        && let Some(bp) = self.discount_for(line.quantity)
                    {
                        price.unit.amount = discounted(price.unit.amount, bp);
                    }
                    price
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use uuid::Uuid;
    use vectis_strategies::pricing::{ListPrice, PriceList, PriceListScope, Tier};
    use vectis_strategies::registry::{Options, Slot, find};
    use vectis_strategies::{CurrencyCode, Money};

    use super::*;

    fn ctx() -> PricingContext {
        PricingContext {
            currency: CurrencyCode::EUR,
            customer_group: None,
            companies: Vec::new(),
            location: None,
            at: 0,
        }
    }

    fn data(variant: Uuid, base: i64) -> PricingData {
        PricingData {
            base_prices: HashMap::from([(variant, vec![Money::new(base, CurrencyCode::EUR)])]),
            ..Default::default()
        }
    }

    fn unit(strategy: &VolumeDiscount, data: &PricingData, variant: Uuid, quantity: i64) -> i64 {
        let line = PriceLine { variant, quantity };
        strategy.price(&ctx(), &[line], data)[0]
            .as_ref()
            .unwrap()
            .unit
            .amount
    }

    #[test]
    fn discounts_start_at_the_tier_minimums() {
        let v = Uuid::now_v7();
        let d = data(v, 1_999);
        let s = VolumeDiscount::new(Settings::default()).unwrap();
        assert_eq!(unit(&s, &d, v, 99), 1_999);
        // 5 % of 19.99 is 0.9995, rounded to 1.00.
        assert_eq!(unit(&s, &d, v, 100), 1_899);
        assert_eq!(unit(&s, &d, v, 999), 1_899);
        // 10 % of 19.99 is 1.999, rounded to 2.00.
        assert_eq!(unit(&s, &d, v, 1_000), 1_799);
    }

    #[test]
    fn price_lists_keep_their_price_unless_included() {
        let v = Uuid::now_v7();
        let list = Uuid::now_v7();
        let mut d = data(v, 2_000);
        d.price_lists.push(PriceList {
            id: list,
            priority: 1,
            scope: PriceListScope::Everyone,
            currency: CurrencyCode::EUR,
            valid_from: None,
            valid_until: None,
        });
        d.list_prices.insert(
            v,
            vec![ListPrice {
                price_list: list,
                tiers: vec![Tier {
                    min_quantity: 1,
                    unit_amount: 1_500,
                }],
            }],
        );
        let plain = VolumeDiscount::new(Settings::default()).unwrap();
        assert_eq!(unit(&plain, &d, v, 500), 1_500);
        let all = VolumeDiscount::new(Settings {
            include_price_lists: true,
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(unit(&all, &d, v, 500), 1_425);
    }

    #[test]
    fn huge_prices_do_not_overflow_and_a_full_discount_is_free() {
        let v = Uuid::now_v7();
        let d = data(v, i64::MAX);
        let s = VolumeDiscount::new(Settings::default()).unwrap();
        assert!(unit(&s, &d, v, 100) < i64::MAX);
        let free = VolumeDiscount::new(Settings {
            tiers: vec![DiscountTier {
                min_quantity: 2,
                basis_points: 10_000,
            }],
            include_price_lists: false,
        })
        .unwrap();
        assert_eq!(unit(&free, &d, v, 2), 0);
    }

    #[test]
    fn unpriced_lines_stay_errors() {
        let s = VolumeDiscount::new(Settings::default()).unwrap();
        let line = PriceLine {
            variant: Uuid::now_v7(),
            quantity: 500,
        };
        let priced = s.price(&ctx(), &[line], &PricingData::default());
        assert_eq!(priced[0], Err(PricingError::NoPrice(CurrencyCode::EUR)));
    }

    #[test]
    fn registered_by_name_with_checked_options() {
        let registration = find(Slot::Pricing, "volume-discount").expect("registered");
        let Build::Pricing(build) = registration.build else {
            panic!("a pricing strategy")
        };
        let good = serde_json::json!({ "tiers": [{ "min_quantity": 10, "basis_points": 250 }] });
        assert!(build(Options(&good)).is_ok());
        let bad = serde_json::json!({ "tiers": [{ "min_quantity": 1, "basis_points": 250 }] });
        assert_eq!(
            build(Options(&bad)).err().unwrap(),
            "tiers[0].min_quantity: must be at least 2"
        );
        let twice = serde_json::json!({ "tiers": [
            { "min_quantity": 10, "basis_points": 250 },
            { "min_quantity": 10, "basis_points": 500 }
        ] });
        assert_eq!(
            build(Options(&twice)).err().unwrap(),
            "tiers: two tiers start at 10 units"
        );
        let typo = serde_json::json!({ "tier": [] });
        assert!(
            build(Options(&typo))
                .err()
                .unwrap()
                .contains("unknown field `tier`")
        );
    }
}
