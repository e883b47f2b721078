//! `loadgen`: drives a running Vectis server over HTTP and measures large carts and the
//! catalog under concurrency.
//!
//! ```text
//! cargo run --release -p vectis-benches --bin loadgen -- [URL] [--prepare] [--catalog-only | --orders-only | --quotes-only] [--duration SECS] [--reads N]
//! ```
//!
//! `--prepare` only creates the bench catalog and exits: on PostgreSQL, let statistics catch
//! up before measuring (`ANALYZE`, or a minute for autovacuum), as after any bulk import.
//!
//! URL defaults to `http://127.0.0.1:8080/graphql`; the server must run with `--demo` (the
//! tool logs in as `admin@vectis.demo` to create a 10,000-variant bench product once and uses
//! the demo storefront key `demo-storefront-key` for guest carts).
//!
//! Scenarios: a 1,000-line cart built in one mutation and in chunks of 100; the full cart
//! read 30 times after 5 warm-ups; one line added to a 1,000-line cart; the same at 10,000
//! lines; `placeOrder` of 1,000 and 10,000-line carts (10 and 3 times) by a company buyer of
//! the demo on account (staff settle each invoice) and by a guest paying by test card;
//! `cancelOrderLines` of one unit of most lines of such orders on account; quotes of 1,000
//! and 10,000 lines requested by the buyer, every line priced by staff, sent and accepted on
//! account (`requestQuote`, `updateQuote`, `sendQuote`, `acceptQuote`, each timed);
//! `products(first: 20)` with variants and prices under 16 and 64 connections for
//! 20 s each. Each scenario prints a line; the last line is all results as JSON
//! (milliseconds: min, p50, p95; requests/s for the catalog).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const STOREFRONT_KEY: &str = "demo-storefront-key";
const BENCH_SKUS: usize = 11_000;

struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    path: String,
}

