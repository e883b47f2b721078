//! Permissions never grow by themselves: a principal grants only what it holds, commercial
//! terms are the merchant's, and authorisation reads current state rather than token claims.

use serde_json::{Value, json};
use vectis_engine::auth::{Caller, Permission, Principal, StaffRole};

use crate::cart::catalog;
use crate::support::{PASSWORD, TestApp, caller_of, company_user, error_code, mailed_token};

const LOCATION: &str = "mutation($c: ID!, $id: ID, $input: CompanyLocationInput!) {
    saveCompanyLocation(companyId: $c, id: $id, input: $input) { id name } }";
const INVITE: &str = "mutation($c: ID!, $e: String!, $r: [String!]!) { inviteCompanyUser(companyId: $c, email: $e, roles: $r) { id } }";
const ACCEPT: &str = "mutation($t: String!) { acceptCompanyInvitation(token: $t, password: \"correct-horse-9\", firstName: \"N\", lastName: \"N\") { accessToken } }";
const UPDATE_USER: &str = "mutation($c: ID!, $u: ID!, $input: UpdateCompanyUserInput!) { updateCompanyUser(companyId: $c, customerId: $u, input: $input) { roles } }";
const REMOVE_USER: &str =
    "mutation($c: ID!, $u: ID!) { removeCompanyUser(companyId: $c, customerId: $u) }";
const CREATE_ROLE: &str = "mutation($c: ID!, $code: String!, $p: [CompanyPermission!]!) { createCompanyRole(companyId: $c, code: $code, name: \"Role\", permissions: $p) { code } }";

