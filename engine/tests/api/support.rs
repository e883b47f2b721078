//! Test harness: a fresh, migrated database per test (a SQLite file, or a PostgreSQL schema
//! when `VECTIS_TEST_DATABASE_URL` is set), a tenant with an admin, and helpers to run GraphQL
//! with or without HTTP.

use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::Variables;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;
use vectis_engine::App;
use vectis_engine::auth::{Caller, Permission, Principal, StaffRole};
use vectis_engine::config::Config;
use vectis_engine::db::Db;
use vectis_engine::http::{HttpOptions, router};
use vectis_engine::tenancy::Tenant;
use vectis_strategies::CurrencyCode;

/// JWT secret used by tests (tokens can be forged with it on purpose).
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";
/// Password of the test admins.
pub const PASSWORD: &str = "correct-horse-9";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the suite runs against PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var("VECTIS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A configuration pointing at a fresh database.
pub async fn fresh_config() -> Config {
    let mut config = Config::default();
    config.auth.jwt_secret = Some(TEST_JWT_SECRET.into());
    config.mail.mailbox_dir = std::env::temp_dir()
        .join(format!("vectis-test-mailbox-{}", Uuid::now_v7().simple()))
        .display()
        .to_string();
    match postgres_url() {
        Some(url) => {
            let schema = format!("t_{}", Uuid::now_v7().simple());
            let conn = Database::connect(url.as_str())
                .await
                .expect("connect to VECTIS_TEST_DATABASE_URL");
            conn.execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("CREATE SCHEMA {schema}"),
            ))
            .await
            .expect("create test schema");
            conn.close().await.ok();
            config.database.url = url;
            config.database.schema = Some(schema);
            config.database.max_connections = 4;
        }
        None => {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "vectis-test-{}-{n}-{}.db",
                std::process::id(),
                Uuid::now_v7().simple()
            ));
            config.database.url = format!("sqlite://{}?mode=rwc", path.display());
            config.database.max_connections = 4;
        }
    }
    config
}

/// One tenant with its admin and storefront callers.
pub struct TestTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its storefront key.
    pub storefront_key: String,
    /// A super-admin caller.
    pub admin: Caller,
    /// An anonymous storefront caller.
    pub storefront: Caller,
}

impl TestTenant {
    /// A staff caller of this tenant with only `permissions`.
    pub fn staff(&self, permissions: &[Permission]) -> Caller {
        Caller {
            tenant: self.tenant.id,
            principal: Principal::Staff {
                id: Uuid::now_v7(),
                permissions: permissions.to_vec(),
            },
        }
    }
}

/// A running engine over a fresh database, without a network listener.
pub struct TestApp {
    /// The engine.
    pub app: App,
    /// The first tenant (`acme`).
    pub a: TestTenant,
}

impl TestApp {
    /// A fresh engine with tenant `acme`.
    pub async fn new() -> TestApp {
        Self::with_config(fresh_config().await).await
    }

    /// A fresh engine with the given configuration (strategies chosen by it) and tenant `acme`.
    pub async fn with_config(config: Config) -> TestApp {
        let strategies =
            vectis_strategies::registry::resolve(&config.selection()).expect("strategies");
        Self::with_strategies(config, strategies).await
    }

    /// A fresh engine with custom strategies and tenant `acme`.
    pub async fn with_strategies(
        config: Config,
        strategies: vectis_strategies::Strategies,
    ) -> TestApp {
        // `VECTIS_TEST_LOG=error` shows the engine's logs (internal errors with their cause).
        static LOG: std::sync::Once = std::sync::Once::new();
        LOG.call_once(|| {
            if let Ok(filter) = std::env::var("VECTIS_TEST_LOG") {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_test_writer()
                    .try_init();
            }
        });
        let db = Db::connect(&config.database).await.expect("connect");
        db.migrate().await.expect("migrate");
        let app = App::with_strategies(config, db, strategies).expect("strategies");
        let a = add_tenant(&app, "acme").await;
        TestApp { app, a }
    }

    /// Adds another tenant.
    pub async fn tenant(&self, slug: &str) -> TestTenant {
        add_tenant(&self.app, slug).await
    }

    /// Runs GraphQL as `caller` without HTTP and returns the response as JSON.
    pub async fn gql(&self, caller: Option<&Caller>, query: &str, variables: Value) -> Value {
        let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
        let response = self.app.execute(request, caller.cloned()).await;
        serde_json::to_value(&response).expect("response to JSON")
    }

