use serde_json::json;
use vectis_engine::auth::Permission;

use crate::support::{TestApp, caller_of, customer_login, error_code, last_event};

const REGISTER: &str = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id email emailVerified } }";

fn registration(email: &str, password: &str) -> serde_json::Value {
    json!({ "input": { "email": email, "password": password, "firstName": "Ada", "lastName": "Byron" } })
}

#[tokio::test]
async fn customers_register_verify_and_log_in() {
    let t = TestApp::new().await;
    let data = t
        .ok(
            Some(&t.a.storefront),
            REGISTER,
            registration("Ada@Example.com", "analytical-1"),
        )
        .await;
    assert_eq!(data["registerCustomer"]["email"], "ada@example.com");
    assert_eq!(data["registerCustomer"]["emailVerified"], false);

    let event = last_event(&t, "vectis.account.email_verification_requested").await;
    assert_eq!(event["email"], "ada@example.com");
    assert!(event.get("token").is_none(), "no secret in the event");
    let token =
        crate::support::mailed_token(&t, "vectis.account.email_verification_requested").await;
    let verified = t
        .ok(
            None,
            "mutation($t: String!) { verifyCustomerEmail(token: $t) { emailVerified } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(verified["verifyCustomerEmail"]["emailVerified"], true);
    let reuse = t
        .gql(
            None,
            "mutation($t: String!) { verifyCustomerEmail(token: $t) { emailVerified } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(error_code(&reuse), "VALIDATION");

    let me = customer_login(&t, &t.a.storefront, "ada@example.com", "analytical-1").await;
    let data = t
        .ok(
            Some(&me),
            "{ me { kind customer { email firstName } company { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["kind"], "CUSTOMER");
    assert_eq!(data["me"]["customer"]["firstName"], "Ada");
    assert_eq!(data["me"]["company"], serde_json::Value::Null);
}

#[tokio::test]
async fn bad_registrations_are_rejected_and_change_nothing() {
    let t = TestApp::new().await;
    t.ok(
        Some(&t.a.storefront),
        REGISTER,
        registration("ada@example.com", "analytical-1"),
    )
    .await;
    let before = t.scalar("SELECT COUNT(*) FROM customers").await;
    for (input, code, field) in [
        (
            registration("ADA@example.com", "analytical-2"),
            "CONFLICT",
            None,
        ),
        (
            registration("bob@example.com", "short1"),
            "VALIDATION",
            Some("password"),
        ),
        (
            registration("bob@example.com", "onlyletters"),
            "VALIDATION",
            Some("password"),
        ),
        (
            registration("not-an-email", "analytical-1"),
            "VALIDATION",
            Some("email"),
        ),
    ] {
        let r = t.gql(Some(&t.a.storefront), REGISTER, input.clone()).await;
        assert_eq!(error_code(&r), code, "{input}: {r}");
        if let Some(field) = field {
            assert_eq!(r["errors"][0]["extensions"]["details"]["field"], field);
        }
    }
    let anonymous = t
        .gql(
            None,
            REGISTER,
            registration("carl@example.com", "analytical-1"),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM customers").await, before);
    // The same email registers fine in another tenant.
    let b = t.tenant("globex").await;
    t.ok(
        Some(&b.storefront),
        REGISTER,
        registration("ada@example.com", "analytical-1"),
    )
    .await;
}

#[tokio::test]
async fn password_reset_works_once_and_reveals_nothing() {
    let t = TestApp::new().await;
    t.ok(
        Some(&t.a.storefront),
        REGISTER,
        registration("ada@example.com", "analytical-1"),
    )
    .await;
    let before = t.outbox_count().await;
    let unknown = t
        .ok(
            Some(&t.a.storefront),
            "mutation { requestPasswordReset(email: \"nobody@example.com\") }",
            json!({}),
        )
        .await;
    assert_eq!(unknown["requestPasswordReset"], true);
    assert_eq!(
        t.outbox_count().await,
        before,
        "no event for an unknown email"
    );
    t.ok(
        Some(&t.a.storefront),
        "mutation { requestPasswordReset(email: \"ada@example.com\") }",
        json!({}),
    )
    .await;
    let token = crate::support::mailed_token(&t, "vectis.account.password_reset_requested").await;
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }";
    let weak = t.gql(None, reset, json!({ "t": token, "p": "weak" })).await;
    assert_eq!(error_code(&weak), "VALIDATION");
    t.ok(
        None,
        reset,
        json!({ "t": token, "p": "difference-engine-2" }),
    )
    .await;
    let again = t
        .gql(
            None,
            reset,
            json!({ "t": token, "p": "difference-engine-3" }),
        )
        .await;
    assert_eq!(error_code(&again), "VALIDATION");
    let forged = t
        .gql(
            None,
            reset,
            json!({ "t": "0190a0a0000070008000000000000000.forged", "p": "difference-engine-3" }),
        )
        .await;
    assert_eq!(error_code(&forged), "VALIDATION");

    let old = t
        .gql(
            Some(&t.a.storefront),
            "mutation { customerLogin(email: \"ada@example.com\", password: \"analytical-1\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED");
    customer_login(
        &t,
        &t.a.storefront,
        "ada@example.com",
        "difference-engine-2",
    )
    .await;
}

#[tokio::test]
async fn the_address_book_belongs_to_its_customer() {
    let t = TestApp::new().await;
    t.ok(
        Some(&t.a.storefront),
        REGISTER,
        registration("ada@example.com", "analytical-1"),
    )
    .await;
    t.ok(
        Some(&t.a.storefront),
        REGISTER,
        registration("bob@example.com", "analytical-1"),
    )
    .await;
    let ada = customer_login(&t, &t.a.storefront, "ada@example.com", "analytical-1").await;
    let bob = customer_login(&t, &t.a.storefront, "bob@example.com", "analytical-1").await;
    let save = "mutation($id: ID, $input: AddressBookInput!) { saveAddress(id: $id, input: $input) { id defaultShipping defaultBilling countryCode } }";
    let address = |city: &str, country: &str| json!({ "fullName": "Ada Byron", "address": { "streetLine1": "1 Engine St", "city": city, "postalCode": "12345", "countryCode": country } });
    let first = t
        .ok(
            Some(&ada),
            save,
            json!({ "input": address("London", "gb") }),
        )
        .await;
    assert_eq!(
        first["saveAddress"]["defaultShipping"], true,
        "the first address is the default"
    );
    assert_eq!(first["saveAddress"]["countryCode"], "GB");
    let id = first["saveAddress"]["id"].as_str().unwrap().to_owned();
    let mut second_input = address("Paris", "FR");
    second_input["defaultShipping"] = json!(true);
    t.ok(Some(&ada), save, json!({ "input": second_input }))
        .await;
    let book = t
        .ok(
            Some(&ada),
            "{ me { customer { addresses { city defaultShipping defaultBilling } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        book["me"]["customer"]["addresses"],
        json!([{ "city": "London", "defaultShipping": false, "defaultBilling": true }, { "city": "Paris", "defaultShipping": true, "defaultBilling": false }])
    );

    let bad = t
        .gql(
            Some(&ada),
            save,
            json!({ "input": address("Nowhere", "XX") }),
        )
        .await;
    assert_eq!(error_code(&bad), "VALIDATION");
    assert_eq!(
        bad["errors"][0]["extensions"]["details"]["field"],
        "countryCode"
    );
    let stolen = t
        .gql(
            Some(&bob),
            save,
            json!({ "id": id, "input": address("Bobville", "GB") }),
        )
        .await;
    assert_eq!(error_code(&stolen), "NOT_FOUND");
    let stolen = t
        .gql(
            Some(&bob),
            "mutation($id: ID!) { deleteAddress(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&stolen), "NOT_FOUND");
    let staff = t
        .gql(
            Some(&t.a.admin),
            save,
            json!({ "input": address("X", "GB") }),
        )
        .await;
    assert_eq!(error_code(&staff), "FORBIDDEN");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM customer_addresses").await, 2);
    t.ok(
        Some(&ada),
        "mutation($id: ID!) { deleteAddress(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(t.scalar("SELECT COUNT(*) FROM customer_addresses").await, 1);
}

#[tokio::test]
async fn staff_manage_customer_groups_and_list_customers() {
    let t = TestApp::new().await;
    t.ok(
        Some(&t.a.storefront),
        REGISTER,
        registration("ada@example.com", "analytical-1"),
    )
    .await;
    let group = t
        .ok(Some(&t.a.admin), "mutation { createCustomerGroup(code: \"wholesale\", name: \"Wholesale\") { id code } }", json!({}))
        .await;
    let group_id = group["createCustomerGroup"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let duplicate = t
        .gql(
            Some(&t.a.admin),
            "mutation { createCustomerGroup(code: \"WHOLESALE\", name: \"Again\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
    let list = t
        .ok(
            Some(&t.a.admin),
            "{ customers(search: \"ADA\") { totalCount edges { node { id email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["customers"]["totalCount"], 1);
    let customer = list["customers"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = "mutation($c: ID!, $g: ID) { setCustomerGroup(customerId: $c, groupId: $g) { customerGroupId } }";
    let data = t
        .ok(
            Some(&t.a.admin),
            set,
            json!({ "c": customer, "g": group_id }),
        )
        .await;
    assert_eq!(
        data["setCustomerGroup"]["customerGroupId"],
        group_id.as_str()
    );
    let unknown = t
        .gql(
            Some(&t.a.admin),
            set,
            json!({ "c": customer, "g": "0190a0a0-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");

    let reader = t.a.staff(&[Permission::CatalogRead]);
    let denied = t
        .gql(Some(&reader), "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
    let other = t.tenant("globex").await;
    let foreign = t
        .gql(Some(&other.admin), set, json!({ "c": customer, "g": null }))
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let _ = caller_of;
}
