//! HTTP: `/graphql` following the GraphQL-over-HTTP spec, GraphiQL for browsers, and `/health`.
//!
//! - `POST /graphql` with `Content-Type: application/json`; batches (`[{…}, …]`) up to
//!   `graphql.max_batch`. Anything else is `415`; a body that is not a GraphQL request is `400`.
//! - `GET /graphql?query=…` runs queries only; a mutation over GET is `405` (state changes only
//!   over POST). A browser's `GET /graphql` without a query gets GraphiQL.
//! - Responses are `application/graphql-response+json` when the client accepts it (then a
//!   document that fails to parse or validate is `400`), else `application/json` (always `200`
//!   once the request is well-formed). A bad bearer token or storefront key is `401`.

pub mod cache;

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use axum::Router;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::auth::throttle::ClientIp;
use crate::auth::{Caller, Principal};
use crate::error::{AppError, code};

/// Response header set on answers served from the anonymous catalog cache.
pub const CACHE_HEADER: &str = "x-vectis-cache";

/// Header that carries a storefront key for anonymous storefront calls.
pub const STOREFRONT_KEY_HEADER: &str = "x-vectis-storefront-key";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Options of the HTTP surface that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// A storefront key GraphiQL sends by default (the demo key in `--demo` mode).
    pub graphiql_storefront_key: Option<String>,
}

#[derive(Clone)]
struct HttpState {
    app: App,
    options: HttpOptions,
    trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
}

/// The router of the engine.
pub fn router(app: App, options: HttpOptions) -> Router {
    let body_limit = app.config.http.body_limit_bytes;
    let trusted_proxies = std::sync::Arc::new(app.config.trusted_proxies());
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %request_id,
                    tenant = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(HttpState {
            app,
            options,
            trusted_proxies,
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
            Format::Json => JSON,
        }
    }
}

fn media_types(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The response format the client accepts, or `None` (answer 406).
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let accept = media_types(headers, header::ACCEPT);
    if accept.is_empty() {
        return Some(Format::Json);
    }
    if accept.iter().any(|m| m == GRAPHQL_RESPONSE_JSON) {
        return Some(Format::GraphqlResponseJson);
    }
    accept
        .iter()
        .any(|m| m == JSON || m == "*/*" || m == "application/*")
        .then_some(Format::Json)
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        Format::Json,
        "BAD_REQUEST",
        "accept application/graphql-response+json or application/json",
    )
}

fn error_response(status: StatusCode, format: Format, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn authenticate(
    state: &HttpState,
    headers: &HeaderMap,
    format: Format,
) -> Result<Option<Caller>, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = headers
        .get(STOREFRONT_KEY_HEADER)
        .and_then(|v| v.to_str().ok());
    match state
        .app
        .services
        .auth
        .authenticate(authorization, key)
        .await
    {
        Ok(caller) => {
            if let Some(c) = &caller {
                tracing::Span::current().record("tenant", tracing::field::display(c.tenant));
            }
            Ok(caller)
        }
        Err(AppError::Unauthenticated(message)) => {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                format,
                code::UNAUTHENTICATED,
                &message,
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(response)
        }
        Err(other) => {
            let err: async_graphql::Error = other.into();
            Err(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format,
                code::INTERNAL,
                &err.message,
            ))
        }
    }
}

/// A response whose errors all lack a path failed before execution (parse or validation).
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A response as JSON text. One that failed before execution has no `data` entry at all (the
/// GraphQL spec and GraphQL-over-HTTP: execution never started).
fn response_body(response: &async_graphql::Response) -> serde_json::Result<String> {
    if is_request_error(response) {
        let mut body = json!({ "errors": response.errors });
        if !response.extensions.is_empty() {
            body["extensions"] = serde_json::to_value(&response.extensions)?;
        }
        return Ok(body.to_string());
    }
    serde_json::to_string(response)
}

/// The client address of a request: the peer's address, unless the peer is a trusted proxy;
/// then the nearest address in `X-Forwarded-For` (read from the right) that is not a trusted
/// proxy. Untrusted peers cannot choose their address by sending the header.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded_for: &[&str],
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .rev()
    {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: the last hop that could be read is the client.
            Err(_) => break,
        }
    }
    client
}

