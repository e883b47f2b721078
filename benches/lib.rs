//! Shared set-up of the Vectis benchmarks: an engine over a fresh SQLite file (or
//! `VECTIS_BENCH_DATABASE_URL`), seeded with the demo catalog.

use vectis_engine::App;
use vectis_engine::auth::{Caller, Principal};
use vectis_engine::config::Config;
use vectis_engine::db::Db;

/// An engine with the demo catalog and a storefront caller of the demo tenant.
pub async fn demo_engine() -> (App, Caller) {
    let mut config = Config::default();
    config.database.url = match std::env::var("VECTIS_BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let path = std::env::temp_dir()
                .join(format!("vectis-bench-{}.db", uuid::Uuid::now_v7().simple()));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    let db = Db::connect(&config.database).await.expect("connect");
    db.migrate().await.expect("migrate");
    let app = App::new(config, db).expect("strategies");
    let report = vectis_engine::seed::seed_demo(&app.services, false)
        .await
        .expect("seed");
    let tenant = report.tenant.expect("demo tenant");
    let caller = Caller {
        tenant: tenant.id,
        principal: Principal::Storefront,
    };
    (app, caller)
}

/// Executes a query and fails on GraphQL errors.
pub async fn run(app: &App, caller: &Caller, query: &str) -> serde_json::Value {
    let response = app
        .execute(async_graphql::Request::new(query), Some(caller.clone()))
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(response.data).expect("json")
}
