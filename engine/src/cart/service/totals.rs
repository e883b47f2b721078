//! Totals: one aggregate per tax category over the cart's lines, then promotions, shipping and order-level tax from those sums, without reading the lines.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};

use super::*;

/// Per tax category sums of a cart's lines.
#[derive(Debug, Clone, Default)]
pub(super) struct Aggregate {
    category: String,
    lines: i64,
    quantity: i64,
    weight: i64,
    amount: i64,
    tax: i64,
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
    /// Sums the cart's lines per tax category in one statement.
    pub(super) async fn aggregate(
        &self,
        uow: &UnitOfWork,
        cart: &order::Model,
    ) -> AppResult<Vec<Aggregate>> {
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
    pub(super) async fn save_totals(
        &self,
        uow: &mut UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
    ) -> AppResult<order::Model> {
        let aggregates = self.aggregate(uow, cart).await?;
        let codes: Vec<String> = serde_json::from_str(&cart.coupons).unwrap_or_default();
        let mut coupons: Vec<Coupon> = if codes.is_empty() {
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
        // A quote's order-level discount, as agreed.
        if let Some(quote) = cart.quote_id {
            let amount = crate::quotes::service::discount_in(uow.tx(), uow.tenant(), quote).await?;
            if amount > 0 {
                coupons.push(Coupon {
                    code: "QUOTE".into(),
                    discount: vectis_strategies::promotions::Discount::Fixed(Money::new(
                        amount,
                        Self::currency_of(cart)?,
                    )),
                    min_order: None,
                    valid_from: None,
                    valid_until: None,
                    active: true,
                });
            }
        }
        let totals = compute(
            &self.strategies,
            &TotalsInput {
                aggregates: &aggregates,
                coupons: &coupons,
                shipping_method: cart.shipping_method.as_deref(),
                destination_country: Self::address_of(cart).map(|a| a.country_code),
                tax: self.tax_context(buyer, cart)?,
                at: Utc::now().timestamp(),
            },
        )?;
        let sets: Vec<(order::Column, Expr)> = vec![
            (order::Column::LineCount, Expr::value(totals.line_count)),
            (order::Column::TotalQuantity, Expr::value(totals.quantity)),
            (order::Column::TotalWeightGrams, Expr::value(totals.weight)),
            (order::Column::Subtotal, Expr::value(totals.subtotal)),
            (order::Column::Discount, Expr::value(totals.discount)),
            (order::Column::Shipping, Expr::value(totals.shipping)),
            (order::Column::Tax, Expr::value(totals.tax)),
            (order::Column::Total, Expr::value(totals.total)),
            (order::Column::Currency, Expr::value(cart.currency.clone())),
            (order::Column::Coupons, Expr::value(cart.coupons.clone())),
            (
                order::Column::Adjustments,
                Expr::value(json_text(&totals.adjustments)?),
            ),
            (
                order::Column::TaxSummary,
                Expr::value(json_text(&totals.summary)?),
            ),
            (
                order::Column::ShippingAddress,
                Expr::value(cart.shipping_address.clone()),
            ),
            (
                order::Column::ShippingMethod,
                Expr::value(totals.shipping_method),
            ),
        ];
        uow.bump::<order::Entity>(cart.id, sets, "Cart").await
    }
}

/// What a cart's totals are computed from.
pub(super) struct TotalsInput<'a> {
    /// The sums of the lines per tax category.
    pub aggregates: &'a [Aggregate],
    /// The applied coupons, in the order applied.
    pub coupons: &'a [Coupon],
    /// The chosen shipping method.
    pub shipping_method: Option<&'a str>,
    /// Where the cart ships to.
    pub destination_country: Option<String>,
    /// The cart's tax context (currency, net or gross prices, the buyer).
    pub tax: TaxContext,
    /// Now, in seconds since the epoch (coupon validity).
    pub at: i64,
}

/// A cart's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Totals {
    pub line_count: i64,
    pub quantity: i64,
    pub weight: i64,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    /// The shipping method, dropped when it is no longer offered.
    pub shipping_method: Option<String>,
    pub tax: i64,
    pub total: i64,
    pub adjustments: Vec<StoredAdjustment>,
    pub summary: Vec<StoredTaxSummary>,
}