async fn company(t: &TestApp, name: &str) -> String {
    t.ok(
        Some(&t.a.admin),
        "mutation($n: String!) { createCompany(input: { name: $n }) { id } }",
        json!({ "n": name }),
    )
    .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn address(country: &str) -> Value {
    json!({ "streetLine1": "Main St 1", "city": "City", "postalCode": "1010", "countryCode": country })
}

fn id_of(caller: &Caller) -> String {
    caller.actor().unwrap().to_string()
}

async fn roles_of(t: &TestApp, company: &str, user: &str) -> Value {
    let users = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { companyUsers(companyId: $c) { customerId roles } }",
            json!({ "c": company }),
        )
        .await;
    users["companyUsers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["customerId"] == user)
        .map(|u| u["roles"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn company_admins_cannot_set_their_own_commercial_terms() {
    let t = TestApp::new().await;
    catalog(&t, 1, 10_000).await;
    let acme = company(&t, "Acme").await;
    let admin = company_user(&t, &acme, "admin@acme.test", "admin").await;
    let buyer = company_user(&t, &acme, "buyer@acme.test", "buyer").await;
    let berlin = t
        .ok(
            Some(&admin),
            LOCATION,
            json!({ "c": acme, "input": { "name": "Berlin", "address": address("DE") } }),
        )
        .await["saveCompanyLocation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let add = t
        .ok(
            Some(&buyer),
            "mutation { addCartLines(lines: [{ sku: \"S-0\", quantity: 1 }]) { cart { totals { tax { amount } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        add["addCartLines"]["cart"]["totals"]["tax"]["amount"], 1_900,
        "German VAT"
    );
    let before = t.outbox_count().await;
    for terms in [
        json!({ "taxExempt": true }),
        json!({ "paymentTerms": "NET60" }),
        json!({ "vatId": "ATU13585627" }),
    ] {
        let mut input = json!({ "name": "Berlin", "address": address("DE") });
        input
            .as_object_mut()
            .unwrap()
            .extend(terms.as_object().unwrap().clone());
        for id in [Some(berlin.clone()), None] {
            let r = t
                .gql(
                    Some(&admin),
                    LOCATION,
                    json!({ "c": acme, "id": id, "input": input }),
                )
                .await;
            assert_eq!(error_code(&r), "FORBIDDEN", "{terms}: {r}");
        }
    }
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    // The buyer's cart is still taxed.
    let cart = t
        .ok(
            Some(&buyer),
            "mutation { addCartLines(lines: [{ sku: \"S-0\", quantity: 1 }]) { cart { totals { tax { amount } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        cart["addCartLines"]["cart"]["totals"]["tax"]["amount"],
        3_800
    );

    // Staff set the terms; the company admin can still rename the location without losing them.
    t.ok(
        Some(&t.a.admin),
        LOCATION,
        json!({ "c": acme, "id": berlin, "input": { "name": "Berlin", "address": address("DE"), "paymentTerms": "NET60" } }),
    )
    .await;
    t.ok(
        Some(&admin),
        LOCATION,
        json!({ "c": acme, "id": berlin, "input": { "name": "Berlin HQ", "address": address("DE") } }),
    )
    .await;
    let locations = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { company(id: $c) { locations { name paymentTerms } } }",
            json!({ "c": acme }),
        )
        .await;
    assert_eq!(
        locations["company"]["locations"],
        json!([{ "name": "Berlin HQ", "paymentTerms": "NET60" }])
    );
}

#[tokio::test]
async fn manage_users_grants_only_what_its_holder_has() {
    let t = TestApp::new().await;
    let acme = company(&t, "Acme").await;
    let admin = company_user(&t, &acme, "admin@acme.test", "admin").await;
    t.ok(
        Some(&t.a.admin),
        CREATE_ROLE,
        json!({ "c": acme, "code": "people", "p": ["VIEW_COMPANY", "VIEW_ORDERS", "MANAGE_USERS"] }),
    )
    .await;
    let manager = company_user(&t, &acme, "people@acme.test", "people").await;
    let viewer = company_user(&t, &acme, "viewer@acme.test", "viewer").await;
    let before = t.outbox_count().await;

    for (target, roles) in [(&manager, json!(["admin"])), (&viewer, json!(["buyer"]))] {
        let r = t
            .gql(
                Some(&manager),
                UPDATE_USER,
                json!({ "c": acme, "u": id_of(target), "input": { "roles": roles } }),
            )
            .await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    let r = t
        .gql(
            Some(&manager),
            INVITE,
            json!({ "c": acme, "e": "new@acme.test", "r": ["admin"] }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = t
        .gql(
            Some(&manager),
            CREATE_ROLE,
            json!({ "c": acme, "code": "everything", "p": ["VIEW_COMPANY", "MANAGE_USERS", "MANAGE_LOCATIONS", "PLACE_ORDERS", "APPROVE_ORDERS", "VIEW_ORDERS"] }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    // Nor can they demote or remove someone who holds more than they do.
    for (query, vars) in [
        (
            UPDATE_USER,
            json!({ "c": acme, "u": id_of(&admin), "input": { "roles": ["viewer"] } }),
        ),
        (REMOVE_USER, json!({ "c": acme, "u": id_of(&admin) })),
    ] {
        let r = t.gql(Some(&manager), query, vars).await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    }
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    assert_eq!(roles_of(&t, &acme, &id_of(&admin)).await, json!(["admin"]));

    // What they hold, they may grant.
    t.ok(
        Some(&manager),
        INVITE,
        json!({ "c": acme, "e": "new@acme.test", "r": ["viewer"] }),
    )
    .await;
    t.ok(
        Some(&manager),
        CREATE_ROLE,
        json!({ "c": acme, "code": "lookers", "p": ["VIEW_COMPANY"] }),
    )
    .await;
    t.ok(
        Some(&manager),
        UPDATE_USER,
        json!({ "c": acme, "u": id_of(&viewer), "input": { "roles": ["lookers"] } }),
    )
    .await;
}

#[tokio::test]
async fn demotion_and_removal_take_effect_at_once() {
    let t = TestApp::new().await;
    let acme = company(&t, "Acme").await;
    let keeper = company_user(&t, &acme, "keeper@acme.test", "admin").await;
    let demoted = company_user(&t, &acme, "demoted@acme.test", "admin").await;
    let removed = company_user(&t, &acme, "removed@acme.test", "admin").await;
    // An invitation each sent while still admin.
    t.ok(
        Some(&demoted),
        INVITE,
        json!({ "c": acme, "e": "friend1@acme.test", "r": ["admin"] }),
    )
    .await;
    let demoted_invite = mailed_token(&t, "vectis.company.user_invited").await;
    t.ok(
        Some(&removed),
        INVITE,
        json!({ "c": acme, "e": "friend2@acme.test", "r": ["buyer"] }),
    )
    .await;
    let removed_invite = mailed_token(&t, "vectis.company.user_invited").await;

    t.ok(
        Some(&keeper),
        UPDATE_USER,
        json!({ "c": acme, "u": id_of(&demoted), "input": { "roles": ["buyer"] } }),
    )
    .await;
    t.ok(
        Some(&keeper),
        REMOVE_USER,
        json!({ "c": acme, "u": id_of(&removed) }),
    )
    .await;
    let before = t.outbox_count().await;

    // The access tokens are still valid; what they claim no longer counts.
    let r = t
        .gql(
            Some(&demoted),
            UPDATE_USER,
            json!({ "c": acme, "u": id_of(&demoted), "input": { "roles": ["admin"] } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = t
        .gql(
            Some(&removed),
            INVITE,
            json!({ "c": acme, "e": "removed@acme.test", "r": ["admin"] }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    let me = t
        .ok(
            Some(&demoted),
            "{ me { companyRoles companyPermissions } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["companyRoles"], json!(["buyer"]));
    assert_eq!(t.outbox_count().await, before, "nothing changed");

    // Their invitations died with their rights.
    for token in [demoted_invite, removed_invite] {
        let r = t.gql(None, ACCEPT, json!({ "t": token })).await;
        assert_eq!(error_code(&r), "VALIDATION", "{r}");
    }
    assert_eq!(t.outbox_count().await, before, "nothing changed");
}

async fn rep(t: &TestApp, email: &str) -> Caller {
    let rep = t
        .app
        .services
        .auth
        .create_staff(
            t.a.tenant.id,
            Some(&t.a.admin),
            email,
            PASSWORD,
            "Rep",
            &[StaffRole::SalesRep],
        )
        .await
        .unwrap();
    Caller {
        tenant: t.a.tenant.id,
        principal: Principal::Staff {
            id: rep.id,
            permissions: rep.permissions(),
        },
    }
}

const IMPERSONATE: &str = "mutation($c: ID!, $u: ID!) { impersonateCompanyUser(companyId: $c, customerId: $u) { accessToken refreshToken } }";
const SWITCH: &str = "mutation($c: ID!) { switchCompanyContext(companyId: $c) { accessToken viewer { company { name } } } }";
const REFRESH: &str =
    "mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }";

#[tokio::test]
async fn impersonation_stays_within_the_reps_assignment_and_ends_with_it() {
    let t = TestApp::new().await;
    let acme = company(&t, "Acme").await;
    let globex = company(&t, "Globex").await;
    let buyer = company_user(&t, &acme, "buyer@acme.test", "buyer").await;
    // The buyer works for Globex too, which the rep does not look after.
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!, $u: ID!) { addCompanyUser(companyId: $c, customerId: $u, roles: [\"buyer\"]) { customerId } }",
        json!({ "c": globex, "u": id_of(&buyer) }),
    )
    .await;
    let rep = rep(&t, "rep@vectis.test").await;
    let assign =
        "mutation($c: ID!, $s: ID!) { assignSalesRep(companyId: $c, staffUserId: $s) { id } }";
    let unassign =
        "mutation($c: ID!, $s: ID!) { unassignSalesRep(companyId: $c, staffUserId: $s) { id } }";
    let rep_id = rep.staff_id().unwrap().to_string();
    t.ok(Some(&t.a.admin), assign, json!({ "c": acme, "s": rep_id }))
        .await;

    let session = t
        .ok(
            Some(&rep),
            IMPERSONATE,
            json!({ "c": acme, "u": id_of(&buyer) }),
        )
        .await["impersonateCompanyUser"]
        .clone();
    let acting = caller_of(&t, session["accessToken"].as_str().unwrap()).await;
    let r = t.gql(Some(&acting), SWITCH, json!({ "c": globex })).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    // The buyer themselves may switch.
    t.ok(Some(&buyer), SWITCH, json!({ "c": globex })).await;

    // Unassigned: the impersonation ends, access and refresh token alike.
    t.ok(
        Some(&t.a.admin),
        unassign,
        json!({ "c": acme, "s": rep_id }),
    )
    .await;
    let r = t.gql(Some(&acting), "{ me { kind } }", json!({})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let r = t
        .gql(None, REFRESH, json!({ "r": session["refreshToken"] }))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");

    // Assigned again, then disabled: the same.
    t.ok(Some(&t.a.admin), assign, json!({ "c": acme, "s": rep_id }))
        .await;
    let session = t
        .ok(
            Some(&rep),
            IMPERSONATE,
            json!({ "c": acme, "u": id_of(&buyer) }),
        )
        .await["impersonateCompanyUser"]
        .clone();
    let acting = caller_of(&t, session["accessToken"].as_str().unwrap()).await;
    t.ok(Some(&acting), "{ me { kind } }", json!({})).await;
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateStaffUser(id: $id, input: { active: false }) { id } }",
        json!({ "id": rep_id }),
    )
    .await;
    let r = t.gql(Some(&acting), "{ me { kind } }", json!({})).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    let r = t
        .gql(None, REFRESH, json!({ "r": session["refreshToken"] }))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
}

#[tokio::test]
async fn staff_and_api_keys_grant_only_what_they_hold() {
    let t = TestApp::new().await;
    let key = t
        .ok(
            Some(&t.a.admin),
            "mutation { createApiKey(input: { name: \"hr\", permissions: [STAFF_WRITE] }) { secret } }",
            json!({}),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = t
        .app
        .services
        .auth
        .authenticate(Some(&format!("Bearer {key}")), None)
        .await
        .unwrap()
        .unwrap();
    let create = "mutation($r: [StaffRole!]!) { createStaffUser(input: { email: \"new@vectis.test\", password: \"correct-horse-9\", displayName: \"N\", roles: $r }) { id } }";
    let before = t.outbox_count().await;
    for roles in [
        json!(["CATALOG_MANAGER"]),
        json!(["ADMIN"]),
        json!(["SALES_REP"]),
    ] {
        let r = t.gql(Some(&key), create, json!({ "r": roles })).await;
        assert_eq!(error_code(&r), "FORBIDDEN", "{roles}: {r}");
    }
    // A catalog manager with STAFF_WRITE may make catalog managers, not sales reps.
    let lead = t.a.staff(&[
        Permission::StaffWrite,
        Permission::CatalogRead,
        Permission::CatalogWrite,
    ]);
    let r = t
        .gql(Some(&lead), create, json!({ "r": ["SALES_REP"] }))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    let made = t
        .ok(Some(&lead), create, json!({ "r": ["CATALOG_MANAGER"] }))
        .await;
    let id = made["createStaffUser"]["id"].as_str().unwrap();
    // …and cannot promote them beyond that, nor change the super admin.
    let update = "mutation($id: ID!, $input: UpdateStaffUserInput!) { updateStaffUser(id: $id, input: $input) { roles } }";
    let r = t
        .gql(
            Some(&lead),
            update,
            json!({ "id": id, "input": { "roles": ["ADMIN"] } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
    let r = t
        .gql(
            Some(&lead),
            update,
            json!({ "id": t.a.admin.staff_id().unwrap().to_string(), "input": { "active": false } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
}

#[tokio::test]
async fn password_reset_and_logout_everywhere_end_every_session() {
    let t = TestApp::new().await;
    let acme = company(&t, "Acme").await;
    company_user(&t, &acme, "buyer@acme.test", "buyer").await;
    let login = "mutation { customerLogin(email: \"buyer@acme.test\", password: \"correct-horse-9\") { accessToken refreshToken } }";
    let first = t.ok(Some(&t.a.storefront), login, json!({})).await["customerLogin"].clone();
    let second = t.ok(Some(&t.a.storefront), login, json!({})).await["customerLogin"].clone();
    t.ok(
        Some(&t.a.storefront),
        "mutation { requestPasswordReset(email: \"buyer@acme.test\") }",
        json!({}),
    )
    .await;
    let token = mailed_token(&t, "vectis.account.password_reset_requested").await;
    t.ok(
        None,
        "mutation($t: String!) { resetPassword(token: $t, password: \"battery-staple-7\") }",
        json!({ "t": token }),
    )
    .await;
    for session in [&first, &second] {
        let r = t
            .gql(None, REFRESH, json!({ "r": session["refreshToken"] }))
            .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }

    let login = "mutation { customerLogin(email: \"buyer@acme.test\", password: \"battery-staple-7\") { accessToken refreshToken } }";
    let a = t.ok(Some(&t.a.storefront), login, json!({})).await["customerLogin"].clone();
    let b = t.ok(Some(&t.a.storefront), login, json!({})).await["customerLogin"].clone();
    let caller = caller_of(&t, a["accessToken"].as_str().unwrap()).await;
    let ended = t
        .ok(Some(&caller), "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(ended["logoutEverywhere"], 2);
    for session in [&a, &b] {
        let r = t
            .gql(None, REFRESH, json!({ "r": session["refreshToken"] }))
            .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
}

#[tokio::test]
async fn update_staff_user_refuses_bad_input_other_tenants_and_self_disabling() {
    let t = TestApp::new().await;
    let rep = rep(&t, "rep@vectis.test").await;
    let rep_id = rep.staff_id().unwrap().to_string();
    let update = "mutation($id: ID!, $input: UpdateStaffUserInput!) { updateStaffUser(id: $id, input: $input) { displayName roles } }";
    let other = t.tenant("globex").await;
    let before = t.outbox_count().await;
    for (id, input, code) in [
        (rep_id.clone(), json!({ "displayName": "  " }), "VALIDATION"),
        (
            "not-an-id".to_owned(),
            json!({ "active": false }),
            "VALIDATION",
        ),
        (
            t.a.admin.staff_id().unwrap().to_string(),
            json!({ "active": false }),
            "VALIDATION",
        ),
        (
            "0190a0a0-0000-7000-8000-000000000000".to_owned(),
            json!({ "active": false }),
            "NOT_FOUND",
        ),
    ] {
        let r = t
            .gql(
                Some(&t.a.admin),
                update,
                json!({ "id": id, "input": input }),
            )
            .await;
        assert_eq!(error_code(&r), code, "{input}: {r}");
    }
    // Another tenant's admin does not see this tenant's staff.
    let r = t
        .gql(
            Some(&other.admin),
            update,
            json!({ "id": rep_id, "input": { "active": false } }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "{r}");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    let ok = t
        .ok(
            Some(&t.a.admin),
            update,
            json!({ "id": rep_id, "input": { "displayName": "Rita Rep", "roles": ["SALES_REP", "CATALOG_MANAGER"] } }),
        )
        .await;
    assert_eq!(ok["updateStaffUser"]["displayName"], "Rita Rep");
    assert_eq!(
        crate::support::last_event(&t, "vectis.staff_user.updated").await["roles"],
        json!(["SALES_REP", "CATALOG_MANAGER"])
    );
    // API keys have no sessions to end.
    let key = Caller {
        tenant: t.a.tenant.id,
        principal: Principal::ApiKey {
            id: uuid::Uuid::now_v7(),
            permissions: vec![Permission::StaffWrite],
        },
    };
    let r = t
        .gql(Some(&key), "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
}
