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
    "placeOrder",
    "reserveCartStock",
];

/// Mutations every logged-in principal may call about itself.
const SELF_SERVICE: &[&str] = &["logoutEverywhere"];

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
                "DateTime" => json!("2099-01-01T00:00:00Z"),
                "NaiveDate" => json!("2099-01-01"),
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
            Some("OBJECT" | "UNION") => " { __typename }",
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
        if SELF_SERVICE.contains(&name) {
            continue;
        }
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

/// Ids the grant walk fills in by argument name.
struct Targets {
    company: String,
    member: String,
    staff: String,
}

/// Enums whose values are rights.
const RIGHTS: &[&str] = &["Permission", "StaffRole", "CompanyPermission"];

impl Schema {
    /// An argument value that asks for as much as possible: every right of a list of rights,
    /// the `admin` role, and the ids of real targets; optional input fields that carry rights
    /// are filled too.
    fn greedy(&self, ty: &Value, name: &str, targets: &Targets) -> Option<Value> {
        match ty["kind"].as_str()? {
            "NON_NULL" => self.greedy(&ty["ofType"], name, targets),
            "LIST" => {
                let item = named(&ty["ofType"]);
                match (item["kind"].as_str()?, item["name"].as_str()?) {
                    ("ENUM", e) if RIGHTS.contains(&e) => Some(Value::Array(
                        self.types[e]["enumValues"]
                            .as_array()?
                            .iter()
                            .map(|v| v["name"].clone())
                            .collect(),
                    )),
                    ("SCALAR", "String") if name == "roles" => Some(json!(["admin"])),
                    _ => Some(json!([])),
                }
            }
            "SCALAR" if ty["name"] == "ID" => Some(json!(match name {
                "companyId" => targets.company.clone(),
                "customerId" => targets.member.clone(),
                "id" | "staffUserId" => targets.staff.clone(),
                _ => Uuid::now_v7().to_string(),
            })),
            "INPUT_OBJECT" => {
                let def = &self.types[ty["name"].as_str()?];
                let mut obj = Map::new();
                for field in def["inputFields"].as_array()? {
                    let field_name = field["name"].as_str()?;
                    let carries_rights = RIGHTS.contains(&named(&field["type"])["name"].as_str()?)
                        || field_name == "roles";
                    if field["type"]["kind"] == "NON_NULL" || carries_rights {
                        obj.insert(
                            field_name.to_owned(),
                            self.greedy(&field["type"], field_name, targets)?,
                        );
                    }
                }
                Some(Value::Object(obj))
            }
            _ => self.sample(ty),
        }
    }
}

/// Mutations that hand out rights.
fn grants_rights(schema: &Schema, field: &Value) -> bool {
    fn carries(schema: &Schema, ty: &Value, name: &str, depth: usize) -> bool {
        let n = named(ty);
        let type_name = n["name"].as_str().unwrap_or_default();
        if RIGHTS.contains(&type_name) || (name == "roles" && type_name == "String") {
            return true;
        }
        depth < 3
            && n["kind"] == "INPUT_OBJECT"
            && schema.types[type_name]["inputFields"]
                .as_array()
                .is_some_and(|fields| {
                    fields.iter().any(|f| {
                        carries(
                            schema,
                            &f["type"],
                            f["name"].as_str().unwrap_or_default(),
                            depth + 1,
                        )
                    })
                })
    }
    field["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| carries(schema, &a["type"], a["name"].as_str().unwrap(), 0))
}

#[tokio::test]
async fn no_principal_grants_what_it_does_not_hold() {
    use vectis_engine::auth::{Membership, Permission};
    let t = TestApp::new().await;
    let schema = t.ok(Some(&t.a.admin), INTROSPECTION, json!({})).await;
    let types: Map<String, Value> = schema["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ty| (ty["name"].as_str().unwrap().to_owned(), ty.clone()))
        .collect();
    let schema_info = Schema { types };
    // A company where one user may manage users but holds nothing else, and a viewer.
    let company = t
        .ok(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Acme\" }) { id } }",
            json!({}),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!) { createCompanyRole(companyId: $c, code: \"people\", name: \"People\", permissions: [VIEW_COMPANY, MANAGE_USERS]) { code } }",
        json!({ "c": company }),
    )
    .await;
    let manager = crate::support::company_user(&t, &company, "people@acme.test", "people").await;
    let member = crate::support::company_user(&t, &company, "member@acme.test", "people").await;
    let targets = Targets {
        company: company.clone(),
        member: member.actor().unwrap().to_string(),
        staff: t.a.admin.staff_id().unwrap().to_string(),
    };
    // Staff who may manage staff, keys, companies and customers, but are no super admins.
    let delegated = t.a.staff(&[
        Permission::StaffWrite,
        Permission::ApiKeyWrite,
        Permission::CustomerWrite,
        Permission::CatalogRead,
    ]);
    let key = Caller {
        tenant: t.a.tenant.id,
        principal: Principal::ApiKey {
            id: Uuid::now_v7(),
            permissions: vec![Permission::StaffWrite, Permission::ApiKeyWrite],
        },
    };
    assert!(
        manager
            .membership()
            .is_some_and(|m: &Membership| !m.permissions.is_empty())
    );
    let mutations = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap();
    let before = t.outbox_count().await;
    let mut walked = Vec::new();
    for field in mutations.iter().filter(|f| grants_rights(&schema_info, f)) {
        let name = field["name"].as_str().unwrap();
        let mut params = Vec::new();
        let mut args = Vec::new();
        let mut vars = Map::new();
        for arg in field["args"].as_array().unwrap() {
            let arg_name = arg["name"].as_str().unwrap();
            params.push(format!("${arg_name}: {}", type_ref(&arg["type"])));
            args.push(format!("{arg_name}: ${arg_name}"));
            if let Some(v) = schema_info.greedy(&arg["type"], arg_name, &targets) {
                vars.insert(arg_name.to_owned(), v);
            }
        }
        let selection = match named(&field["type"])["kind"].as_str() {
            Some("OBJECT" | "UNION") => " { __typename }",
            _ => "",
        };
        let query = format!(
            "mutation({}) {{ {name}({}){selection} }}",
            params.join(", "),
            args.join(", ")
        );
        let vars = Value::Object(vars);
        for caller in [&delegated, &key, &manager] {
            let r = t.gql(Some(caller), &query, vars.clone()).await;
            assert!(
                ["FORBIDDEN", "NOT_FOUND", "VALIDATION", "UNAUTHENTICATED"]
                    .contains(&error_code(&r)),
                "{name} as {:?} granted more than it holds: {r}",
                caller.principal
            );
        }
        walked.push(name.to_owned());
    }
    for expected in [
        "createApiKey",
        "createStaffUser",
        "updateStaffUser",
        "inviteCompanyUser",
        "updateCompanyUser",
        "createCompanyRole",
    ] {
        assert!(
            walked.iter().any(|w| w == expected),
            "{expected} not walked: {walked:?}"
        );
    }
    assert_eq!(t.outbox_count().await, before, "nothing was granted");
}