fn client_ip(state: &HttpState, parts: &Parts) -> Option<ClientIp> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(ClientIp(client_address(
        peer,
        &forwarded,
        &state.trusted_proxies,
    )))
}

async fn run(
    state: &HttpState,
    headers: &HeaderMap,
    ip: Option<ClientIp>,
    format: Format,
    batch: async_graphql::BatchRequest,
) -> Response {
    let caller = match authenticate(state, headers, format).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let cart_token = headers
        .get(crate::cart::CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|t| crate::cart::CartToken(t.trim().to_owned()));
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| crate::orders::graphql::IdempotencyKey(k.trim().to_owned()));
    let with_token = |request: async_graphql::Request| {
        let request = match &cart_token {
            Some(t) => request.data(t.clone()),
            None => request,
        };
        match &idempotency_key {
            Some(k) => request.data(k.clone()),
            None => request,
        }
    };
    let (body, status) = match batch {
        async_graphql::BatchRequest::Single(request) => {
            let mut request = with_token(request);
            let cache = &state.app.response_cache;
            let generation = state.app.services.core.bus.catalog_generation();
            let key = match &caller {
                Some(c) if c.principal == Principal::Storefront && cart_token.is_none() => {
                    cache.key(c.tenant, format.content_type(), &mut request)
                }
                _ => None,
            };
            if let Some(body) = key.and_then(|k| cache.get(k, generation)) {
                return (
                    StatusCode::OK,
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(format.content_type()),
                        ),
                        (
                            header::HeaderName::from_static(CACHE_HEADER),
                            HeaderValue::from_static("hit"),
                        ),
                    ],
                    body,
                )
                    .into_response();
            }
            let response = state.app.execute_from(request, caller, ip).await;
            let status = if format == Format::GraphqlResponseJson && is_request_error(&response) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let body = response_body(&response);
            if let (Some(key), Ok(body)) = (key, &body)
                && response.errors.is_empty()
            {
                cache.put(key, generation, body.clone());
            }
            (body, status)
        }
        async_graphql::BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                let request = with_token(request);
                let response = state.app.execute_from(request, caller.clone(), ip).await;
                responses.push(response_body(&response));
            }
            let body = responses
                .into_iter()
                .collect::<serde_json::Result<Vec<_>>>()
                .map(|r| format!("[{}]", r.join(",")));
            (body, StatusCode::OK)
        }
    };
    match body {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "serialising a GraphQL response");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format,
                code::INTERNAL,
                "internal error",
            )
        }
    }
}

async fn graphql_post(State(state): State<HttpState>, parts: Parts, body: Bytes) -> Response {
    let headers = &parts.headers;
    let Some(format) = negotiate(headers) else {
        return not_acceptable();
    };
    let content_type = media_types(headers, header::CONTENT_TYPE);
    if !content_type.iter().any(|m| m == JSON) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            "BAD_REQUEST",
            "send the request as Content-Type: application/json",
        );
    }
    let batch: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format,
                "BAD_REQUEST",
                "the body is not a GraphQL request: expected {\"query\": …, \"variables\": …}",
            );
        }
    };
    let missing_query = match &batch {
        async_graphql::BatchRequest::Single(r) => r.query.trim().is_empty(),
        async_graphql::BatchRequest::Batch(rs) => rs.iter().any(|r| r.query.trim().is_empty()),
    };
    if missing_query {
        return error_response(
            StatusCode::BAD_REQUEST,
            format,
            "BAD_REQUEST",
            "the request has no `query`",
        );
    }
    if let async_graphql::BatchRequest::Batch(requests) = &batch {
        let max = state.app.config.graphql.max_batch;
        if requests.is_empty() || requests.len() > max {
            return error_response(
                StatusCode::BAD_REQUEST,
                format,
                "BAD_REQUEST",
                &format!("a batch holds 1 to {max} operations"),
            );
        }
    }
    run(&state, headers, client_ip(&state, &parts), format, batch).await
}

