//! B2B approvals: company rules in tiers of roles, spending limits per order and per month,
//! the approval flow of a held order, approvers' decisions and queue, and approvers acting at
//! once.

use serde_json::{Value, json};
use vectis_engine::auth::Caller;

use crate::concurrency::{PARALLEL, call, parallel_app, race};
use crate::orders::{add, available_credit, b2b, place};
use crate::support::{TestApp, error_code, last_event};

const SAVE_RULE: &str =
    "mutation($c: ID!, $i: ApprovalRuleInput!) { saveApprovalRule(companyId: $c, input: $i) {
    id name active condition { totalAbove { amount } } tiers { roles { role count } } } }";
const APPROVE: &str = "mutation($o: ID!) { approveOrder(orderId: $o, comment: \"ok\") { __typename
    ... on Order { state } ... on ApprovalError { code message } } }";
const REJECT: &str =
    "mutation($o: ID!, $c: String!) { rejectOrder(orderId: $o, comment: $c) { __typename
    ... on Order { state } ... on ApprovalError { code } } }";
const APPROVAL: &str = "query($id: ID!) { order(id: $id) { state approval { state
    requirements { ruleId reason openTier tiers { tier satisfied roles { role count approvals } } }
    decisions { approverId role tier decision comment } } } }";
const QUEUE: &str = "{ approvalsAwaitingMe { id state } }";

fn invoice() -> Value {
    json!({ "paymentMethod": "invoice", "shippingMethod": "standard" })
}

/// A company user of `company` with `roles`.
async fn member(t: &TestApp, company: &str, email: &str, roles: &[&str]) -> Caller {
    crate::support::company_user_with(t, company, email, roles).await
}

fn above(amount: i64, tiers: Value) -> Value {
    json!({ "name": format!("above {amount}"), "condition": { "totalAbove": { "currency": "EUR", "amount": amount } }, "tiers": tiers })
}

