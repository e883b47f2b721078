//! Walks the whole schema: every mutation outside a short allowlist rejects anonymous callers
//! and callers that lack its permission, whatever its arguments.

use serde_json::{Map, Value, json};
use uuid::Uuid;
use vectis_engine::auth::{Caller, Principal};

use crate::support::{TestApp, error_code};

/// Mutations anyone may call (they prove identity themselves).
const PUBLIC: &[&str] = &[
    "login",
    "customerLogin",
    "refreshToken",
    "logout",
    "verifyCustomerEmail",
    "resetPassword",
    "acceptCompanyInvitation",
];
/// Mutations a storefront key alone may call.
/// (Carts belong to customers and storefront guests.)
const STOREFRONT: &[&str] = &[
    "registerCustomer",
    "requestPasswordReset",
    "addCartLines",
    "updateCartLines",
    "removeCartLines",
    "clearCart",
    "quickOrder",
    "applyCoupon",
    "removeCoupon",
    "setShippingAddress",
    "setShippingMethod",
];

const INTROSPECTION: &str = r#"{ __schema {
    mutationType { fields { name args { name type { ...T } } type { ...T } } }
    types { name kind enumValues { name } inputFields { name type { ...T } } }
} }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"#;

struct Schema {
    types: Map<String, Value>,
}

impl Schema {
    fn sample(&self, ty: &Value) -> Option<Value> {
        match ty["kind"].as_str()? {
            "NON_NULL" => self.sample(&ty["ofType"]),
            "LIST" => Some(json!([])),
            "SCALAR" => Some(match ty["name"].as_str()? {
                "ID" => json!(Uuid::now_v7().to_string()),
                "Int" | "Int64" => json!(1),
                "Boolean" => json!(false),
                "Float" => json!(1.0),
                _ => json!("sample-value-1"),
            }),
            "ENUM" => self.types[ty["name"].as_str()?]["enumValues"][0]["name"]
                .as_str()
                .map(|v| json!(v)),
            "INPUT_OBJECT" => {
                let def = &self.types[ty["name"].as_str()?];
                let mut obj = Map::new();
                for field in def["inputFields"].as_array()? {
                    if field["type"]["kind"] == "NON_NULL" {
                        obj.insert(
                            field["name"].as_str()?.to_owned(),
                            self.sample(&field["type"])?,
                        );
                    }
                }
                Some(Value::Object(obj))
            }
            _ => None,
        }
    }
}

fn named(ty: &Value) -> &Value {
    if ty["ofType"].is_object() {
        named(&ty["ofType"])
    } else {
        ty
    }
}

fn type_ref(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap_or_default() {
        "NON_NULL" => format!("{}!", type_ref(&ty["ofType"])),
        "LIST" => format!("[{}]", type_ref(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or_default().to_owned(),
    }
}

#[tokio::test]
async fn every_mutation_checks_its_caller() {
    let t = TestApp::new().await;
    let schema = t.ok(Some(&t.a.admin), INTROSPECTION, json!({})).await;
    let types: Map<String, Value> = schema["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ty| (ty["name"].as_str().unwrap().to_owned(), ty.clone()))
        .collect();
    let schema_info = Schema { types };
    let nobody = Caller {
        tenant: t.a.tenant.id,
        principal: Principal::Staff {
            id: Uuid::now_v7(),
            permissions: Vec::new(),
        },
    };
    let mutations = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap();
    assert!(mutations.len() >= 30, "{} mutations", mutations.len());
    let before = t.outbox_count().await;
    let mut checked = 0;
    for field in mutations {
        let name = field["name"].as_str().unwrap();
        let mut params = Vec::new();
        let mut args = Vec::new();
        let mut vars = Map::new();
        for arg in field["args"].as_array().unwrap() {
            let arg_name = arg["name"].as_str().unwrap();
            params.push(format!("${arg_name}: {}", type_ref(&arg["type"])));
            args.push(format!("{arg_name}: ${arg_name}"));
            if let Some(v) = schema_info.sample(&arg["type"]) {
                vars.insert(arg_name.to_owned(), v);
            }
        }
        let selection = match named(&field["type"])["kind"].as_str() {
            Some("OBJECT") => " { __typename }",
            _ => "",
        };
        let query = format!(
            "mutation{} {{ {name}{}{selection} }}",
            if params.is_empty() {
                String::new()
            } else {
                format!("({})", params.join(", "))
            },
            if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            },
        );
        let vars = Value::Object(vars);
        if PUBLIC.contains(&name) {
            continue;
        }
        checked += 1;
        let anonymous = t.gql(None, &query, vars.clone()).await;
        assert_eq!(
            error_code(&anonymous),
            "UNAUTHENTICATED",
            "{name} as anonymous: {anonymous}"
        );
        if STOREFRONT.contains(&name) {
            continue;
        }
        let storefront = t.gql(Some(&t.a.storefront), &query, vars.clone()).await;
        assert_eq!(
            error_code(&storefront),
            "UNAUTHENTICATED",
            "{name} as storefront: {storefront}"
        );
        let unprivileged = t.gql(Some(&nobody), &query, vars).await;
        assert_eq!(
            error_code(&unprivileged),
            "FORBIDDEN",
            "{name} without permissions: {unprivileged}"
        );
    }
    assert!(checked >= 25, "{checked}");
    assert_eq!(
        t.outbox_count().await,
        before,
        "no rejected call changed anything"
    );
}
