//! Promotions: order-level adjustments from coupon codes.
//!
//! **What it decides.** Which of the cart's coupons apply and the discount each gives.
//!
//! **When it is called.** Once per cart operation, after pricing, with the cart's amounts per
//! tax category and the coupons the buyer applied (loaded by the engine in one go).
//!
//! **Performance budget.** Pure computation; linear in lines, a 10,000-line cart in well
//! under a millisecond.
//!
//! **Default.** [`DefaultPromotions`]: coupons with a percentage (basis points) or a fixed
//! amount off the subtotal, an optional minimum order value, a validity window and an active
//! flag. Percentage discounts round half away from zero; fixed discounts never exceed the
//! subtotal. Several coupons apply in the order given, each on what the previous left.
//!
//! **Instead.** Implement [`PromotionStrategy`] for buy-x-get-y, free shipping or line-level
//! promotions.

use crate::money::{CurrencyCode, Money, MoneyError};

/// The discount of a coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// Percentage in basis points (10 % = 1000).
    Percentage(u32),
    /// A fixed amount.
    Fixed(Money),
}

/// A coupon as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    /// The code buyers enter (case-insensitive).
    pub code: String,
    /// The discount.
    pub discount: Discount,
    /// Minimum subtotal for the coupon to apply.
    pub min_order: Option<Money>,
    /// Valid from (inclusive, epoch seconds).
    pub valid_from: Option<i64>,
    /// Valid until (exclusive, epoch seconds).
    pub valid_until: Option<i64>,
    /// Switched on.
    pub active: bool,
}

/// What promotions see of a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionContext {
    /// Cart currency.
    pub currency: CurrencyCode,
    /// Evaluation time, epoch seconds.
    pub at: i64,
}

/// A discount applied to the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The coupon code.
    pub code: String,
    /// The discount, negative.
    pub amount: Money,
}

/// Why a coupon does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponRejection {
    /// Inactive, or outside its validity window.
    #[error("coupon {0} is not valid now")]
    NotValid(String),
    /// The subtotal is below the minimum order value.
    #[error("coupon {code} needs an order of at least {minimum}")]
    BelowMinimum {
        /// The code.
        code: String,
        /// The minimum.
        minimum: Money,
    },
    /// The coupon is in another currency.
    #[error("coupon {0} is not valid in this currency")]
    Currency(String),
    /// Arithmetic overflow.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Decides order adjustments for a cart.
pub trait PromotionStrategy: Send + Sync {
    /// Whether `coupon` may be applied to a cart with this subtotal (used when a buyer enters
    /// a code, so the rejection can be shown).
    fn check(
        &self,
        ctx: &PromotionContext,
        subtotal: Money,
        coupon: &Coupon,
    ) -> Result<(), CouponRejection>;

    /// The adjustments of the applied coupons, given the cart's amounts. The engine passes one
    /// amount per tax category (the sums of the line prices), so that a one-line change never
    /// reads the whole cart; their sum is the subtotal.
    fn adjust(
        &self,
        ctx: &PromotionContext,
        lines: &[Money],
        coupons: &[Coupon],
    ) -> Result<Vec<Adjustment>, CouponRejection>;
}

/// Percentage and fixed coupons with minimum order values.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPromotions;

impl PromotionStrategy for DefaultPromotions {
    fn check(
        &self,
        ctx: &PromotionContext,
        subtotal: Money,
        coupon: &Coupon,
    ) -> Result<(), CouponRejection> {
        let valid = coupon.active
            && coupon.valid_from.is_none_or(|f| ctx.at >= f)
            && coupon.valid_until.is_none_or(|u| ctx.at < u);
        if !valid {
            return Err(CouponRejection::NotValid(coupon.code.clone()));
        }
        if let Discount::Fixed(m) = coupon.discount
            && m.currency != ctx.currency
        {
            return Err(CouponRejection::Currency(coupon.code.clone()));
        }
        if let Some(minimum) = coupon.min_order {
            if minimum.currency != ctx.currency {
                return Err(CouponRejection::Currency(coupon.code.clone()));
            }
            if subtotal.amount < minimum.amount {
                return Err(CouponRejection::BelowMinimum {
                    code: coupon.code.clone(),
                    minimum,
                });
            }
        }
        Ok(())
    }

