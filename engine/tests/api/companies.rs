use serde_json::{Value, json};
use vectis_engine::auth::{Caller, Permission, Principal, StaffRole};

use crate::support::{PASSWORD, TestApp, caller_of, customer_login, error_code, mailed_token};

const CREATE: &str = "mutation($input: CreateCompanyInput!) { createCompany(input: $input) { id name parentId
    effectiveSettings { paymentTerms taxExempt vatId creditLimit { amount currency } availableCredit { amount } } } }";
const LOCATION: &str = "mutation($c: ID!, $input: CompanyLocationInput!) { saveCompanyLocation(companyId: $c, input: $input) { id name countryCode } }";
const INVITE: &str = "mutation($c: ID!, $e: String!, $r: [String!]!, $l: [ID!] = []) { inviteCompanyUser(companyId: $c, email: $e, roles: $r, locationIds: $l) { id email roles } }";
const ACCEPT: &str = "mutation($t: String!, $p: String, $f: String, $l: String) { acceptCompanyInvitation(token: $t, password: $p, firstName: $f, lastName: $l) { accessToken viewer { kind companyRoles locationId } } }";

async fn company(t: &TestApp, caller: &Caller, input: Value) -> String {
    let data = t.ok(Some(caller), CREATE, json!({ "input": input })).await;
    data["createCompany"]["id"].as_str().unwrap().to_owned()
}

async fn location(t: &TestApp, caller: &Caller, company: &str, name: &str) -> String {
    let input = json!({ "name": name, "address": { "streetLine1": "Main St 1", "city": "Berlin", "postalCode": "10115", "countryCode": "DE" } });
    let data = t
        .ok(
            Some(caller),
            LOCATION,
            json!({ "c": company, "input": input }),
        )
        .await;
    data["saveCompanyLocation"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Invites `email` and accepts as a new account; returns the new user's caller.
async fn join(t: &TestApp, by: &Caller, company: &str, email: &str, roles: &[&str]) -> Caller {
    t.ok(
        Some(by),
        INVITE,
        json!({ "c": company, "e": email, "r": roles }),
    )
    .await;
    let token = mailed_token(t, "vectis.company.user_invited").await;
    let data = t
        .ok(
            None,
            ACCEPT,
            json!({ "t": token, "p": PASSWORD, "f": "Pat", "l": "Doe" }),
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

#[tokio::test]
async fn divisions_inherit_settings_unless_they_override_them() {
    let t = TestApp::new().await;
    let root = company(
        &t,
        &t.a.admin,
        json!({ "name": "Acme Construction", "settings": { "vatId": "DE 123 456 789", "paymentTerms": "NET30",
                 "creditLimit": { "currency": "EUR", "amount": 5000000000_i64 } } }),
    )
    .await;
    let division = company(
        &t,
        &t.a.admin,
        json!({ "name": "Acme North", "parentId": root }),
    )
    .await;
    let sub = company(&t, &t.a.admin, json!({ "name": "Acme North Depot", "parentId": division, "settings": { "paymentTerms": "NET60", "taxExempt": true } })).await;

    let q = "query($id: ID!) { company(id: $id) { name parent { name } children { name }
        effectiveSettings { paymentTerms taxExempt vatId creditLimit { amount } availableCredit { amount } } } }";
    let d = t.ok(Some(&t.a.admin), q, json!({ "id": division })).await;
    assert_eq!(d["company"]["parent"]["name"], "Acme Construction");
    assert_eq!(
        d["company"]["children"],
        json!([{ "name": "Acme North Depot" }])
    );
    let e = &d["company"]["effectiveSettings"];
    assert_eq!(e["paymentTerms"], "NET30");
    assert_eq!(e["vatId"], "DE123456789");
    assert_eq!(e["taxExempt"], false);
    assert_eq!(e["creditLimit"]["amount"], 5_000_000_000_i64);
    assert_eq!(e["availableCredit"]["amount"], 5_000_000_000_i64);
    let s = t.ok(Some(&t.a.admin), q, json!({ "id": sub })).await;
    assert_eq!(s["company"]["effectiveSettings"]["paymentTerms"], "NET60");
    assert_eq!(s["company"]["effectiveSettings"]["taxExempt"], true);

    // Clearing the override inherits again.
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateCompany(id: $id, input: { settings: { paymentTerms: null } }) { id } }",
        json!({ "id": sub }),
    )
    .await;
    let s = t.ok(Some(&t.a.admin), q, json!({ "id": sub })).await;
    assert_eq!(s["company"]["effectiveSettings"]["paymentTerms"], "NET30");
}