impl Client {
    async fn connect(target: &Target) -> Client {
        let stream = TcpStream::connect(target.addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Client {
            sender,
            host: target.host.clone(),
            path: target.path.clone(),
        }
    }

    /// Posts a GraphQL request and returns the parsed response; panics on HTTP or GraphQL
    /// errors (a benchmark of failing requests measures nothing).
    async fn gql(&mut self, headers: &[(&str, &str)], query: &str, variables: Value) -> Value {
        let (status, bytes) = self.post(headers, query, variables).await;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        if value.get("errors").is_some() {
            panic!("GraphQL errors: {}", short(&value));
        }
        value["data"].clone()
    }

    /// Posts a GraphQL request and returns the status and the raw body.
    async fn post(
        &mut self,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> (hyper::StatusCode, Bytes) {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut request = Request::post(&self.path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-vectis-storefront-key", STOREFRONT_KEY);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("send");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, bytes)
    }
}

fn parse_url(url: &str) -> Target {
    let rest = url
        .strip_prefix("http://")
        .expect("the URL must start with http://");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/graphql"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .expect("resolve")
        .next()
        .expect("an address");
    Target {
        addr,
        host: host.to_owned(),
        path: path.to_owned(),
    }
}

/// The start of a response, for error messages.
fn short(value: &Value) -> String {
    value.to_string().chars().take(400).collect()
}

/// min, p50, p95 in milliseconds.
fn stats(samples: &mut [Duration]) -> Value {
    samples.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    json!({ "n": samples.len(), "min": ms(samples[0]), "p50": ms(at(0.5)), "p95": ms(at(0.95)) })
}

fn sku(i: usize) -> String {
    format!("LOADGEN-{i:05}")
}

fn lines(range: std::ops::Range<usize>) -> Value {
    Value::Array(
        range
            .map(|i| json!({ "sku": sku(i), "quantity": 1 + (i % 7) as i64 }))
            .collect(),
    )
}

const ADD: &str = "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied cartToken errors { index code } cart { lineCount totals { total { amount } } } } }";
const READ: &str = "{ cart { lineCount totals { subtotal { amount } discounts { amount } shipping { amount } tax { amount } total { amount currency } }
  lines(first: 10000) { edges { node { id quantity unitPrice { amount currency } linePrice { amount currency }
    taxLines { label rateBasisPoints amount { amount } } variant { sku name product { name } } } } } } }";
const CATALOG: &str = "{ products(first: 20) { edges { node { id name variants { sku name prices { amount currency } } } } } }";

/// Creates the bench product with `BENCH_SKUS` variants unless it exists.
async fn ensure_catalog(client: &mut Client) {
    let found = client
        .gql(
            &[],
            "query($s: [String!]!) { variantsBySku(skus: $s) { sku } }",
            json!({ "s": [sku(BENCH_SKUS - 1)] }),
        )
        .await;
    if found["variantsBySku"][0]["sku"].is_string() {
        return;
    }
    let login = client
        .gql(
            &[],
            "mutation { login(tenant: \"demo\", email: \"admin@vectis.demo\", password: \"vectis-demo\") { accessToken } }",
            json!({}),
        )
        .await;
    let bearer = format!("Bearer {}", login["login"]["accessToken"].as_str().unwrap());
    let auth = [("authorization", bearer.as_str())];
    let product = client
        .gql(
            &auth,
            "mutation { createProduct(input: { name: \"Loadgen hex bolts\", description: \"bench catalog\" }) { id } }",
            json!({}),
        )
        .await["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for chunk in (0..BENCH_SKUS).collect::<Vec<_>>().chunks(5_000) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({ "productId": product, "sku": sku(*i), "name": format!("Hex bolt {i}"),
                        "prices": [{ "currency": "EUR", "amount": 10 + (*i as i64 % 500) }],
                        "weightGrams": 20 })
            })
            .collect();
        let out = client
            .gql(
                &auth,
                "mutation($i: [UpsertVariantInput!]!) { upsertVariants(input: $i) { applied errors { index message } } }",
                json!({ "i": items }),
            )
            .await;
        assert_eq!(out["upsertVariants"]["applied"], true, "{}", short(&out));
    }
    // Stock-tracked, in two warehouses, so that placing an order reserves stock.
    for code in ["loadgen-a", "loadgen-b"] {
        client
            .gql(
                &auth,
                "mutation($c: String!) { createStockLocation(code: $c, name: \"Bench warehouse\") { id } }",
                json!({ "c": code }),
            )
            .await;
    }
    for chunk in (0..BENCH_SKUS).collect::<Vec<_>>().chunks(5_000) {
        let rows: Vec<Value> = chunk
            .iter()
            .flat_map(|i| {
                ["loadgen-a", "loadgen-b"]
                    .map(|l| json!({ "sku": sku(*i), "location": l, "onHand": 1_000_000_000 }))
            })
            .collect();
        let out = client
            .gql(
                &auth,
                "mutation($r: [StockLevelInput!]!) { setStockLevels(rows: $r) { applied errors { index message } } }",
                json!({ "r": rows }),
            )
            .await;
        assert_eq!(out["setStockLevels"]["applied"], true, "{}", short(&out));
    }
}

/// Builds a guest cart of `lines` in chunks of `chunk`; returns the token and each call's time.
async fn build(client: &mut Client, size: usize, chunk: usize) -> (String, Vec<Duration>) {
    let (token, times) = build_as(client, None, size, chunk).await;
    (token.expect("a cart token"), times)
}

/// Builds a cart of `lines` in chunks of `chunk`, as the customer whose `Authorization` header
/// is given (their cart) or as a guest (a new guest cart, whose token is returned).
async fn build_as(
    client: &mut Client,
    bearer: Option<&str>,
    size: usize,
    chunk: usize,
) -> (Option<String>, Vec<Duration>) {
    let mut token: Option<String> = None;
    let mut times = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + chunk).min(size);
        let mut headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| vec![("x-vectis-cart-token", t)])
            .unwrap_or_default();
        headers.extend(bearer.map(|b| ("authorization", b)));
        let t0 = Instant::now();
        let out = client
            .gql(&headers, ADD, json!({ "l": lines(start..end) }))
            .await;
        times.push(t0.elapsed());
        assert_eq!(out["addCartLines"]["applied"], true, "{}", short(&out));
        if token.is_none() {
            token = out["addCartLines"]["cartToken"].as_str().map(str::to_owned);
        }
        start = end;
    }
    (token, times)
}