fn operation_type(request: &async_graphql::Request) -> Option<OperationType> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operations: Vec<_> = document.operations.iter().collect();
    let chosen = match &request.operation_name {
        Some(name) => operations
            .iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())),
        None => operations.first(),
    }?;
    Some(chosen.1.node.ty)
}

async fn graphql_get(State(state): State<HttpState>, parts: Parts) -> Response {
    let headers = &parts.headers;
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let wants_html = media_types(headers, header::ACCEPT)
        .iter()
        .any(|m| m == "text/html");
    if query.is_empty() && wants_html && state.app.config.http.graphiql {
        let mut source = async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Vectis GraphiQL");
        if let Some(key) = &state.options.graphiql_storefront_key {
            source = source.header("X-Vectis-Storefront-Key", key);
        }
        return Html(source.finish()).into_response();
    }
    let Some(format) = negotiate(headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format,
                "BAD_REQUEST",
                "pass the operation as ?query=…&variables=… (variables as JSON)",
            );
        }
    };
    if matches!(
        operation_type(&request),
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format,
            "BAD_REQUEST",
            "mutations are accepted only over POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    run(
        &state,
        headers,
        client_ip(&state, &parts),
        format,
        async_graphql::BatchRequest::Single(request),
    )
    .await
}

async fn health(State(state): State<HttpState>) -> Response {
    let db = state.app.db();
    let started = Instant::now();
    let backend = db.backend();
    let database = db
        .connection()
        .query_one_raw(Statement::from_string(backend, "SELECT 1"))
        .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let database_ok = database.is_ok();
    let pending = match db.read(crate::db::Scope::System).await {
        Ok(tx) => {
            let row = tx
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT COUNT(*) AS pending FROM outbox WHERE published_at IS NULL",
                ))
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<i64>("", "pending").ok());
            let _ = tx.commit().await;
            row
        }
        Err(_) => None,
    };
    let db_status = if database_ok { "ok" } else { "down" };
    let relay = state.app.relay.get().map(|relay| relay.status());
    let relay_degraded = relay.as_ref().is_some_and(|r| r.degraded);
    let status = if !database_ok {
        "down"
    } else if relay_degraded {
        "degraded"
    } else {
        "ok"
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "database": {
                "status": db_status,
                "backend": match backend { DbBackend::Postgres => "postgres", DbBackend::Sqlite => "sqlite", _ => "other" },
                "latencyMs": (latency_ms * 100.0).round() / 100.0,
            },
            "outbox": {
                "status": if pending.is_some() { "ok" } else { "unknown" },
                "pending": pending,
            },
            "relay": match relay {
                None => json!({ "status": "off", "backlog": pending }),
                Some(r) => json!({
                    "status": if r.degraded { "degraded" } else { "ok" },
                    "publisher": r.publisher,
                    "backlog": pending,
                    "published": r.published,
                    "lastPublishedAt": r.last_published_at,
                    "lastError": r.last_error,
                }),
            },
        },
    });
    let code = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::client_address;

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // An untrusted peer cannot pick its address.
        assert_eq!(
            client_address(ip("203.0.113.9"), &["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Behind a proxy: the nearest untrusted hop, whatever the client prepended.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &["1.1.1.1, 198.51.100.7, 10.0.0.5"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["1.1.1.1", "198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &[], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["nonsense, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.7"], &[]),
            ip("10.0.0.2"),
            "no trusted proxies: the header is ignored"
        );
    }
}
