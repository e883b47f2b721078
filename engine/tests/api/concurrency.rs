//! Invariants a race could break, tried with truly parallel callers: each on its own pool
//! connection, released together by a barrier, for several rounds. On PostgreSQL (the
//! `VECTIS_TEST_DATABASE_URL` suite) the transactions really interleave; on SQLite writers are
//! serialised, and the same invariants must hold there too.

use std::future::Future;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;
use vectis_engine::auth::{Caller, Membership, Principal, builtin_company_role};

use crate::cart::catalog;
use crate::support::{PASSWORD, TestApp, buyer, error_code, fresh_config};

/// Parallel callers per round.
pub const PARALLEL: usize = 20;
/// Rounds per test.
const ROUNDS: usize = 3;

/// An engine whose pool has a connection for every parallel caller (and some to spare).
pub async fn parallel_app() -> Arc<TestApp> {
    let mut config = fresh_config().await;
    config.database.max_connections = (PARALLEL + 4) as u32;
    Arc::new(TestApp::with_config(config).await)
}

/// Runs `f(i)` for `i` in `0..n` at once: every task waits at a barrier, then all start.
pub async fn race<F, Fut>(n: usize, f: F) -> Vec<Value>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Value> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let work = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

/// `gql` on a shared app, as an owned future for [`race`].
pub fn call(
    t: &Arc<TestApp>,
    caller: Option<Caller>,
    query: &'static str,
    vars: Value,
) -> impl Future<Output = Value> + Send + 'static {
    let t = t.clone();
    async move { t.gql(caller.as_ref(), query, vars).await }
}

const ADD: &str = "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied errors { code message } } }";
const CART: &str = "{ cart { lineCount totalQuantity totals { subtotal { amount } tax { amount } total { amount } }
    lines(first: 10000) { nodes { quantity linePrice { amount } tax { amount } } } } }";