const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { __typename
  ... on Order { id code state lineCount totals { total { amount currency } } payments { id state } }
  ... on EmptyCartError { code message } ... on CartChangedError { code message }
  ... on PriceChangedError { code message } ... on MissingAddressError { code message }
  ... on ShippingMethodError { code message } ... on PaymentMethodError { code message }
  ... on CreditLimitExceededError { code message } ... on PaymentDeclinedError { code message }
  ... on TransitionError { code message } } }";
const SETTLE: &str =
    "mutation($p: ID!) { settlePayment(paymentId: $p) { __typename ... on Payment { state } } }";

/// Logs in (staff with `login`, a company user with `customerLogin`) and returns the
/// `Authorization` header value.
async fn bearer(client: &mut Client, mutation: &str, email: &str) -> String {
    let out = client
        .gql(
            &[],
            &format!("mutation($e: String!) {{ {mutation}(tenant: \"demo\", email: $e, password: \"vectis-demo\") {{ accessToken }} }}"),
            json!({ "e": email }),
        )
        .await;
    format!(
        "Bearer {}",
        out[mutation]["accessToken"].as_str().expect("a token")
    )
}

/// Who places the orders of a scenario.
enum Buyer<'a> {
    /// A guest cart paid by test card (the provider path: intent, handler, outcome).
    GuestByCard,
    /// A company user paying on account; staff settle each invoice so the credit limit
    /// never runs out.
    OnAccount { buyer: &'a str, staff: &'a str },
}

/// Fills a cart with `size` lines (one mutation, not timed) and places it; returns the order
/// and the time `placeOrder` took.
async fn place_one(
    client: &mut Client,
    who: &Buyer<'_>,
    size: usize,
    rep: usize,
) -> (Value, Duration) {
    let (auth, input) = match who {
        Buyer::GuestByCard => (
            None,
            json!({ "paymentMethod": "test-card", "paymentMetadata": { "cardNumber": "4242 4242 4242 4242" },
                    "email": "bench@example.com", "shippingMethod": "standard",
                    "shippingAddress": { "streetLine1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "countryCode": "DE" } }),
        ),
        Buyer::OnAccount { buyer, .. } => (
            Some(*buyer),
            json!({ "paymentMethod": "invoice", "shippingMethod": "standard",
                    "purchaseOrderNumber": format!("PO-LOADGEN-{size}-{rep}") }),
        ),
    };
    let (token, _) = build_as(client, auth, size, size).await;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    headers.extend(token.as_deref().map(|t| ("x-vectis-cart-token", t)));
    headers.extend(auth.map(|b| ("authorization", b)));
    let t0 = Instant::now();
    let out = client.gql(&headers, PLACE, json!({ "i": input })).await;
    let elapsed = t0.elapsed();
    let order = out["placeOrder"].clone();
    assert_eq!(order["__typename"], "Order", "{}", short(&out));
    assert_eq!(order["lineCount"], size, "{}", short(&out));
    (order, elapsed)
}

/// Staff settle an order's invoice (so the company's credit never runs out).
async fn settle(client: &mut Client, staff: &str, order: &Value) {
    let settled = client
        .gql(
            &[("authorization", staff)],
            SETTLE,
            json!({ "p": order["payments"][0]["id"] }),
        )
        .await;
    assert_eq!(
        settled["settlePayment"]["state"],
        "Settled",
        "{}",
        short(&settled)
    );
}

/// Times `placeOrder` of `size`-line carts, `reps` times.
async fn place(client: &mut Client, who: &Buyer<'_>, size: usize, reps: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for rep in 0..reps {
        let (order, elapsed) = place_one(client, who, size, rep).await;
        times.push(elapsed);
        if let Buyer::OnAccount { staff, .. } = who {
            settle(client, staff, &order).await;
        }
    }
    times
}

const ORDER_LINES: &str =
    "query($id: ID!) { order(id: $id) { lines(first: 10000) { nodes { id quantity } } } }";
const CANCEL_LINES: &str = "mutation($o: ID!, $l: [OrderLineQuantityInput!]!) {
  cancelOrderLines(orderId: $o, lines: $l, reason: \"loadgen\") { __typename ... on Order { state totals { total { amount } } } } }";

/// Places `size`-line orders on account (not timed) and times the buyer cancelling one unit of
/// every line ordered more than once (the invoice shrinks, stock and credit are released),
/// `reps` times.
async fn cancel(client: &mut Client, who: &Buyer<'_>, size: usize, reps: usize) -> Vec<Duration> {
    let Buyer::OnAccount { buyer, staff } = who else {
        unreachable!("cancelling is measured on account");
    };
    let mut times = Vec::new();
    for rep in 0..reps {
        let (order, _) = place_one(client, who, size, 100 + rep).await;
        let read = client
            .gql(
                &[("authorization", buyer)],
                ORDER_LINES,
                json!({ "id": order["id"] }),
            )
            .await;
        let units: Vec<Value> = read["order"]["lines"]["nodes"]
            .as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["quantity"].as_i64() > Some(1))
            .map(|l| json!({ "lineId": l["id"], "quantity": 1 }))
            .collect();
        let t0 = Instant::now();
        let out = client
            .gql(
                &[("authorization", buyer)],
                CANCEL_LINES,
                json!({ "o": order["id"], "l": units }),
            )
            .await;
        times.push(t0.elapsed());
        let after = &out["cancelOrderLines"];
        assert_eq!(after["__typename"], "Order", "{}", short(&out));
        assert!(
            after["totals"]["total"]["amount"].as_i64()
                < order["totals"]["total"]["amount"].as_i64(),
            "{}",
            short(&out)
        );
        settle(client, staff, &order).await;
    }
    times
}

const REQUEST_QUOTE: &str = "mutation { requestQuote(input: { comment: \"loadgen\" }) { __typename
  ... on Quote { id lineCount lines(first: 10000) { nodes { id unitPrice { amount } } } } ... on QuoteError { code message } } }";