/// The totals of a cart from the sums of its lines, without reading a line: promotions on the
/// amounts per tax category, shipping on the discounted subtotal (none for an empty cart), the
/// discount's share of tax per category and shipping at the standard rate. Overflow anywhere is
/// `VALIDATION`, never a wrap.
pub(super) fn compute(strategies: &Strategies, input: &TotalsInput<'_>) -> AppResult<Totals> {
    let aggregates = input.aggregates;
    let currency = input.tax.currency;
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
    let promo_ctx = PromotionContext {
        currency,
        at: input.at,
    };
    let category_amounts: Vec<Money> = aggregates
        .iter()
        .map(|a| Money::new(a.amount, currency))
        .collect();
    let adjustments = strategies
        .promotions
        .adjust(&promo_ctx, &category_amounts, input.coupons)
        .map_err(|_| overflow("discounts"))?;
    let discount = adjustments
        .iter()
        .try_fold(0_i64, |acc, a| acc.checked_sub(a.amount.amount))
        .ok_or_else(|| overflow("discounts"))?;

    // Shipping, on the discounted subtotal. An empty cart ships nothing: no charge, though
    // the chosen method stays for later.
    let mut shipping_method = input.shipping_method.map(str::to_owned);
    let mut shipping = 0;
    if let Some(method) = input.shipping_method.filter(|_| line_count > 0) {
        let ctx = ShippingContext {
            currency,
            destination_country: input.destination_country.clone(),
            subtotal: Money::new(
                subtotal
                    .checked_sub(discount)
                    .ok_or_else(|| overflow("discounts"))?,
                currency,
            ),
            total_quantity: quantity,
            total_weight_grams: weight,
        };
        let quotes = strategies
            .shipping
            .quotes(&ctx)
            .map_err(|_| overflow("shipping"))?;
        match quotes.into_iter().find(|q| q.code == method) {
            Some(q) => shipping = q.price.amount,
            None => shipping_method = None,
        }
    }

    // Order-level tax: the discount split over the tax categories in proportion, and
    // shipping at the standard rate; line tax is already stored per line.
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
    let order_taxes = strategies.tax.tax(&input.tax, &taxable);
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
    if !input.tax.prices_include_tax {
        total = total.checked_add(tax).ok_or_else(|| overflow("total"))?;
    }
    Ok(Totals {
        line_count,
        quantity,
        weight,
        subtotal,
        discount,
        shipping,
        shipping_method,
        tax,
        total,
        adjustments: adjustments
            .iter()
            .map(|a| StoredAdjustment {
                code: a.code.clone(),
                amount: a.amount.amount,
            })
            .collect(),
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectis_strategies::promotions::Discount;

    fn tax(prices_include_tax: bool) -> TaxContext {
        TaxContext {
            currency: CurrencyCode::EUR,
            prices_include_tax,
            seller_country: "DE".into(),
            ship_to_country: Some("DE".into()),
            bill_to_country: None,
            buyer_vat_id: None,
            buyer_tax_exempt: false,
        }
    }

    fn agg(category: &str, lines: i64, amount: i64, tax: i64) -> Aggregate {
        Aggregate {
            category: category.into(),
            lines,
            quantity: lines * 2,
            weight: lines * 500,
            amount,
            tax,
        }
    }

    fn totals(aggregates: &[Aggregate], coupons: &[Coupon], method: Option<&str>) -> Totals {
        compute(
            &Strategies::defaults(),
            &TotalsInput {
                aggregates,
                coupons,
                shipping_method: method,
                destination_country: Some("DE".into()),
                tax: tax(false),
                at: 1_800_000_000,
            },
        )
        .unwrap()
    }

    fn percent(code: &str, bp: u32) -> Coupon {
        Coupon {
            code: code.into(),
            discount: Discount::Percentage(bp),
            min_order: None,
            valid_from: None,
            valid_until: None,
            active: true,
        }
    }

    #[test]
    fn sums_lines_and_adds_their_tax() {
        let t = totals(
            &[
                agg("reduced", 1, 1_000, 70),
                agg("standard", 2, 10_000, 1_900),
            ],
            &[],
            None,
        );
        assert_eq!((t.line_count, t.quantity, t.weight), (3, 6, 1_500));
        assert_eq!((t.subtotal, t.tax, t.total), (11_000, 1_970, 12_970));
        assert_eq!(t.summary.len(), 2);
    }

    #[test]
    fn a_discount_is_split_over_the_categories_and_taxed_with_them() {
        let t = totals(
            &[
                agg("reduced", 1, 1_000, 70),
                agg("standard", 1, 9_000, 1_710),
            ],
            &[percent("TEN", 1_000)],
            None,
        );
        assert_eq!(t.discount, 1_000);
        // 10 % off each category: 100 at 7 %, 900 at 19 %.
        assert_eq!(t.tax, 1_780 - 7 - 171);
        assert_eq!(t.total, 10_000 - 1_000 + t.tax);
        assert_eq!(t.summary[0].amount + t.summary[1].amount, 9_000);
        assert_eq!(
            t.adjustments,
            vec![StoredAdjustment {
                code: "TEN".into(),
                amount: -1_000
            }]
        );
    }

    #[test]
    fn shipping_is_charged_and_taxed_only_with_lines() {
        let t = totals(&[agg("standard", 1, 1_000, 190)], &[], Some("express"));
        assert!(t.shipping > 0);
        assert_eq!(t.summary.last().unwrap().category, "shipping");
        assert_eq!(t.total, 1_000 + t.shipping + t.tax);
        let empty = totals(&[], &[], Some("express"));
        assert_eq!((empty.shipping, empty.tax, empty.total), (0, 0, 0));
        assert_eq!(
            empty.shipping_method.as_deref(),
            Some("express"),
            "kept for later"
        );
        let gone = totals(&[agg("standard", 1, 1_000, 190)], &[], Some("teleport"));
        assert_eq!((gone.shipping, gone.shipping_method), (0, None));
    }

    #[test]
    fn gross_prices_do_not_add_tax_to_the_total() {
        let t = compute(
            &Strategies::defaults(),
            &TotalsInput {
                aggregates: &[agg("standard", 1, 1_190, 190)],
                coupons: &[],
                shipping_method: None,
                destination_country: None,
                tax: tax(true),
                at: 0,
            },
        )
        .unwrap();
        assert_eq!((t.tax, t.total), (190, 1_190));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let huge = [agg("standard", 1, i64::MAX, 0), agg("reduced", 1, 1, 0)];
        let err = compute(
            &Strategies::defaults(),
            &TotalsInput {
                aggregates: &huge,
                coupons: &[],
                shipping_method: None,
                destination_country: None,
                tax: tax(false),
                at: 0,
            },
        );
        assert!(matches!(err, Err(AppError::Validation { .. })));
    }

    #[test]
    fn allocation_is_exact_and_proportional() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(-10, &[3, 1]), vec![-8, -2]);
        assert_eq!(allocate(5, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate(7, &[]), Vec::<i64>::new());
    }
}