fn sum(cart: &Value, field: &str) -> i64 {
    cart["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field]["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_adds_of_one_sku_lose_no_quantity() {
    let t = parallel_app().await;
    catalog(&t, 1, 1_050).await;
    let (_, buyer) = buyer(&t).await;
    for round in 1..=ROUNDS {
        // The first round also races the creation of the cart.
        let results = race(PARALLEL, |_| {
            call(
                &t,
                Some(buyer.clone()),
                ADD,
                json!({ "l": [{ "sku": "S-0", "quantity": 1 }] }),
            )
        })
        .await;
        for r in &results {
            assert_eq!(r["data"]["addCartLines"]["applied"], true, "{r}");
        }
        let cart = t.ok(Some(&buyer), CART, json!({})).await["cart"].clone();
        let expected = (PARALLEL * round) as i64;
        assert_eq!(cart["lineCount"], 1);
        assert_eq!(cart["totalQuantity"], expected, "round {round}");
        assert_eq!(cart["lines"]["nodes"][0]["quantity"], expected);
        assert_eq!(cart["totals"]["subtotal"]["amount"], expected * 1_050);
        assert_eq!(
            cart["totals"]["subtotal"]["amount"],
            sum(&cart, "linePrice")
        );
        assert_eq!(cart["totals"]["tax"]["amount"], sum(&cart, "tax"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_adds_of_different_skus_keep_totals_equal_to_the_lines() {
    let t = parallel_app().await;
    catalog(&t, PARALLEL * ROUNDS, 1_234).await;
    let (_, buyer) = buyer(&t).await;
    for round in 1..=ROUNDS {
        let offset = (round - 1) * PARALLEL;
        let results = race(PARALLEL, |i| {
            call(
                &t,
                Some(buyer.clone()),
                ADD,
                json!({ "l": [{ "sku": format!("S-{}", offset + i), "quantity": i + 1 }] }),
            )
        })
        .await;
        for r in &results {
            assert_eq!(r["data"]["addCartLines"]["applied"], true, "{r}");
        }
        let cart = t.ok(Some(&buyer), CART, json!({})).await["cart"].clone();
        let lines = (PARALLEL * round) as i64;
        assert_eq!(cart["lineCount"], lines, "round {round}");
        assert_eq!(
            cart["lines"]["nodes"].as_array().unwrap().len() as i64,
            lines
        );
        let quantity: i64 = (1..=PARALLEL as i64).sum::<i64>() * round as i64;
        assert_eq!(cart["totalQuantity"], quantity);
        assert_eq!(cart["totals"]["subtotal"]["amount"], quantity * 1_234);
        assert_eq!(
            cart["totals"]["subtotal"]["amount"],
            sum(&cart, "linePrice")
        );
        assert_eq!(cart["totals"]["tax"]["amount"], sum(&cart, "tax"));
        let total = cart["totals"]["total"]["amount"].as_i64().unwrap();
        assert_eq!(total, sum(&cart, "linePrice") + sum(&cart, "tax"));
    }
}

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { refreshToken } }";
const REFRESH: &str = "mutation($r: String!) { refreshToken(refreshToken: $r) { refreshToken } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_replayed_in_parallel_yields_no_lasting_session() {
    let t = parallel_app().await;
    for round in 1..=ROUNDS {
        let login = t
            .ok(
                Some(&t.a.storefront),
                LOGIN,
                json!({ "e": "admin@acme.test", "p": PASSWORD }),
            )
            .await;
        let token = login["login"]["refreshToken"].as_str().unwrap().to_owned();
        let results = race(PARALLEL, |_| {
            call(&t, None, REFRESH, json!({ "r": token.clone() }))
        })
        .await;
        let won: Vec<&str> = results
            .iter()
            .filter_map(|r| r["data"]["refreshToken"]["refreshToken"].as_str())
            .collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one redemption");
        for r in results.iter().filter(|r| r["errors"].is_array()) {
            assert_eq!(error_code(r), "UNAUTHENTICATED", "{r}");
        }
        // The others were reuse: the whole family is revoked, the winner's new token too.
        let again = t.gql(None, REFRESH, json!({ "r": won[0] })).await;
        assert_eq!(
            error_code(&again),
            "UNAUTHENTICATED",
            "round {round}: {again}"
        );
    }
}

/// A company with `n` admins (customers added by staff); returns the company and the admins'
/// callers. Their rights are read from the database, so the callers carry only who they are.
async fn admins(t: &TestApp, n: usize) -> (String, Vec<(String, Caller)>) {
    let company = t
        .ok(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Race Inc\" }) { id } }",
            json!({}),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let company_id = Uuid::parse_str(&company).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let customer = t
            .ok(
                Some(&t.a.admin),
                "mutation($e: String!) { createCustomer(input: { email: $e, firstName: \"A\", lastName: \"Dmin\" }) { id } }",
                json!({ "e": format!("admin{i}-{}@race.test", Uuid::now_v7().simple()) }),
            )
            .await["createCustomer"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        t.ok(
            Some(&t.a.admin),
            "mutation($c: ID!, $u: ID!) { addCompanyUser(companyId: $c, customerId: $u, roles: [\"admin\"]) { customerId } }",
            json!({ "c": company, "u": customer }),
        )
        .await;
        let caller = Caller {
            tenant: t.a.tenant.id,
            principal: Principal::Customer {
                id: Uuid::parse_str(&customer).unwrap(),
                membership: Some(Membership {
                    company_id,
                    location_id: None,
                    roles: vec!["admin".into()],
                    permissions: builtin_company_role("admin").unwrap().to_vec(),
                }),
                acting_staff: None,
            },
        };
        out.push((customer, caller));
    }
    (company, out)
}

async fn admin_count(t: &TestApp, company: &str) -> usize {
    let users = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { companyUsers(companyId: $c) { roles } }",
            json!({ "c": company }),
        )
        .await;
    users["companyUsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["roles"].as_array().unwrap().iter().any(|r| r == "admin"))
        .count()
}

const DEMOTE: &str = "mutation($c: ID!, $u: ID!) { updateCompanyUser(companyId: $c, customerId: $u, input: { roles: [\"buyer\"] }) { roles } }";
const REMOVE: &str =
    "mutation($c: ID!, $u: ID!) { removeCompanyUser(companyId: $c, customerId: $u) }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_demoting_or_removing_each_other_at_once_leave_an_admin() {
    let t = parallel_app().await;
    for (round, query) in [DEMOTE, REMOVE, DEMOTE].into_iter().enumerate() {
        let (company, admins) = admins(&t, PARALLEL).await;
        // Admin i demotes (or removes) admin i+1: a ring, so every admin is someone's target.
        let results = race(PARALLEL, |i| {
            let (_, caller) = &admins[i];
            let (target, _) = &admins[(i + 1) % PARALLEL];
            call(
                &t,
                Some(caller.clone()),
                query,
                json!({ "c": company, "u": target }),
            )
        })
        .await;
        let succeeded = results.iter().filter(|r| r["errors"].is_null()).count();
        assert!(succeeded < PARALLEL, "round {round}");
        for r in results.iter().filter(|r| r["errors"].is_array()) {
            assert!(
                ["VALIDATION", "FORBIDDEN", "NOT_FOUND"].contains(&error_code(r)),
                "{r}"
            );
        }
        assert!(
            admin_count(&t, &company).await >= 1,
            "round {round}: the company lost its last admin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staff_demoting_every_admin_at_once_leaves_exactly_one() {
    let t = parallel_app().await;
    for round in 0..ROUNDS {
        let (company, admins) = admins(&t, PARALLEL).await;
        let staff = t.a.admin.clone();
        let results = race(PARALLEL, |i| {
            let query = if i % 2 == 0 { DEMOTE } else { REMOVE };
            call(
                &t,
                Some(staff.clone()),
                query,
                json!({ "c": company, "u": admins[i].0 }),
            )
        })
        .await;
        let refused: Vec<&Value> = results.iter().filter(|r| r["errors"].is_array()).collect();
        assert_eq!(refused.len(), 1, "round {round}: {refused:?}");
        assert_eq!(error_code(refused[0]), "VALIDATION");
        assert_eq!(admin_count(&t, &company).await, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_time_tokens_are_redeemed_exactly_once() {
    let t = parallel_app().await;
    let company = t
        .ok(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Once Inc\" }) { id } }",
            json!({}),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for round in 0..ROUNDS {
        // An invitation accepted by many at once makes one member.
        let email = format!("invitee{round}@once.test");
        t.ok(
            Some(&t.a.admin),
            "mutation($c: ID!, $e: String!) { inviteCompanyUser(companyId: $c, email: $e, roles: [\"buyer\"]) { id } }",
            json!({ "c": company, "e": email }),
        )
        .await;
        let token = crate::support::mailed_token(&t, "vectis.company.user_invited").await;
        let results = race(PARALLEL, |_| {
            call(
                &t,
                None,
                "mutation($t: String!) { acceptCompanyInvitation(token: $t, password: \"correct-horse-9\", firstName: \"I\", lastName: \"N\") { accessToken } }",
                json!({ "t": token.clone() }),
            )
        })
        .await;
        let accepted = results.iter().filter(|r| r["errors"].is_null()).count();
        assert_eq!(accepted, 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r["errors"].is_array()) {
            assert_eq!(error_code(r), "VALIDATION", "{r}");
        }

        // A password reset token redeemed by many at once sets one password.
        t.ok(
            Some(&t.a.storefront),
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": email }),
        )
        .await;
        let token =
            crate::support::mailed_token(&t, "vectis.account.password_reset_requested").await;
        let results = race(PARALLEL, |i| {
            call(
                &t,
                None,
                "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }",
                json!({ "t": token.clone(), "p": format!("parallel-password-{i}") }),
            )
        })
        .await;
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r["errors"].is_null())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let login = t
            .gql(
                Some(&t.a.storefront),
                "mutation($e: String!, $p: String!) { customerLogin(email: $e, password: $p) { accessToken } }",
                json!({ "e": email, "p": format!("parallel-password-{}", winners[0]) }),
            )
            .await;
        assert!(
            login["errors"].is_null(),
            "the winner's password is set: {login}"
        );
    }
    let members = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { companyUsers(companyId: $c) { customerId } }",
            json!({ "c": company }),
        )
        .await;
    assert_eq!(
        members["companyUsers"].as_array().unwrap().len(),
        ROUNDS,
        "one member per invitation"
    );
}

const PLACE_ID: &str =
    "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { __typename ... on Order { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submitted_order_is_placed_once() {
    let t = parallel_app().await;
    catalog(&t, 1, 10_000).await;
    for round in 0..ROUNDS {
        let (_, buyer) = crate::orders::b2b(
            &t,
            "NET30",
            None,
            &format!("buyer{round}@race.test"),
            "buyer",
        )
        .await;
        crate::orders::add(&t, &buyer, "S-0", 1).await;
        let version =
            t.ok(Some(&buyer), "{ cart { version } }", json!({})).await["cart"]["version"].clone();
        let input = json!({ "paymentMethod": "invoice", "shippingMethod": "standard", "expectedVersion": version });
        let results = race(PARALLEL, |_| {
            call(
                &t,
                Some(buyer.clone()),
                PLACE_ID,
                json!({ "i": input.clone() }),
            )
        })
        .await;
        let ids: std::collections::HashSet<String> = results
            .iter()
            .map(|r| {
                assert_eq!(r["data"]["placeOrder"]["__typename"], "Order", "{r}");
                r["data"]["placeOrder"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: one order for every caller");
        let mine = t
            .ok(
                Some(&buyer),
                "{ myOrders { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(mine["myOrders"]["edges"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_on_account_never_exceed_the_credit_limit() {
    let t = parallel_app().await;
    catalog(&t, 1, 10_000).await;
    // One order costs 100.00 + 19.00 VAT + shipping; the limit fits exactly five.
    let (company, first) =
        crate::orders::b2b(&t, "NET30", Some(1_000_000_000), "probe@race.test", "buyer").await;
    crate::orders::add(&t, &first, "S-0", 1).await;
    let probe = crate::orders::place(
        &t,
        &first,
        json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
    )
    .await;
    let cost = probe["totals"]["total"]["amount"].as_i64().unwrap();
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!, $l: Int64!) { updateCompany(id: $c, input: { settings: { creditLimit: { currency: \"EUR\", amount: $l } } }) { id } }",
        json!({ "c": company, "l": cost * 6 }),
    )
    .await;
    let mut buyers = Vec::new();
    for i in 0..PARALLEL {
        let b =
            crate::support::company_user(&t, &company, &format!("b{i}@race.test"), "buyer").await;
        crate::orders::add(&t, &b, "S-0", 1).await;
        buyers.push(b);
    }
    let input = json!({ "paymentMethod": "invoice", "shippingMethod": "standard" });
    let results = race(PARALLEL, |i| {
        call(
            &t,
            Some(buyers[i].clone()),
            PLACE_ID,
            json!({ "i": input.clone() }),
        )
    })
    .await;
    let placed = results
        .iter()
        .filter(|r| r["data"]["placeOrder"]["__typename"] == "Order")
        .count();
    let refused = results
        .iter()
        .filter(|r| r["data"]["placeOrder"]["__typename"] == "CreditLimitExceededError")
        .count();
    assert_eq!(placed, 5, "{results:?}");
    assert_eq!(refused, PARALLEL - 5);
    let available = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { company(id: $c) { effectiveSettings { availableCredit { amount } } } }",
            json!({ "c": company }),
        )
        .await["company"]["effectiveSettings"]["availableCredit"]["amount"]
        .as_i64()
        .unwrap();
    assert_eq!(available, 0, "six orders' worth reserved exactly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cancellations_of_one_order_cancel_it_once() {
    let t = parallel_app().await;
    catalog(&t, 1, 10_000).await;
    let (company, buyer) =
        crate::orders::b2b(&t, "NET30", Some(100_000_000), "c@race.test", "buyer").await;
    for round in 0..ROUNDS {
        crate::orders::add(&t, &buyer, "S-0", 1).await;
        let order = crate::orders::place(
            &t,
            &buyer,
            json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
        )
        .await;
        let id = order["id"].clone();
        let results = race(PARALLEL, |_| {
            call(
                &t,
                Some(buyer.clone()),
                "mutation($id: ID!) { cancelOrder(id: $id) { __typename } }",
                json!({ "id": id.clone() }),
            )
        })
        .await;
        let won = results
            .iter()
            .filter(|r| r["data"]["cancelOrder"]["__typename"] == "Order")
            .count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        let refused = results
            .iter()
            .filter(|r| r["data"]["cancelOrder"]["__typename"] == "TransitionError")
            .count();
        assert_eq!(refused, PARALLEL - 1, "the others get a TransitionError");
        assert!(results.iter().all(|r| r["errors"].is_null()), "{results:?}");
    }
    let available = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { company(id: $c) { effectiveSettings { availableCredit { amount } } } }",
            json!({ "c": company }),
        )
        .await["company"]["effectiveSettings"]["availableCredit"]["amount"]
        .as_i64()
        .unwrap();
    assert_eq!(
        available, 100_000_000,
        "every reservation released exactly once"
    );
}

async fn available_credit(t: &TestApp, company: &str) -> i64 {
    t.ok(
        Some(&t.a.admin),
        "query($c: ID!) { company(id: $c) { effectiveSettings { availableCredit { amount } } } }",
        json!({ "c": company }),
    )
    .await["company"]["effectiveSettings"]["availableCredit"]["amount"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_settled_by_many_at_once_is_paid_once() {
    let t = parallel_app().await;
    catalog(&t, 1, 10_000).await;
    let (company, buyer) =
        crate::orders::b2b(&t, "NET30", Some(100_000_000), "s@race.test", "buyer").await;
    for round in 0..ROUNDS {
        crate::orders::add(&t, &buyer, "S-0", 1).await;
        let order = crate::orders::place(
            &t,
            &buyer,
            json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
        )
        .await;
        let payment = t
            .ok(
                Some(&t.a.admin),
                "query($id: ID!) { order(id: $id) { payments { id } } }",
                json!({ "id": order["id"] }),
            )
            .await["order"]["payments"][0]["id"]
            .clone();
        let admin = t.a.admin.clone();
        let results = race(PARALLEL, |_| {
            call(
                &t,
                Some(admin.clone()),
                "mutation($p: ID!) { settlePayment(paymentId: $p) { __typename
                    ... on PaymentOperationError { code } } }",
                json!({ "p": payment.clone() }),
            )
        })
        .await;
        let settled = results
            .iter()
            .filter(|r| r["data"]["settlePayment"]["__typename"] == "Payment")
            .count();
        assert_eq!(settled, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|r| r["errors"].is_null()
                && (r["data"]["settlePayment"]["__typename"] == "Payment"
                    || r["data"]["settlePayment"]["code"] == "PAYMENT_NOT_SETTLEABLE")),
            "{results:?}"
        );
        let state = t
            .ok(
                Some(&t.a.admin),
                "query($id: ID!) { order(id: $id) { state history { to } } }",
                json!({ "id": order["id"] }),
            )
            .await["order"]
            .clone();
        assert_eq!(state["state"], "PaymentSettled");
        let settlements = state["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["to"] == "PaymentSettled")
            .count();
        assert_eq!(settlements, 1, "one transition recorded: {state}");
    }
    assert_eq!(
        available_credit(&t, &company).await,
        100_000_000,
        "every invoice's exposure dropped exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staff_releasing_a_held_order_at_once_release_it_once() {
    let mut config = fresh_config().await;
    config.database.max_connections = (PARALLEL + 4) as u32;
    config.strategies.order_process = vec!["default".into(), "credit-review".into()];
    config.strategies.options.insert(
        "order_process".into(),
        std::collections::BTreeMap::from([(
            "credit-review".into(),
            json!({ "thresholds": { "EUR": 1 } }),
        )]),
    );
    let t = Arc::new(TestApp::with_config(config).await);
    catalog(&t, 1, 10_000).await;
    let (_, buyer) =
        crate::orders::b2b(&t, "NET30", Some(100_000_000), "r@race.test", "buyer").await;
    for round in 0..ROUNDS {
        crate::orders::add(&t, &buyer, "S-0", 1).await;
        let order = crate::orders::place(
            &t,
            &buyer,
            json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
        )
        .await;
        assert_eq!(order["state"], "CreditReview", "{order}");
        let id = order["id"].clone();
        let admin = t.a.admin.clone();
        // Every caller releases the held order: one does, the others find it released.
        let results = race(PARALLEL, |_| {
            call(
                &t,
                Some(admin.clone()),
                "mutation($id: ID!) { r: transitionOrder(id: $id, state: \"Placed\") {
                    __typename ... on Order { state } ... on TransitionError { code } } }",
                json!({ "id": id.clone() }),
            )
        })
        .await;
        let won: Vec<_> = results
            .iter()
            .filter(|r| r["data"]["r"]["__typename"] == "Order")
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let refused = results
            .iter()
            .filter(|r| r["data"]["r"]["code"] == "INVALID_TRANSITION")
            .count();
        assert_eq!(refused, PARALLEL - 1, "{results:?}");
        let history = t
            .ok(
                Some(&t.a.admin),
                "query($id: ID!) { order(id: $id) { state history { from } } }",
                json!({ "id": id }),
            )
            .await["order"]
            .clone();
        let from_review = history["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["from"] == "CreditReview")
            .count();
        assert_eq!(from_review, 1, "left the review once: {history}");
        assert_eq!(history["state"], won[0]["data"]["r"]["state"]);
    }
}