const UPDATE_QUOTE: &str = "mutation($id: ID!, $l: [QuoteLineChangeInput!]!) { updateQuote(id: $id, input: { lines: $l, discount: 100 }) {
  __typename ... on Quote { lineCount total { amount } } ... on QuoteError { code message } } }";
const SEND_QUOTE: &str = "mutation($id: ID!) { sendQuote(id: $id) { __typename ... on Quote { state } ... on QuoteError { code message } } }";
const ACCEPT_QUOTE: &str = "mutation($id: ID!) { acceptQuote(id: $id, input: { paymentMethod: \"invoice\", shippingMethod: \"standard\" }) {
  __typename ... on Order { id lineCount totals { discounts { amount } } payments { id state } } ... on QuoteError { code message }
  ... on CreditLimitExceededError { code message } ... on InsufficientStockError { code message } } }";

/// Times of one quote's steps.
#[derive(Default)]
struct QuoteTimes {
    request: Vec<Duration>,
    update: Vec<Duration>,
    send: Vec<Duration>,
    accept: Vec<Duration>,
}

/// A `size`-line quote, `reps` times: the buyer's cart (filled, not timed) requested as a
/// quote, every line priced 1 % lower by staff, sent, and accepted on account (staff settle
/// each invoice).
async fn quotes(client: &mut Client, who: &Buyer<'_>, size: usize, reps: usize) -> QuoteTimes {
    let Buyer::OnAccount { buyer, staff } = who else {
        unreachable!("quotes are measured on account");
    };
    let mut times = QuoteTimes::default();
    for _ in 0..reps {
        build_as(client, Some(buyer), size, size).await;
        let t0 = Instant::now();
        let out = client
            .gql(&[("authorization", buyer)], REQUEST_QUOTE, json!({}))
            .await;
        times.request.push(t0.elapsed());
        let quote = &out["requestQuote"];
        assert_eq!(quote["lineCount"], size, "{}", short(&out));
        let changes: Vec<Value> = quote["lines"]["nodes"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| {
                let unit = l["unitPrice"]["amount"].as_i64().unwrap_or_default();
                json!({ "lineId": l["id"], "unitPrice": unit * 99 / 100 })
            })
            .collect();
        let id = quote["id"].clone();
        let t0 = Instant::now();
        let out = client
            .gql(
                &[("authorization", staff)],
                UPDATE_QUOTE,
                json!({ "id": id, "l": changes }),
            )
            .await;
        times.update.push(t0.elapsed());
        assert_eq!(out["updateQuote"]["lineCount"], size, "{}", short(&out));
        let t0 = Instant::now();
        let out = client
            .gql(&[("authorization", staff)], SEND_QUOTE, json!({ "id": id }))
            .await;
        times.send.push(t0.elapsed());
        assert_eq!(out["sendQuote"]["state"], "Sent", "{}", short(&out));
        let t0 = Instant::now();
        let out = client
            .gql(
                &[("authorization", buyer)],
                ACCEPT_QUOTE,
                json!({ "id": id }),
            )
            .await;
        times.accept.push(t0.elapsed());
        let order = out["acceptQuote"].clone();
        assert_eq!(order["__typename"], "Order", "{}", short(&out));
        assert_eq!(order["lineCount"], size, "{}", short(&out));
        settle(client, staff, &order).await;
        // The cart the quote was requested from is emptied for the next round.
        client
            .gql(
                &[("authorization", buyer)],
                "mutation { clearCart { applied } }",
                json!({}),
            )
            .await;
    }
    times
}