#[tokio::test]
async fn bad_company_input_is_rejected_and_changes_nothing() {
    let t = TestApp::new().await;
    let root = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let division = company(
        &t,
        &t.a.admin,
        json!({ "name": "Acme North", "parentId": root }),
    )
    .await;
    let before = t.outbox_count().await;
    for (input, field) in [
        (
            json!({ "name": "X", "settings": { "vatId": "DE12345678" } }),
            "vatId",
        ),
        (
            json!({ "name": "X", "settings": { "vatId": "US123456789" } }),
            "vatId",
        ),
        (
            json!({ "name": "X", "settings": { "vatId": "ATU1234567" } }),
            "vatId",
        ),
        (
            json!({ "name": "X", "settings": { "creditLimit": { "currency": "EUR", "amount": -1 } } }),
            "creditLimit",
        ),
        (
            json!({ "name": "X", "settings": { "creditLimit": { "currency": "ABC", "amount": 1 } } }),
            "creditLimit",
        ),
        (json!({ "name": " " }), "name"),
    ] {
        let r = t
            .gql(Some(&t.a.admin), CREATE, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&r), "VALIDATION", "{input}: {r}");
        assert_eq!(r["errors"][0]["extensions"]["details"]["field"], field);
    }
    let unknown_parent = t
        .gql(
            Some(&t.a.admin),
            CREATE,
            json!({ "input": { "name": "X", "parentId": "0190a0a0-0000-7000-8000-000000000000" } }),
        )
        .await;
    assert_eq!(error_code(&unknown_parent), "NOT_FOUND");

    let mv =
        "mutation($id: ID!, $p: ID) { updateCompany(id: $id, input: { parentId: $p }) { id } }";
    let cycle = t
        .gql(Some(&t.a.admin), mv, json!({ "id": root, "p": division }))
        .await;
    assert_eq!(error_code(&cycle), "VALIDATION");
    assert_eq!(
        cycle["errors"][0]["extensions"]["details"]["field"],
        "parentId"
    );
    let selfish = t
        .gql(Some(&t.a.admin), mv, json!({ "id": root, "p": root }))
        .await;
    assert_eq!(error_code(&selfish), "VALIDATION");
    assert_eq!(t.outbox_count().await, before);

    // A valid move: the division becomes a root and takes its subtree along.
    t.ok(Some(&t.a.admin), mv, json!({ "id": division, "p": null }))
        .await;
    let d = t
        .ok(
            Some(&t.a.admin),
            "query($id: ID!) { company(id: $id) { parentId } }",
            json!({ "id": division }),
        )
        .await;
    assert_eq!(d["company"]["parentId"], Value::Null);
}

