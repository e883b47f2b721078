//! Shipping: which methods a cart may use and what each costs.
//!
//! **What it decides.** The eligible shipping methods for a cart and their price.
//!
//! **When it is called.** When the cart's lines or shipping address change and when the buyer
//! lists methods, once per cart with the cart's totals (not per line).
//!
//! **Performance budget.** Pure computation over totals; microseconds.
//!
//! **Default.** [`DefaultShipping`]: a list of methods, each with a flat base price, a price per
//! unit and per kilogram, an optional set of destination countries, and an optional threshold
//! above which it is free.
//!
//! **Instead.** Implement [`ShippingStrategy`] for carrier rates, zones or freight quotes.

use crate::money::{CurrencyCode, Money, MoneyError};

/// What shipping sees of a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingContext {
    /// Cart currency.
    pub currency: CurrencyCode,
    /// Destination country (ISO 3166-1 alpha-2), once known.
    pub destination_country: Option<String>,
    /// Subtotal of the lines after discounts.
    pub subtotal: Money,
    /// Sum of the line quantities.
    pub total_quantity: i64,
    /// Total weight in grams.
    pub total_weight_grams: i64,
}

/// An eligible method with its price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingQuote {
    /// Method code, e.g. `standard`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Price.
    pub price: Money,
}

/// Lists eligible methods and their prices for a cart.
pub trait ShippingStrategy: Send + Sync {
    /// The methods the cart may use, cheapest first.
    fn quotes(&self, ctx: &ShippingContext) -> Result<Vec<ShippingQuote>, MoneyError>;
}

/// A configured shipping method of [`DefaultShipping`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatRateMethod {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Currency of the amounts below; the method is offered only for carts in it.
    pub currency: CurrencyCode,
    /// Flat part, in minor units.
    pub base: i64,
    /// Per unit of quantity.
    #[serde(default)]
    pub per_unit: i64,
    /// Per started kilogram.
    #[serde(default)]
    pub per_kg: i64,
    /// Free at or above this subtotal.
    #[serde(default)]
    pub free_above: Option<i64>,
    /// Destination countries served (empty: all).
    #[serde(default)]
    pub countries: Vec<String>,
}

/// Flat, quantity- and weight-based methods, free above a threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultShipping {
    /// The methods offered.
    pub methods: Vec<FlatRateMethod>,
}

impl Default for DefaultShipping {
    fn default() -> Self {
        let method = |code: &str, name: &str, base, per_kg, free_above| FlatRateMethod {
            code: code.into(),
            name: name.into(),
            currency: CurrencyCode::EUR,
            base,
            per_unit: 0,
            per_kg,
            free_above,
            countries: Vec::new(),
        };
        DefaultShipping {
            methods: vec![
                method("standard", "Standard (3-5 days)", 990, 50, Some(50_000)),
                method("express", "Express (next day)", 2490, 120, None),
            ],
        }
    }
}

impl ShippingStrategy for DefaultShipping {
    fn quotes(&self, ctx: &ShippingContext) -> Result<Vec<ShippingQuote>, MoneyError> {
        let mut quotes = Vec::new();
        for m in &self.methods {
            if m.currency != ctx.currency {
                continue;
            }
            if !m.countries.is_empty()
                && !ctx
                    .destination_country
                    .as_ref()
                    .is_some_and(|c| m.countries.contains(c))
            {
                continue;
            }
            let amount = if m.free_above.is_some_and(|t| ctx.subtotal.amount >= t) {
                0
            } else {
                let kilograms = ctx
                    .total_weight_grams
                    .max(0)
                    .checked_add(999)
                    .ok_or(MoneyError::Overflow)?
                    / 1000;
                m.base
                    .checked_add(
                        m.per_unit
                            .checked_mul(ctx.total_quantity.max(0))
                            .ok_or(MoneyError::Overflow)?,
                    )
                    .and_then(|a| a.checked_add(m.per_kg.checked_mul(kilograms)?))
                    .ok_or(MoneyError::Overflow)?
            };
            quotes.push(ShippingQuote {
                code: m.code.clone(),
                name: m.name.clone(),
                price: Money::new(amount, ctx.currency),
            });
        }
        quotes.sort_by_key(|q| q.price.amount);
        Ok(quotes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(subtotal: i64, grams: i64) -> ShippingContext {
        ShippingContext {
            currency: CurrencyCode::EUR,
            destination_country: Some("DE".into()),
            subtotal: Money::new(subtotal, CurrencyCode::EUR),
            total_quantity: 3,
            total_weight_grams: grams,
        }
    }

    #[test]
    fn prices_by_weight_and_frees_above_the_threshold() {
        let quotes = DefaultShipping::default()
            .quotes(&ctx(10_000, 2_500))
            .unwrap();
        assert_eq!(quotes[0].code, "standard");
        assert_eq!(
            quotes[0].price.amount,
            990 + 3 * 50,
            "three started kilograms"
        );
        assert_eq!(quotes[1].price.amount, 2490 + 3 * 120);
        let quotes = DefaultShipping::default()
            .quotes(&ctx(50_000, 2_500))
            .unwrap();
        assert_eq!(quotes[0].price.amount, 0);
    }

    #[test]
    fn filters_by_currency_and_country() {
        let mut usd = ctx(100, 0);
        usd.currency = CurrencyCode::USD;
        assert!(DefaultShipping::default().quotes(&usd).unwrap().is_empty());
        let mut shipping = DefaultShipping::default();
        shipping.methods[1].countries = vec!["AT".into()];
        assert_eq!(shipping.quotes(&ctx(100, 0)).unwrap().len(), 1);
    }

    #[test]
    fn absurd_weights_are_an_error_not_a_wrap() {
        assert_eq!(
            DefaultShipping::default().quotes(&ctx(0, i64::MAX)),
            Err(MoneyError::Overflow)
        );
    }
}