    fn adjust(
        &self,
        ctx: &PromotionContext,
        lines: &[Money],
        coupons: &[Coupon],
    ) -> Result<Vec<Adjustment>, CouponRejection> {
        let mut subtotal = Money::zero(ctx.currency);
        for line in lines {
            subtotal = subtotal.checked_add(*line)?;
        }
        let mut remaining = subtotal;
        let mut out = Vec::new();
        for coupon in coupons {
            if self.check(ctx, subtotal, coupon).is_err() {
                continue;
            }
            let off = match coupon.discount {
                Discount::Percentage(bp) => {
                    let raw = i128::from(remaining.amount) * i128::from(bp.min(10_000));
                    let q = raw / 10_000;
                    let rounded = if (raw % 10_000).abs() * 2 >= 10_000 {
                        q + raw.signum()
                    } else {
                        q
                    };
                    i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?
                }
                Discount::Fixed(m) => m.amount.min(remaining.amount).max(0),
            };
            if off == 0 {
                continue;
            }
            remaining = remaining.checked_sub(Money::new(off, ctx.currency))?;
            out.push(Adjustment {
                code: coupon.code.clone(),
                amount: Money::new(-off, ctx.currency),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: CurrencyCode = CurrencyCode::EUR;

    fn coupon(code: &str, discount: Discount, min: Option<i64>) -> Coupon {
        Coupon {
            code: code.into(),
            discount,
            min_order: min.map(|m| Money::new(m, EUR)),
            valid_from: None,
            valid_until: None,
            active: true,
        }
    }

    fn ctx() -> PromotionContext {
        PromotionContext {
            currency: EUR,
            at: 100,
        }
    }

    fn lines(amounts: &[i64]) -> Vec<Money> {
        amounts.iter().map(|a| Money::new(*a, EUR)).collect()
    }

    #[test]
    fn percentage_and_fixed_apply_in_order() {
        let coupons = [
            coupon("TEN", Discount::Percentage(1000), None),
            coupon("FIVE", Discount::Fixed(Money::new(500, EUR)), None),
        ];
        let adj = DefaultPromotions
            .adjust(&ctx(), &lines(&[6000, 4005]), &coupons)
            .unwrap();
        assert_eq!(
            adj[0].amount.amount, -1001,
            "10% of 100.05 rounds half away from zero"
        );
        assert_eq!(adj[1].amount.amount, -500);
    }

    #[test]
    fn minimum_order_and_validity_are_checked() {
        let min = coupon("BIG", Discount::Percentage(500), Some(10_000));
        assert!(matches!(
            DefaultPromotions.check(&ctx(), Money::new(9_999, EUR), &min),
            Err(CouponRejection::BelowMinimum { .. })
        ));
        assert!(
            DefaultPromotions
                .check(&ctx(), Money::new(10_000, EUR), &min)
                .is_ok()
        );
        let mut expired = coupon("OLD", Discount::Percentage(500), None);
        expired.valid_until = Some(100);
        assert!(matches!(
            DefaultPromotions.check(&ctx(), Money::new(1, EUR), &expired),
            Err(CouponRejection::NotValid(_))
        ));
        let mut off = coupon("OFF", Discount::Percentage(500), None);
        off.active = false;
        assert!(
            DefaultPromotions
                .check(&ctx(), Money::new(1, EUR), &off)
                .is_err()
        );
        let usd = coupon(
            "USD",
            Discount::Fixed(Money::new(1, CurrencyCode::USD)),
            None,
        );
        assert!(matches!(
            DefaultPromotions.check(&ctx(), Money::new(1, EUR), &usd),
            Err(CouponRejection::Currency(_))
        ));
        let adj = DefaultPromotions
            .adjust(&ctx(), &lines(&[5_000]), &[min, expired])
            .unwrap();
        assert!(adj.is_empty(), "inapplicable coupons give nothing");
    }

    #[test]
    fn fixed_discounts_never_exceed_the_subtotal() {
        let big = coupon("HUGE", Discount::Fixed(Money::new(1_000_000, EUR)), None);
        let adj = DefaultPromotions
            .adjust(&ctx(), &lines(&[300, 200]), &[big])
            .unwrap();
        assert_eq!(adj[0].amount.amount, -500);
    }
}