#[tokio::test]
async fn invitations_make_company_users_who_act_in_a_location() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let site = location(&t, &t.a.admin, &acme, "Berlin site").await;
    let admin = join(&t, &t.a.admin, &acme, "admin@acme.test", &["admin"]).await;
    let Principal::Customer {
        membership: Some(m),
        ..
    } = &admin.principal
    else {
        panic!("company user")
    };
    assert_eq!(m.location_id.map(|l| l.to_string()), Some(site.clone()));

    // The company admin invites a buyer, restricted to the site.
    t.ok(
        Some(&admin),
        INVITE,
        json!({ "c": acme, "e": "buyer@acme.test", "r": ["buyer"], "l": [site] }),
    )
    .await;
    let token = mailed_token(&t, "vectis.company.user_invited").await;
    let missing_password = t.gql(None, ACCEPT, json!({ "t": token })).await;
    assert_eq!(error_code(&missing_password), "VALIDATION");
    let data = t
        .ok(
            None,
            ACCEPT,
            json!({ "t": token, "p": PASSWORD, "f": "Bea", "l": "Buyer" }),
        )
        .await;
    assert_eq!(
        data["acceptCompanyInvitation"]["viewer"]["companyRoles"],
        json!(["buyer"])
    );
    let used = t
        .gql(None, ACCEPT, json!({ "t": token, "p": PASSWORD }))
        .await;
    assert_eq!(error_code(&used), "VALIDATION");
    let forged = t
        .gql(
            None,
            ACCEPT,
            json!({ "t": "0190a0a0000070008000000000000000.nope", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&forged), "VALIDATION");

    let buyer = customer_login(&t, &t.a.storefront, "buyer@acme.test", PASSWORD).await;
    let mine = t
        .ok(
            Some(&buyer),
            "{ me { companyPermissions company { name locations { name } } } myCompany { name } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["me"]["company"]["name"], "Acme");
    assert_eq!(mine["myCompany"]["name"], "Acme");
    assert_eq!(
        mine["me"]["companyPermissions"],
        json!(["VIEW_COMPANY", "PLACE_ORDERS"])
    );
    // A buyer cannot manage users or locations.
    let r = t
        .gql(
            Some(&buyer),
            INVITE,
            json!({ "c": acme, "e": "x@acme.test", "r": ["buyer"] }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t
        .gql(
            Some(&buyer),
            "query($c: ID!) { company(id: $c) { users { customerId } } }",
            json!({ "c": acme }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let users = t
        .ok(
            Some(&admin),
            "query($c: ID!) { company(id: $c) { users { roles customer { email } } } }",
            json!({ "c": acme }),
        )
        .await;
    assert_eq!(users["company"]["users"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_last_admin_stays_an_admin() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let admin = join(&t, &t.a.admin, &acme, "admin@acme.test", &["admin"]).await;
    let admin_id = admin.actor().unwrap().to_string();
    let update = "mutation($c: ID!, $u: ID!, $r: [String!]) { updateCompanyUser(companyId: $c, customerId: $u, input: { roles: $r }) { roles } }";
    let r = t
        .gql(
            Some(&admin),
            update,
            json!({ "c": acme, "u": admin_id, "r": ["buyer"] }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let remove = "mutation($c: ID!, $u: ID!) { removeCompanyUser(companyId: $c, customerId: $u) }";
    let r = t
        .gql(
            Some(&t.a.admin),
            remove,
            json!({ "c": acme, "u": admin_id }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let unknown_role = t
        .gql(
            Some(&admin),
            update,
            json!({ "c": acme, "u": admin_id, "r": ["admin", "overlord"] }),
        )
        .await;
    assert_eq!(error_code(&unknown_role), "VALIDATION");

    // With a second admin the first may step down, and custom roles work.
    let second = join(&t, &admin, &acme, "second@acme.test", &["admin"]).await;
    t.ok(
        Some(&second),
        "mutation($c: ID!) { createCompanyRole(companyId: $c, code: \"purchaser\", name: \"Purchaser\", permissions: [VIEW_COMPANY, PLACE_ORDERS]) { code } }",
        json!({ "c": acme }),
    )
    .await;
    let data = t
        .ok(
            Some(&second),
            update,
            json!({ "c": acme, "u": admin_id, "r": ["purchaser"] }),
        )
        .await;
    assert_eq!(data["updateCompanyUser"]["roles"], json!(["purchaser"]));
    let limit = "mutation($c: ID!, $u: ID!) { updateCompanyUser(companyId: $c, customerId: $u, input: { spendingLimit: { currency: \"EUR\", amount: 250000 } }) { spendingLimit { amount currency } } }";
    let data = t
        .ok(Some(&second), limit, json!({ "c": acme, "u": admin_id }))
        .await;
    assert_eq!(
        data["updateCompanyUser"]["spendingLimit"],
        json!({ "amount": 250000, "currency": "EUR" })
    );
    let relogged = customer_login(&t, &t.a.storefront, "admin@acme.test", PASSWORD).await;
    assert_eq!(
        relogged.membership().unwrap().roles,
        vec!["purchaser".to_owned()]
    );
}

#[tokio::test]
async fn a_buyer_of_one_company_cannot_touch_another() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let globex = company(&t, &t.a.admin, json!({ "name": "Globex" })).await;
    let globex_site = location(&t, &t.a.admin, &globex, "Globex HQ").await;
    let acme_admin = join(&t, &t.a.admin, &acme, "admin@acme.test", &["admin"]).await;
    let globex_admin = join(&t, &t.a.admin, &globex, "admin@globex.test", &["admin"]).await;
    let globex_admin_id = globex_admin.actor().unwrap().to_string();
    let before = t.outbox_count().await;

    let attempts: Vec<(&str, Value)> = vec![
        (
            "query($c: ID!) { company(id: $c) { name } }",
            json!({ "c": globex }),
        ),
        (
            LOCATION,
            json!({ "c": globex, "input": { "name": "Mine now", "address": { "streetLine1": "x", "city": "x", "postalCode": "1", "countryCode": "DE" } } }),
        ),
        (
            INVITE,
            json!({ "c": globex, "e": "spy@acme.test", "r": ["admin"] }),
        ),
        (
            "mutation($c: ID!, $u: ID!) { removeCompanyUser(companyId: $c, customerId: $u) }",
            json!({ "c": globex, "u": globex_admin_id }),
        ),
        (
            "mutation($c: ID!, $u: ID!) { updateCompanyUser(companyId: $c, customerId: $u, input: { roles: [\"viewer\"] }) { roles } }",
            json!({ "c": globex, "u": globex_admin_id }),
        ),
        (
            "mutation($c: ID!) { switchCompanyContext(companyId: $c) { accessToken } }",
            json!({ "c": globex }),
        ),
        (
            "mutation($c: ID!, $l: ID) { switchCompanyContext(companyId: $c, locationId: $l) { accessToken } }",
            json!({ "c": acme, "l": globex_site }),
        ),
    ];
    for (query, vars) in attempts {
        let r = t.gql(Some(&acme_admin), query, vars).await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{query}: {r}");
    }
    assert_eq!(t.outbox_count().await, before);
    let list = t
        .gql(Some(&acme_admin), "{ companies { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&list), "FORBIDDEN");
}

#[tokio::test]
async fn sales_reps_see_assigned_companies_and_act_for_their_users() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let division = company(
        &t,
        &t.a.admin,
        json!({ "name": "Acme South", "parentId": acme }),
    )
    .await;
    let globex = company(&t, &t.a.admin, json!({ "name": "Globex" })).await;
    let buyer = join(&t, &t.a.admin, &division, "buyer@acme.test", &["buyer"]).await;
    let buyer_id = buyer.actor().unwrap();
    let rep = t
        .app
        .services
        .auth
        .create_staff(
            t.a.tenant.id,
            Some(&t.a.admin),
            "rep@vectis.test",
            PASSWORD,
            "Rep",
            &[StaffRole::SalesRep],
        )
        .await
        .unwrap();
    let assign = "mutation($c: ID!, $s: ID!) { assignSalesRep(companyId: $c, staffUserId: $s) { salesRepIds } }";
    let data = t
        .ok(
            Some(&t.a.admin),
            assign,
            json!({ "c": acme, "s": rep.id.to_string() }),
        )
        .await;
    assert_eq!(
        data["assignSalesRep"]["salesRepIds"],
        json!([rep.id.to_string()])
    );
    let stranger = t
        .gql(
            Some(&t.a.admin),
            assign,
            json!({ "c": acme, "s": "0190a0a0-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(error_code(&stranger), "NOT_FOUND");

    let rep_caller = Caller {
        tenant: t.a.tenant.id,
        principal: Principal::Staff {
            id: rep.id,
            permissions: rep.permissions(),
        },
    };
    let list = t
        .ok(
            Some(&rep_caller),
            "{ companies { totalCount edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["companies"]["totalCount"], 2,
        "Acme and its division: {list}"
    );
    let other = t
        .gql(
            Some(&rep_caller),
            "query($c: ID!) { company(id: $c) { name } }",
            json!({ "c": globex }),
        )
        .await;
    assert_eq!(error_code(&other), "NOT_FOUND");
    let write = t
        .gql(
            Some(&rep_caller),
            "mutation($c: ID!) { updateCompany(id: $c, input: { name: \"X\" }) { id } }",
            json!({ "c": acme }),
        )
        .await;
    assert_eq!(error_code(&write), "FORBIDDEN");

    let imp = "mutation($c: ID!, $u: ID!) { impersonateCompanyUser(companyId: $c, customerId: $u) { accessToken viewer { actingStaffId } } }";
    let data = t
        .ok(
            Some(&rep_caller),
            imp,
            json!({ "c": division, "u": buyer_id.to_string() }),
        )
        .await;
    assert_eq!(
        data["impersonateCompanyUser"]["viewer"]["actingStaffId"],
        rep.id.to_string()
    );
    let acting = caller_of(
        &t,
        data["impersonateCompanyUser"]["accessToken"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(acting.acting_staff(), Some(rep.id));
    // What the rep does as the buyer records both.
    t.ok(
        Some(&acting),
        "mutation { saveAddress(input: { fullName: \"B\", address: { streetLine1: \"x\", city: \"y\", postalCode: \"1\", countryCode: \"DE\" } }) { id } }",
        json!({}),
    )
    .await;
    let tx = t
        .app
        .db()
        .read(vectis_engine::db::Scope::System)
        .await
        .unwrap();
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let event = vectis_engine::events::entity::Entity::find()
        .filter(vectis_engine::events::entity::Column::EventType.eq("vectis.account.address_saved"))
        .one(&tx)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(event.actor_id, Some(buyer_id));
    assert_eq!(event.acting_staff_id, Some(rep.id));

    let not_assigned = t
        .gql(
            Some(&rep_caller),
            imp,
            json!({ "c": globex, "u": buyer_id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&not_assigned), "NOT_FOUND");
    let plain_staff = t.a.staff(&[Permission::CompanyRead]);
    let denied = t
        .gql(
            Some(&plain_staff),
            imp,
            json!({ "c": division, "u": buyer_id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
}

#[tokio::test]
async fn expired_invitations_are_refused() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    t.ok(
        Some(&t.a.admin),
        INVITE,
        json!({ "c": acme, "e": "late@acme.test", "r": ["buyer"] }),
    )
    .await;
    let token = mailed_token(&t, "vectis.company.user_invited").await;
    let tx = t
        .app
        .db()
        .write(vectis_engine::db::Scope::System)
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    tx.execute_raw(Statement::from_sql_and_values(
        t.app.db().backend(),
        if t.app.db().backend() == sea_orm::DbBackend::Postgres {
            "UPDATE company_invitations SET expires_at = $1"
        } else {
            "UPDATE company_invitations SET expires_at = ?"
        },
        [chrono::Utc::now()
            .checked_sub_signed(chrono::Duration::days(1))
            .unwrap()
            .into()],
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let r = t
        .gql(
            None,
            ACCEPT,
            json!({ "t": token, "p": PASSWORD, "f": "L", "l": "Ate" }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM customers").await, 0);
}

#[tokio::test]
async fn division_users_see_their_division_not_the_parent() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    let north = company(
        &t,
        &t.a.admin,
        json!({ "name": "Acme North", "parentId": acme }),
    )
    .await;
    let buyer = join(&t, &t.a.admin, &north, "north@acme.test", &["admin"]).await;
    let data = t
        .ok(
            Some(&buyer),
            "{ myCompany { name parent { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["myCompany"],
        json!({ "name": "Acme North", "parent": null })
    );
    let r = t
        .gql(
            Some(&buyer),
            "query($c: ID!) { company(id: $c) { name } }",
            json!({ "c": acme }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let root_admin = join(&t, &t.a.admin, &acme, "root@acme.test", &["admin"]).await;
    let data = t
        .ok(
            Some(&root_admin),
            "query($c: ID!) { company(id: $c) { name parent { name } } }",
            json!({ "c": north }),
        )
        .await;
    assert_eq!(data["company"]["parent"]["name"], "Acme");
}

#[tokio::test]
async fn customer_sessions_refresh_with_current_roles() {
    let t = TestApp::new().await;
    let acme = company(&t, &t.a.admin, json!({ "name": "Acme" })).await;
    join(&t, &t.a.admin, &acme, "admin@acme.test", &["admin"]).await;
    let buyer = join(&t, &t.a.admin, &acme, "buyer@acme.test", &["buyer"]).await;
    let login = t
        .ok(Some(&t.a.storefront), "mutation { customerLogin(email: \"buyer@acme.test\", password: \"correct-horse-9\") { refreshToken } }", json!({}))
        .await;
    let refresh = login["customerLogin"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = "mutation($c: ID!, $u: ID!) { updateCompanyUser(companyId: $c, customerId: $u, input: { roles: [\"approver\"] }) { roles } }";
    t.ok(
        Some(&t.a.admin),
        update,
        json!({ "c": acme, "u": buyer.actor().unwrap().to_string() }),
    )
    .await;
    let rotated = t
        .ok(None, "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken viewer { kind companyRoles } } }", json!({ "t": refresh }))
        .await;
    assert_eq!(rotated["refreshToken"]["viewer"]["kind"], "CUSTOMER");
    assert_eq!(
        rotated["refreshToken"]["viewer"]["companyRoles"],
        json!(["approver"])
    );
    let reuse = t
        .gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }",
            json!({ "t": refresh }),
        )
        .await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_company_page_runs_the_same_statements_for_3_and_12_companies() {
    let t = TestApp::new().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = company(&t, &t.a.admin, json!({ "name": format!("Company {i:02}") })).await;
        location(&t, &t.a.admin, &id, "Site").await;
        join(
            &t,
            &t.a.admin,
            &id,
            &format!("admin{i}@example.test"),
            &["admin"],
        )
        .await;
        ids.push(id);
    }
    let q = "query($n: Int!) { companies(first: $n) { edges { node { name locations { name } users { roles customer { email } } } } } }";
    let count = |n: i64| {
        let t = &t;
        async move {
            let before = t.statements();
            let data = t.ok(Some(&t.a.admin), q, json!({ "n": n })).await;
            assert_eq!(
                data["companies"]["edges"].as_array().unwrap().len() as i64,
                n
            );
            assert_eq!(
                data["companies"]["edges"][0]["node"]["users"][0]["roles"],
                json!(["admin"])
            );
            t.statements() - before
        }
    };
    let small = count(3).await;
    let large = count(12).await;
    assert_eq!(small, large);
}