async fn read(client: &mut Client, token: &str, expected: usize, reads: usize) -> Vec<Duration> {
    let headers = [("x-vectis-cart-token", token)];
    let mut times = Vec::new();
    for i in 0..reads + 5 {
        // The body is checked, not parsed (as for the catalog): a JSON parse of 3 MB would
        // measure the client.
        let t0 = Instant::now();
        let (status, body) = client.post(&headers, READ, json!({})).await;
        let elapsed = t0.elapsed();
        let nodes = body.windows(8).filter(|w| w == br#"{"node":"#).count();
        let ok = status.is_success()
            && body.starts_with(br#"{"data":{"cart""#)
            && !body.windows(10).any(|w| w == br#""errors":["#);
        assert!(
            ok,
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(400)])
        );
        assert_eq!(nodes, expected, "lines in the response");
        if i >= 5 {
            times.push(elapsed);
        }
    }
    times
}

async fn add_one(client: &mut Client, token: &str, from: usize, n: usize) -> Vec<Duration> {
    let headers = [("x-vectis-cart-token", token)];
    let mut times = Vec::new();
    for i in from..from + n {
        let t0 = Instant::now();
        let out = client
            .gql(&headers, ADD, json!({ "l": lines(i..i + 1) }))
            .await;
        times.push(t0.elapsed());
        assert_eq!(out["addCartLines"]["applied"], true);
    }
    times
}

async fn catalog(target: &Target, connections: usize, duration: Duration) -> Value {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for _ in 0..connections {
        let mut client = Client::connect(target).await;
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                // The body is checked, not parsed: the client is not what is measured.
                let t0 = Instant::now();
                let (status, body) = client.post(&[], CATALOG, json!({})).await;
                times.push(t0.elapsed());
                let ok = status.is_success()
                    && body.starts_with(br#"{"data":{"products""#)
                    && !body.windows(10).any(|w| w == br#""errors":["#);
                assert!(ok, "HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
            times
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64().max(duration.as_secs_f64());
    let mut s = stats(&mut all);
    s["connections"] = json!(connections);
    s["requestsPerSecond"] = json!((all.len() as f64 / elapsed).round());
    s
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut url = "http://127.0.0.1:8080/graphql".to_owned();
    let mut duration = 20;
    let mut reads = 30;
    let mut prepare_only = false;
    let mut catalog_only = false;
    let mut orders_only = false;
    let mut quotes_only = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--prepare" => prepare_only = true,
            "--catalog-only" => catalog_only = true,
            "--orders-only" => orders_only = true,
            "--quotes-only" => quotes_only = true,
            "--duration" => {
                duration = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--duration SECS")
            }
            "--reads" => reads = args.next().and_then(|v| v.parse().ok()).expect("--reads N"),
            other => url = other.to_owned(),
        }
    }
    let target = parse_url(&url);
    let mut client = Client::connect(&target).await;
    ensure_catalog(&mut client).await;
    if prepare_only {
        println!("bench catalog ready ({BENCH_SKUS} variants)");
        return;
    }
    let mut results = serde_json::Map::new();
    let mut report = |name: &str, value: Value| {
        println!("{name}: {value}");
        results.insert(name.to_owned(), value);
    };

    let sizes: &[usize] = if catalog_only || orders_only || quotes_only {
        &[]
    } else {
        &[1_000, 10_000]
    };
    for &size in sizes {
        let reps = if size == 1_000 { 10 } else { 3 };
        let mut one = Vec::new();
        let mut token = String::new();
        for _ in 0..reps {
            let (t, times) = build(&mut client, size, size).await;
            one.extend(times);
            token = t;
        }
        report(&format!("add_{size}_lines_one_mutation"), stats(&mut one));
        let (_, mut chunks) = build(&mut client, size, 100).await;
        let total: Duration = chunks.iter().sum();
        let mut s = stats(&mut chunks);
        s["totalMs"] = json!((total.as_secs_f64() * 1000.0).round());
        report(&format!("add_{size}_lines_in_chunks_of_100"), s);
        report(
            &format!("read_{size}_line_cart"),
            stats(&mut read(&mut client, &token, size, reads).await),
        );
        // A cart holds at most 10,000 lines, so the one-line add runs on the 1,000-line cart.
        if size < 10_000 {
            report(
                &format!("add_one_line_to_{size}_line_cart"),
                stats(&mut add_one(&mut client, &token, size, reads).await),
            );
        }
    }
    if quotes_only {
        let staff = bearer(&mut client, "login", "admin@vectis.demo").await;
        let buyer = bearer(&mut client, "customerLogin", "buyer@acme.demo").await;
        let on_account = Buyer::OnAccount {
            buyer: &buyer,
            staff: &staff,
        };
        for (size, reps) in [(1_000, 10), (10_000, 3)] {
            let mut t = quotes(&mut client, &on_account, size, reps).await;
            report(&format!("request_{size}_line_quote"), stats(&mut t.request));
            report(
                &format!("price_every_line_of_a_{size}_line_quote"),
                stats(&mut t.update),
            );
            report(&format!("send_{size}_line_quote"), stats(&mut t.send));
            report(
                &format!("accept_{size}_line_quote_on_account"),
                stats(&mut t.accept),
            );
        }
        println!("{}", Value::Object(results));
        return;
    }
    if !catalog_only {
        let staff = bearer(&mut client, "login", "admin@vectis.demo").await;
        let buyer = bearer(&mut client, "customerLogin", "buyer@acme.demo").await;
        let on_account = Buyer::OnAccount {
            buyer: &buyer,
            staff: &staff,
        };
        for (size, reps) in [(1_000, 10), (10_000, 3)] {
            report(
                &format!("place_{size}_line_order_on_account"),
                stats(&mut place(&mut client, &on_account, size, reps).await),
            );
            report(
                &format!("place_{size}_line_order_guest_by_card"),
                stats(&mut place(&mut client, &Buyer::GuestByCard, size, reps).await),
            );
            report(
                &format!("cancel_units_of_a_{size}_line_order_on_account"),
                stats(&mut cancel(&mut client, &on_account, size, reps).await),
            );
        }
    }
    if orders_only {
        println!("{}", Value::Object(results));
        return;
    }
    for connections in [16, 64] {
        let s = catalog(&target, connections, Duration::from_secs(duration)).await;
        report(&format!("catalog_products_first_20_at_{connections}"), s);
    }
    println!("{}", Value::Object(results));
}
