//! Catalog reads through the GraphQL executor (no HTTP): a product page with variants and
//! prices, a page with every relation, and a 1,000-SKU lookup.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vectis_benches::{demo_engine, run};

const PAGE_20: &str = "{ products(first: 20) { totalCount edges { node { name variants { sku prices { amount currency } } } } } }";
const PAGE_100_FULL: &str = "{ products(first: 100) { edges { node { name optionGroups { code options { code } }
    collections { name parent { name } } variants { sku options { groupCode code } prices { amount currency } } } } } }";

fn catalog(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (app, caller) = rt.block_on(demo_engine());
    let skus: Vec<String> = rt.block_on(async {
        let data = run(
            &app,
            &caller,
            "{ products(first: 100) { edges { node { variants { sku } } } } }",
        )
        .await;
        data["products"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| {
                e["node"]["variants"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|v| v["sku"].as_str().map(str::to_owned))
            .take(1000)
            .collect()
    });
    let lookup = format!(
        "{{ variantsBySku(skus: {}) {{ sku price(currency: \"EUR\") {{ amount }} product {{ name }} }} }}",
        serde_json::to_string(&skus).expect("skus")
    );

    let mut group = c.benchmark_group("catalog");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("products_first_20_variants_prices", |b| {
        b.to_async(&rt).iter(|| run(&app, &caller, PAGE_20));
    });
    group.bench_function("products_first_100_all_relations", |b| {
        b.to_async(&rt).iter(|| run(&app, &caller, PAGE_100_FULL));
    });
    group.bench_function(format!("variants_by_sku_{}", skus.len()), |b| {
        b.to_async(&rt).iter(|| run(&app, &caller, &lookup));
    });
    group.finish();
}

criterion_group!(benches, catalog);
criterion_main!(benches);