    /// Runs GraphQL and returns `data`, failing the test on any error.
    pub async fn ok(&self, caller: Option<&Caller>, query: &str, variables: Value) -> Value {
        let response = self.gql(caller, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// Sends an HTTP request through the router.
    pub async fn http(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = router(self.app.clone(), HttpOptions::default())
            .oneshot(request)
            .await
            .expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, body)
    }

    /// Statements executed by the pool so far.
    pub fn statements(&self) -> u64 {
        self.app.db().statements().get()
    }

    /// Rows in the outbox of every tenant.
    pub async fn outbox_count(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM outbox").await
    }

    /// A system-mode scalar query.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let tx = self
            .app
            .db()
            .read(vectis_engine::db::Scope::System)
            .await
            .expect("tx");
        let row = tx
            .query_one_raw(Statement::from_string(
                self.app.db().backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
            .expect("row");
        let value: i64 = row.try_get_by_index(0).expect("integer");
        tx.commit().await.expect("commit");
        value
    }

    /// A system-mode statement (to stage states no API produces, e.g. an expired reservation).
    pub async fn exec(&self, sql: &str) {
        let tx = self
            .app
            .db()
            .write(vectis_engine::db::Scope::System)
            .await
            .expect("tx");
        tx.execute_raw(Statement::from_string(
            self.app.db().backend(),
            sql.to_owned(),
        ))
        .await
        .expect("statement");
        tx.commit().await.expect("commit");
    }
}

async fn add_tenant(app: &App, slug: &str) -> TestTenant {
    let storefront_key = format!("{slug}-storefront-key-{}", Uuid::now_v7().simple());
    let tenant = app
        .services
        .tenants
        .create(
            slug,
            &format!("{slug} Inc."),
            &storefront_key,
            CurrencyCode::EUR,
        )
        .await
        .expect("create tenant");
    let admin_email = format!("admin@{slug}.test");
    let staff = app
        .services
        .auth
        .create_staff(
            tenant.id,
            None,
            &admin_email,
            PASSWORD,
            "Admin",
            &[StaffRole::Admin],
        )
        .await
        .expect("create admin");
    TestTenant {
        admin: Caller {
            tenant: tenant.id,
            principal: Principal::Staff {
                id: staff.id,
                permissions: vec![Permission::SuperAdmin],
            },
        },
        storefront: Caller {
            tenant: tenant.id,
            principal: Principal::Storefront,
        },
        tenant,
        storefront_key,
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

/// A product with option groups `size` (s, m, l) and `finish` (zinc, steel).
pub async fn create_product(app: &TestApp, caller: &Caller, name: &str) -> String {
    let data = app
        .ok(
            Some(caller),
            "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }",
            json!({ "input": {
                "name": name,
                "description": "test product",
                "optionGroups": [
                    { "code": "size", "name": "Size", "options": [
                        { "code": "s", "name": "S" }, { "code": "m", "name": "M" }, { "code": "l", "name": "L" } ] },
                    { "code": "finish", "name": "Finish", "options": [
                        { "code": "zinc", "name": "Zinc" }, { "code": "steel", "name": "Steel" } ] }
                ]
            }}),
        )
        .await;
    data["createProduct"]["id"].as_str().expect("id").to_owned()
}

/// An `upsertVariants` item.
pub fn variant(product: &str, sku: &str, eur: i64) -> Value {
    json!({
        "productId": product,
        "sku": sku,
        "name": format!("Variant {sku}"),
        "prices": [{ "currency": "EUR", "amount": eur }],
        "options": [{ "group": "size", "option": "m" }],
    })
}

/// Runs `upsertVariants` and returns the payload.
pub async fn upsert(app: &TestApp, caller: &Caller, items: Vec<Value>) -> Value {
    let response = app
        .gql(
            Some(caller),
            "mutation($input: [UpsertVariantInput!]!) { upsertVariants(input: $input) {
                applied errors { index code field message } variants { id sku version } } }",
            json!({ "input": items }),
        )
        .await;
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response:#}"
    );
    response["data"]["upsertVariants"].clone()
}

/// The `data` of the newest outbox event of `event_type`.
pub async fn last_event(t: &TestApp, event_type: &str) -> Value {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use vectis_engine::events::entity as outbox;
    let tx = t
        .app
        .db()
        .read(vectis_engine::db::Scope::System)
        .await
        .expect("tx");
    let row = outbox::Entity::find()
        .filter(outbox::Column::EventType.eq(event_type))
        .order_by_desc(outbox::Column::Position)
        .one(&tx)
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("no {event_type} event"));
    tx.commit().await.expect("commit");
    row.data
}