async fn queue(t: &TestApp, who: &Caller) -> Vec<Value> {
    t.ok(Some(who), QUEUE, json!({})).await["approvalsAwaitingMe"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_rule_in_two_tiers_holds_the_order_until_both_approve() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@tiers.test", "buyer").await;
    let approver = member(&t, &company, "approver@tiers.test", &["approver"]).await;
    let admin = member(&t, &company, "admin@tiers.test", &["admin"]).await;
    let both = member(&t, &company, "both@tiers.test", &["buyer", "approver"]).await;

    // Rules: only those with MANAGE_APPROVALS, with valid tiers and known roles.
    let rule = above(
        5_000,
        json!([{ "roles": [{ "role": "approver" }] }, { "roles": [{ "role": "admin" }] }]),
    );
    let r = t
        .gql(Some(&buyer), SAVE_RULE, json!({ "c": company, "i": rule }))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let other = t.tenant("globex").await;
    let r = t
        .gql(
            Some(&other.admin),
            SAVE_RULE,
            json!({ "c": company, "i": rule }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    for bad in [
        above(5_000, json!([])),
        above(5_000, json!([{ "roles": [] }])),
        above(
            5_000,
            json!([{ "roles": [{ "role": "approver", "count": 0 }] }]),
        ),
        above(-1, json!([{ "roles": [{ "role": "approver" }] }])),
    ] {
        let r = t
            .gql(Some(&admin), SAVE_RULE, json!({ "c": company, "i": bad }))
            .await;
        assert_eq!(error_code(&r), "VALIDATION", "{bad}: {r}");
    }
    let r = t
        .gql(
            Some(&admin),
            SAVE_RULE,
            json!({ "c": company, "i": above(5_000, json!([{ "roles": [{ "role": "nobody" }] }])) }),
        )
        .await;
    assert!(!r["errors"].is_null(), "unknown role: {r}");
    let saved = t
        .ok(Some(&admin), SAVE_RULE, json!({ "c": company, "i": rule }))
        .await;
    let rule_id = saved["saveApprovalRule"]["id"].clone();
    assert_eq!(
        saved["saveApprovalRule"]["tiers"][1]["roles"][0]["role"],
        "admin"
    );
    let listed = t
        .ok(
            Some(&buyer),
            "query($c: ID!) { approvalRules(companyId: $c) { id } }",
            json!({ "c": company }),
        )
        .await;
    assert_eq!(listed["approvalRules"][0]["id"], rule_id);

    // Below the threshold: placed at once. Above: held.
    add(&t, &buyer, "S-0", 2).await;
    assert_eq!(
        place(&t, &buyer, invoice()).await["state"],
        "PaymentAuthorized"
    );
    add(&t, &buyer, "S-0", 10).await;
    let held = place(&t, &buyer, invoice()).await;
    assert_eq!(held["state"], "PendingApproval", "{held}");
    let id = held["id"].clone();
    let requested = last_event(&t, "vectis.order.approval_requested").await;
    assert_eq!(requested["requirements"][0]["ruleId"], rule_id);

    // Tier 1 first: the admin is not asked yet, the buyer cannot approve at all.
    assert_eq!(queue(&t, &approver).await.len(), 1);
    assert!(queue(&t, &admin).await.is_empty(), "tier 2 is not open");
    let r = t.gql(Some(&buyer), QUEUE, json!({})).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t.ok(Some(&admin), APPROVE, json!({ "o": id })).await;
    assert_eq!(r["approveOrder"]["code"], "NOT_YOUR_TIER", "{r}");
    let r = t.gql(Some(&buyer), APPROVE, json!({ "o": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t.gql(Some(&other.admin), APPROVE, json!({ "o": id })).await;
    assert_eq!(
        error_code(&r),
        "FORBIDDEN",
        "staff decide through transitionOrder"
    );
    let (_, stranger) = b2b(&t, "NET30", None, "approver@globex.test", "approver").await;
    let r = t.gql(Some(&stranger), APPROVE, json!({ "o": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "another company's approver");

    let r = t.ok(Some(&approver), APPROVE, json!({ "o": id })).await;
    assert_eq!(r["approveOrder"]["state"], "PendingApproval", "{r}");
    let r = t.ok(Some(&approver), APPROVE, json!({ "o": id })).await;
    assert_eq!(r["approveOrder"]["code"], "ALREADY_DECIDED");
    let status = t.ok(Some(&buyer), APPROVAL, json!({ "id": id })).await;
    let requirement = &status["order"]["approval"]["requirements"][0];
    assert_eq!(requirement["openTier"], 2);
    assert_eq!(requirement["tiers"][0]["satisfied"], true);
    assert_eq!(
        status["order"]["approval"]["decisions"][0]["decision"],
        "approved"
    );
    assert_eq!(queue(&t, &admin).await.len(), 1);
    let r = t.ok(Some(&admin), APPROVE, json!({ "o": id })).await;
    assert_eq!(r["approveOrder"]["state"], "PaymentAuthorized", "{r}");
    let status = t.ok(Some(&buyer), APPROVAL, json!({ "id": id })).await;
    assert_eq!(status["order"]["approval"]["state"], "Approved");
    assert_eq!(
        status["order"]["approval"]["decisions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = t.ok(Some(&admin), APPROVE, json!({ "o": id })).await;
    assert_eq!(r["approveOrder"]["code"], "NOT_PENDING");

    // Nobody approves their own order.
    add(&t, &both, "S-0", 10).await;
    let own = place(&t, &both, invoice()).await;
    assert_eq!(own["state"], "PendingApproval");
    let r = t.ok(Some(&both), APPROVE, json!({ "o": own["id"] })).await;
    assert_eq!(r["approveOrder"]["code"], "SELF_APPROVAL");
    assert!(queue(&t, &both).await.is_empty(), "not in their own queue");
    let types = crate::contract::validate_outbox(&t).await;
    assert!(types.contains("vectis.order.approval_decided"), "{types:?}");
    assert!(
        types.contains("vectis.company.approval_rule_saved"),
        "{types:?}"
    );
}

#[tokio::test]
async fn a_rejection_cancels_the_order_releases_its_credit_and_it_can_be_ordered_again() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), "buyer@reject.test", "buyer").await;
    let approver = member(&t, &company, "approver@reject.test", &["approver"]).await;
    t.ok(
        Some(&t.a.admin),
        SAVE_RULE,
        json!({ "c": company, "i": above(0, json!([{ "roles": [{ "role": "approver" }] }])) }),
    )
    .await;
    add(&t, &buyer, "S-0", 3).await;
    let held = place(&t, &buyer, invoice()).await;
    assert_eq!(held["state"], "PendingApproval");
    let id = held["id"].clone();
    let total = held["totals"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(available_credit(&t, &company).await, 1_000_000 - total);
    let r = t
        .gql(Some(&approver), REJECT, json!({ "o": id, "c": " " }))
        .await;
    assert_eq!(error_code(&r), "VALIDATION", "a reason is needed");
    let r = t
        .ok(
            Some(&approver),
            REJECT,
            json!({ "o": id, "c": "over the site budget" }),
        )
        .await;
    assert_eq!(r["rejectOrder"]["state"], "Cancelled", "{r}");
    assert_eq!(available_credit(&t, &company).await, 1_000_000);
    let status = t.ok(Some(&buyer), APPROVAL, json!({ "id": id })).await;
    assert_eq!(status["order"]["approval"]["state"], "Rejected");
    assert_eq!(
        status["order"]["approval"]["decisions"][0]["comment"],
        "over the site budget"
    );
    let again = t
        .ok(
            Some(&buyer),
            "mutation($id: ID!) { reorder(orderId: $id) { applied cart { lineCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(again["reorder"]["cart"]["lineCount"], 1, "{again}");
}

#[tokio::test]
async fn spending_limits_per_order_and_per_month_need_approval() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@limits.test", "buyer").await;
    let approver = member(&t, &company, "approver@limits.test", &["approver"]).await;
    let customer = buyer.actor().unwrap().to_string();
    let update = "mutation($c: ID!, $u: ID!, $i: UpdateCompanyUserInput!) { updateCompanyUser(companyId: $c, customerId: $u, input: $i) {
        spendingLimit { amount } monthlySpendingLimit { amount } } }";
    let r = t
        .gql(
            Some(&buyer),
            update,
            json!({ "c": company, "u": customer, "i": { "monthlySpendingLimit": { "currency": "EUR", "amount": 1 } } }),
        )
        .await;
    assert!(!r["errors"].is_null(), "not one's own limit: {r}");
    let r = t
        .ok(
            Some(&t.a.admin),
            update,
            json!({ "c": company, "u": customer, "i": { "monthlySpendingLimit": { "currency": "EUR", "amount": 5_000 } } }),
        )
        .await;
    assert_eq!(
        r["updateCompanyUser"]["monthlySpendingLimit"]["amount"],
        5_000
    );
    // 1,190 + shipping per order: four fit in the month, the fifth does not.
    let mut states = Vec::new();
    for _ in 0..4 {
        add(&t, &buyer, "S-0", 1).await;
        states.push(place(&t, &buyer, invoice()).await["state"].clone());
    }
    let placed = states.iter().filter(|s| **s == "PaymentAuthorized").count();
    let held = states.iter().filter(|s| **s == "PendingApproval").count();
    assert_eq!(placed + held, 4);
    assert!(held >= 1, "the month's spend reached the limit: {states:?}");
    let queued = queue(&t, &approver).await;
    assert_eq!(queued.len(), held);
    let status = t
        .ok(Some(&buyer), APPROVAL, json!({ "id": queued[0]["id"] }))
        .await;
    let reason = status["order"]["approval"]["requirements"][0]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("monthly limit"), "{reason}");
    // A cancelled order no longer counts against the month.
    let first_held = queued[0]["id"].clone();
    t.ok(
        Some(&buyer),
        "mutation($id: ID!) { cancelOrder(id: $id) { __typename } }",
        json!({ "id": first_held }),
    )
    .await;

    // A per-order limit below one order's total holds every order.
    t.ok(
        Some(&t.a.admin),
        update,
        json!({ "c": company, "u": customer, "i": { "monthlySpendingLimit": null,
            "spendingLimit": { "currency": "EUR", "amount": 1_000 } } }),
    )
    .await;
    add(&t, &buyer, "S-0", 1).await;
    let order = place(&t, &buyer, invoice()).await;
    assert_eq!(order["state"], "PendingApproval");
    let status = t
        .ok(Some(&buyer), APPROVAL, json!({ "id": order["id"] }))
        .await;
    assert!(
        status["order"]["approval"]["requirements"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("order limit")
    );
    let r = t
        .ok(Some(&approver), APPROVE, json!({ "o": order["id"] }))
        .await;
    assert_eq!(r["approveOrder"]["state"], "PaymentAuthorized", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvers_acting_at_once_record_one_decision_each_and_place_the_order_once() {
    let t = parallel_app().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@race.test", "buyer").await;
    let mut approvers = Vec::new();
    for i in 0..PARALLEL {
        approvers.push(member(&t, &company, &format!("a{i}@race.test"), &["approver"]).await);
    }
    // Two approvers are needed in the one tier.
    t.ok(
        Some(&t.a.admin),
        SAVE_RULE,
        json!({ "c": company, "i": above(0, json!([{ "roles": [{ "role": "approver", "count": 2 }] }])) }),
    )
    .await;
    add(&t, &buyer, "S-0", 1).await;
    let held = place(&t, &buyer, invoice()).await;
    assert_eq!(held["state"], "PendingApproval");
    let id = held["id"].clone();
    let results = race(PARALLEL, |i| {
        call(&t, Some(approvers[i].clone()), APPROVE, json!({ "o": id }))
    })
    .await;
    let outcome = |r: &Value| {
        let out = &r["data"]["approveOrder"];
        out["state"]
            .as_str()
            .or(out["code"].as_str())
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    };
    let outcomes: Vec<String> = results.iter().map(outcome).collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "PendingApproval").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| *o == "PaymentAuthorized")
            .count(),
        1,
        "placed once: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| ["PendingApproval", "PaymentAuthorized", "NOT_PENDING"].contains(&o.as_str())),
        "{outcomes:?}"
    );
    let status = t.ok(Some(&buyer), APPROVAL, json!({ "id": id })).await;
    assert_eq!(status["order"]["state"], "PaymentAuthorized");
    assert_eq!(status["order"]["approval"]["state"], "Approved");
    assert_eq!(
        status["order"]["approval"]["decisions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM order_transitions WHERE to_state = 'Placed'")
            .await,
        1
    );
}

#[tokio::test]
async fn approvers_of_the_open_tier_are_emailed_when_an_order_waits_for_them() {
    let mailbox = std::env::temp_dir().join(format!("vectis-mailbox-{}", uuid::Uuid::now_v7()));
    let mut config = crate::support::fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.worker_poll_ms = 50;
    config.mail.mailbox_dir = mailbox.display().to_string();
    config.mail.link_base_url = "https://shop.example.com".into();
    let t = TestApp::with_config(config).await;
    let _runtime = vectis_engine::consumer::EventRuntime::for_engine(&t.app)
        .await
        .unwrap();
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@mail.test", "buyer").await;
    let first = member(&t, &company, "first@mail.test", &["approver"]).await;
    member(&t, &company, "second@mail.test", &["approver"]).await;
    member(&t, &company, "boss@mail.test", &["admin"]).await;
    t.ok(
        Some(&t.a.admin),
        SAVE_RULE,
        json!({ "c": company, "i": above(0, json!([{ "roles": [{ "role": "approver" }] }, { "roles": [{ "role": "admin" }] }])) }),
    )
    .await;
    add(&t, &buyer, "S-0", 1).await;
    let held = place(&t, &buyer, invoice()).await;
    assert_eq!(held["state"], "PendingApproval");
    let code = held["code"].as_str().unwrap().to_owned();
    let approvals = crate::streaming::eventually(30, "two approval mails", || async {
        let files: Vec<String> = std::fs::read_dir(&mailbox)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .filter(|f| f.contains("needs your approval"))
            .collect();
        (files.len() == 2).then_some(files)
    })
    .await;
    for to in ["first@mail.test", "second@mail.test"] {
        assert!(
            approvals.iter().any(|f| f.contains(&format!("To: {to}"))
                && f.contains(&format!("Subject: Order {code} needs your approval"))),
            "{to}"
        );
    }
    assert!(
        approvals
            .iter()
            .all(|f| !f.contains("boss@mail.test") && !f.contains("buyer@mail.test")),
        "only the open tier's approvers"
    );
    // Tier 1 approved: the admin of tier 2 is told.
    let r = t
        .ok(Some(&first), APPROVE, json!({ "o": held["id"] }))
        .await;
    assert_eq!(r["approveOrder"]["state"], "PendingApproval", "{r}");
    crate::streaming::eventually(30, "a mail to tier 2", || async {
        let files: Vec<String> = std::fs::read_dir(&mailbox)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .filter(|f| f.contains("needs your approval"))
            .collect();
        (files.len() == 3 && files.iter().any(|f| f.contains("To: boss@mail.test"))).then_some(())
    })
    .await;
    let types = crate::contract::validate_outbox(&t).await;
    assert!(
        types.contains("vectis.order.approval_tier_opened"),
        "{types:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_buyers_month_spend_stays_exact_when_their_orders_are_cancelled_at_once() {
    let t = parallel_app().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (_, buyer) = b2b(&t, "NET30", Some(100_000_000), "buyer@spend.test", "buyer").await;
    let mut ids = Vec::new();
    let mut spent = 0;
    for _ in 0..PARALLEL {
        add(&t, &buyer, "S-0", 1).await;
        let order = place(&t, &buyer, invoice()).await;
        spent += order["totals"]["total"]["amount"].as_i64().unwrap();
        ids.push(order["id"].clone());
    }
    let month = "SELECT CAST(SUM(amount) AS BIGINT) FROM member_spend";
    assert_eq!(t.scalar(month).await, spent, "every order counted");
    let results = race(PARALLEL, |i| {
        call(
            &t,
            Some(buyer.clone()),
            "mutation($id: ID!) { cancelOrder(id: $id) { __typename } }",
            json!({ "id": ids[i] }),
        )
    })
    .await;
    assert!(
        results
            .iter()
            .all(|r| r["data"]["cancelOrder"]["__typename"] == "Order"),
        "{results:?}"
    );
    assert_eq!(t.scalar(month).await, 0, "every cancellation given back");
}
