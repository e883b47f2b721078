//! The default pricing and tax strategies on 1,000 and 10,000 cart lines.

use std::collections::HashMap;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;
use vectis_strategies::pricing::{
    ListPrice, PriceLine, PriceList, PriceListScope, PricingContext, PricingData, Tier,
};
use vectis_strategies::tax::{TaxContext, TaxableLine};
use vectis_strategies::{
    CurrencyCode, DefaultPricing, DefaultTax, Money, PricingStrategy, TaxStrategy,
};

fn pricing_data(variants: &[Uuid]) -> PricingData {
    let lists: Vec<PriceList> = (0..5)
        .map(|i| PriceList {
            id: Uuid::from_u128(1000 + i),
            priority: i as i32,
            scope: if i % 2 == 0 {
                PriceListScope::Everyone
            } else {
                PriceListScope::Company(Uuid::from_u128(7))
            },
            currency: CurrencyCode::EUR,
            valid_from: None,
            valid_until: None,
        })
        .collect();
    PricingData {
        base_prices: variants
            .iter()
            .map(|v| {
                (
                    *v,
                    vec![
                        Money::new(1999, CurrencyCode::EUR),
                        Money::new(2199, CurrencyCode::USD),
                    ],
                )
            })
            .collect(),
        list_prices: variants
            .iter()
            .map(|v| {
                let prices = lists
                    .iter()
                    .map(|l| ListPrice {
                        price_list: l.id,
                        tiers: vec![
                            Tier {
                                min_quantity: 1,
                                unit_amount: 1900,
                            },
                            Tier {
                                min_quantity: 10,
                                unit_amount: 1800,
                            },
                            Tier {
                                min_quantity: 100,
                                unit_amount: 1700,
                            },
                        ],
                    })
                    .collect();
                (*v, prices)
            })
            .collect::<HashMap<_, _>>(),
        price_lists: lists,
    }
}

fn strategies(c: &mut Criterion) {
    let mut group = c.benchmark_group("strategies");
    for n in [1_000_usize, 10_000] {
        let variants: Vec<Uuid> = (0..n).map(|i| Uuid::from_u128(i as u128 + 1)).collect();
        let data = pricing_data(&variants);
        let ctx = PricingContext {
            currency: CurrencyCode::EUR,
            customer_group: None,
            companies: vec![Uuid::from_u128(7)],
            location: None,
            at: 0,
        };
        let lines: Vec<PriceLine> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| PriceLine {
                variant: *v,
                quantity: (i % 150) as i64 + 1,
            })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("pricing", n), &lines, |b, lines| {
            b.iter(|| DefaultPricing.price(&ctx, lines, &data));
        });
        let tax_ctx = TaxContext {
            currency: CurrencyCode::EUR,
            prices_include_tax: false,
            seller_country: "DE".into(),
            ship_to_country: Some("FR".into()),
            bill_to_country: None,
            buyer_vat_id: Some("FR12345678901".into()),
            buyer_tax_exempt: false,
        };
        let taxable: Vec<TaxableLine> = (0..n)
            .map(|i| TaxableLine {
                amount: Money::new(1999 * (i as i64 % 50 + 1), CurrencyCode::EUR),
                category: if i % 7 == 0 {
                    "reduced".into()
                } else {
                    "standard".into()
                },
            })
            .collect();
        let tax = DefaultTax::default();
        group.bench_with_input(BenchmarkId::new("tax", n), &taxable, |b, lines| {
            b.iter(|| tax.tax(&tax_ctx, lines));
        });
    }
    group.finish();
}

criterion_group!(benches, strategies);
criterion_main!(benches);