/// The one-time token the email for the newest event of `event_type` will carry (kept by the
/// engine for its notifications handler; events never carry it).
pub async fn mailed_token(t: &TestApp, event_type: &str) -> String {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use vectis_engine::events::entity as outbox;
    use vectis_engine::notifications::token_entity as kept;
    let tx = t
        .app
        .db()
        .read(vectis_engine::db::Scope::System)
        .await
        .expect("tx");
    let event = outbox::Entity::find()
        .filter(outbox::Column::EventType.eq(event_type))
        .order_by_desc(outbox::Column::Position)
        .one(&tx)
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("no {event_type} event"));
    assert!(event.data.get("token").is_none(), "a token in {event_type}");
    let kept = kept::Entity::find()
        .filter(kept::Column::EventId.eq(event.id))
        .one(&tx)
        .await
        .expect("query");
    tx.commit().await.expect("commit");
    if let Some(kept) = kept {
        return kept.token;
    }
    // With the event pipeline running, the notifications handler may have taken the token
    // into its email already: read it from the mailbox.
    let dir = std::path::PathBuf::from(&t.app.config.mail.mailbox_dir);
    for _ in 0..200 {
        let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries.filter_map(|e| e.ok()).find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&event.id.to_string())
            })
        });
        if let Some(file) = found {
            let mail = std::fs::read_to_string(file.path())
                .expect("mail")
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            return mail
                .split("?token=")
                .nth(1)
                .and_then(|rest| {
                    rest.split(|c: char| c.is_whitespace() || c == '"' || c == '<')
                        .next()
                })
                .expect("a link with a token")
                .to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no token kept or mailed for {event_type}")
}

/// The caller an access token stands for (as the HTTP layer would resolve it).
pub async fn caller_of(t: &TestApp, access_token: &str) -> Caller {
    t.app
        .services
        .auth
        .authenticate(Some(&format!("Bearer {access_token}")), None)
        .await
        .expect("valid token")
        .expect("a caller")
}

/// Logs a customer in and returns their caller.
pub async fn customer_login(
    t: &TestApp,
    storefront: &Caller,
    email: &str,
    password: &str,
) -> Caller {
    let data = t
        .ok(
            Some(storefront),
            "mutation($e: String!, $p: String!) { customerLogin(email: $e, password: $p) { accessToken } }",
            json!({ "e": email, "p": password }),
        )
        .await;
    caller_of(
        t,
        data["customerLogin"]["accessToken"]
            .as_str()
            .expect("token"),
    )
    .await
}

/// A company `Acme` with a buyer; returns the company id and the buyer's caller.
pub async fn buyer(t: &TestApp) -> (String, Caller) {
    let data = t
        .ok(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Acme\" }) { id } }",
            json!({}),
        )
        .await;
    let company = data["createCompany"]["id"].as_str().unwrap().to_owned();
    let caller = company_user(t, &company, "buyer@acme.test", "buyer").await;
    (company, caller)
}

/// Invites `email` with `role` to `company`, accepts, and returns the user's caller.
pub async fn company_user(t: &TestApp, company: &str, email: &str, role: &str) -> Caller {
    company_user_with(t, company, email, &[role]).await
}

/// Invites `email` with `roles` to `company`, accepts, and returns the user's caller.
pub async fn company_user_with(t: &TestApp, company: &str, email: &str, roles: &[&str]) -> Caller {
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!, $e: String!, $r: [String!]!) { inviteCompanyUser(companyId: $c, email: $e, roles: $r) { id } }",
        json!({ "c": company, "e": email, "r": roles }),
    )
    .await;
    let token = mailed_token(t, "vectis.company.user_invited").await;
    let data = t
        .ok(
            None,
            "mutation($t: String!, $p: String) { acceptCompanyInvitation(token: $t, password: $p, firstName: \"B\", lastName: \"Uyer\") { accessToken } }",
            json!({ "t": token, "p": PASSWORD }),
        )
        .await;
    caller_of(
        t,
        data["acceptCompanyInvitation"]["accessToken"]
            .as_str()
            .unwrap(),
    )
    .await
}
