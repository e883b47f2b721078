//! Configuration: built-in defaults, then `vectis.toml` (or `--config FILE`), then `VECTIS_*`
//! environment variables. The first `_` after the prefix separates the section from the key:
//! `VECTIS_DATABASE_URL` sets `database.url`, `VECTIS_HTTP_LISTEN` sets `http.listen`,
//! `VECTIS_AUTH_JWT_SECRET` sets `auth.jwt_secret`. Secrets are read from the environment only.
//!
//! [`Config::load`] validates everything at boot and names the offending key in its error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::{Deserialize, Serialize};
use vectis_strategies::registry::Selection;

/// Sections that `VECTIS_<SECTION>_<KEY>` variables may address.
const SECTIONS: &[&str] = &[
    "database",
    "http",
    "graphql",
    "auth",
    "log",
    "commerce",
    "kafka",
    "consumer",
    "mail",
    "webhooks",
    "strategies",
    "payments",
    "inventory",
];

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database connection.
    pub database: DatabaseConfig,
    /// HTTP server.
    pub http: HttpConfig,
    /// GraphQL limits.
    pub graphql: GraphqlConfig,
    /// Tokens and passwords.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Selling: tax origin and price entry.
    pub commerce: CommerceConfig,
    /// The broker the outbox relay publishes to and `vectis-consumer` reads from.
    pub kafka: KafkaConfig,
    /// Event handling: retries, webhooks, extension sinks.
    pub consumer: ConsumerConfig,
    /// Account emails.
    pub mail: MailConfig,
    /// Webhook targets.
    pub webhooks: WebhooksConfig,
    /// Which registered strategy decides what, and their options.
    pub strategies: StrategiesConfig,
    /// Payment methods offered.
    pub payments: PaymentsConfig,
    /// Stock reservations and stock from outside systems.
    pub inventory: InventoryConfig,
}

/// `[strategies]`: the registered strategy (the engine's or a linked extension's) that makes
/// each decision, by name, and `[strategies.options.<slot>.<name>]` tables with their
/// settings (slots: `pricing`, `tax`, `shipping`, `promotions`, `approval`, `order_process`,
/// `order_code`, `stock_allocation`, `payments`, `sinks`). Checked at boot: see `docs/extending.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategiesConfig {
    /// Unit prices.
    pub pricing: String,
    /// Tax lines.
    pub tax: String,
    /// Shipping methods and rates.
    pub shipping: String,
    /// Coupons.
    pub promotions: String,
    /// Whether an order needs approval before it is placed.
    pub approval: String,
    /// Order process contributions, merged in order (the first sets the initial state).
    pub order_process: Vec<String>,
    /// Order numbers.
    pub order_code: String,
    /// Which stock locations serve which order lines.
    pub stock_allocation: String,
    /// Settings by slot and strategy name.
    pub options: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

impl Default for StrategiesConfig {
    fn default() -> Self {
        let d = Selection::default();
        StrategiesConfig {
            pricing: d.pricing,
            tax: d.tax,
            shipping: d.shipping,
            promotions: d.promotions,
            approval: d.approval,
            order_process: d.order_process,
            order_code: d.order_code,
            stock_allocation: d.stock_allocation,
            options: d.options,
        }
    }
}

/// `[payments]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Payment method handlers offered, by name, in the order buyers see them.
    pub methods: Vec<String>,
    /// Age after which a provider payment still `Pending` counts as interrupted and is
    /// recovered (its provider asked again with the same idempotency key).
    pub recover_after_secs: u64,
    /// How often `vectis serve` looks for interrupted payments (0: never).
    pub recover_every_secs: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            methods: Selection::default().payment_methods,
            recover_after_secs: 120,
            recover_every_secs: 60,
        }
    }
}

/// `[inventory]`: engine-wide inventory settings (per-tenant ones, such as the low-stock
/// threshold, are set through the API: `updateInventorySettings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// How often `vectis serve` releases expired checkout reservations (0: never).
    pub release_every_secs: u64,
    /// The topic `vectis-consumer` reads absolute stock levels from (a WMS or ERP writes it),
    /// after the `kafka.topic_prefix` (`vectis.inbound.inventory` by default); empty: none.
    /// Messages it cannot apply go to the same name with `.dlq` appended.
    pub inbound_topic: String,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            release_every_secs: 30,
            inbound_topic: "inbound.inventory".into(),
        }
    }
}

/// `[webhooks]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Let webhook endpoints point at private, loopback, link-local and other non-public
    /// addresses (development, tests with local receivers). Off by default, also with
    /// `--demo`: see `webhooks::egress`.
    pub allow_private_targets: bool,
}

/// `[kafka]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port,…` of a Kafka-protocol broker (Kafka, Redpanda). Unset: the embedded
    /// all-in-one mode, where the relay hands events to the consumer pipeline in-process.
    pub brokers: Option<String>,
    /// Prefix of the topic names (`vectis.` gives `vectis.orders`, …, `vectis.dlq`).
    pub topic_prefix: String,
    /// `client.id` sent to the broker.
    pub client_id: String,
    /// Partitions of topics the engine creates.
    pub partitions: i32,
    /// Events per relay batch.
    pub relay_batch: u64,
    /// Relay polling interval in milliseconds (PostgreSQL notifications wake it sooner).
    pub relay_poll_ms: u64,
    /// How long the producer tries to deliver an event before the batch counts as failed.
    pub message_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            topic_prefix: "vectis.".into(),
            client_id: "vectis".into(),
            partitions: 6,
            relay_batch: 500,
            relay_poll_ms: 1_000,
            message_timeout_ms: 15_000,
        }
    }
}

impl KafkaConfig {
    /// Whether a broker is configured.
    pub fn enabled(&self) -> bool {
        self.brokers
            .as_deref()
            .is_some_and(|b| !b.trim().is_empty())
    }
}

/// `[consumer]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// Kafka consumer group of `vectis-consumer`.
    pub group_id: String,
    /// Delay before the first retry of a failed handler or webhook delivery.
    pub retry_initial_ms: u64,
    /// Longest delay between retries (the delay doubles up to it).
    pub retry_max_ms: u64,
    /// Runs of a handler or webhook delivery before it is given up (dead letter / failed).
    pub max_attempts: i32,
    /// Timeout of one webhook request.
    pub webhook_timeout_ms: u64,
    /// Consecutive failed attempts after which a webhook endpoint is disabled.
    pub webhook_disable_after: i32,
    /// How often the retry and delivery workers look for due work.
    pub worker_poll_ms: u64,
    /// Event sinks from extensions to enable, by name (see `docs/extending.md`).
    pub sinks: Vec<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: "vectis-consumer".into(),
            retry_initial_ms: 30_000,
            retry_max_ms: 2 * 3600 * 1000,
            max_attempts: 10,
            webhook_timeout_ms: 10_000,
            webhook_disable_after: 20,
            worker_poll_ms: 1_000,
            sinks: Vec::new(),
        }
    }
}

/// `[mail]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `smtp://user:pass@host:587` or `smtps://…` (env `VECTIS_MAIL_SMTP_URL` only). Unset:
    /// mail is written as `.eml` files to `mailbox_dir`.
    #[serde(skip_serializing)]
    pub smtp_url: Option<String>,
    /// Folder for `.eml` files when no SMTP server is configured.
    pub mailbox_dir: String,
    /// Sender address.
    pub from: String,
    /// Base URL of the storefront for links in emails (`/verify-email?token=…`).
    pub link_base_url: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            mailbox_dir: "mailbox".into(),
            from: "Vectis <no-reply@localhost>".into(),
            link_base_url: "http://localhost:3000".into(),
        }
    }
}

/// `[commerce]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommerceConfig {
    /// The seller's country (ISO 3166-1 alpha-2): the tax origin.
    pub seller_country: String,
    /// Whether prices are entered including tax (B2C style) instead of net (the B2B default).
    pub prices_include_tax: bool,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            seller_country: "DE".into(),
            prices_include_tax: false,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://FILE?mode=rwc` (default: `vectis.db` in the working directory) or
    /// `postgres://user@host/db`.
    pub url: String,
    /// PostgreSQL schema to use (`search_path`); empty for the default.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://vectis.db?mode=rwc".into(),
            schema: None,
            max_connections: 16,
            acquire_timeout_secs: 10,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body in bytes.
    pub body_limit_bytes: usize,
    /// Serve GraphiQL to browsers on `GET /graphql`.
    pub graphiql: bool,
    /// Seconds an anonymous catalog response stays cached (0 disables; see `http::cache`).
    pub catalog_cache_ttl_secs: u64,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed; the client
    /// address of a request is the peer otherwise (it keys login throttling).
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 8 * 1024 * 1024,
            graphiql: true,
            catalog_cache_ttl_secs: 30,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[graphql]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlConfig {
    /// Deepest accepted selection nesting.
    pub max_depth: usize,
    /// Most aliases accepted in one document.
    pub max_aliases: usize,
    /// Most fields (selections, counted over the whole document) accepted in one document.
    pub max_fields: usize,
    /// Most operations in one batched request (`[{…}, {…}]`); 1 disables batching.
    pub max_batch: usize,
    /// Most directives in one document.
    pub max_directives: usize,
    /// Longest string (in bytes) accepted anywhere in a request's variables or document.
    pub max_string_bytes: usize,
    /// Whether the schema answers introspection (`__schema`, `__type`). GraphiQL and code
    /// generators need it; production deployments behind a BFF may switch it off.
    pub introspection: bool,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        GraphqlConfig {
            max_depth: 16,
            max_aliases: 30,
            max_fields: 500,
            max_batch: 10,
            max_directives: 50,
            max_string_bytes: 1024 * 1024,
            introspection: true,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC secret for access tokens (env `VECTIS_AUTH_JWT_SECRET` only, at least 32 bytes).
    /// When unset, a random secret is generated at start: tokens then do not survive a restart.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<String>,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directives.
    pub filter: String,
    /// `pretty` (development) or `json` (production).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info,sqlx=warn".into(),
            format: LogFormat::Pretty,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A configuration error that names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The dotted key, e.g. `http.listen`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl Config {
    /// The strategies this configuration chooses, for `registry::resolve`.
    pub fn selection(&self) -> Selection {
        let s = self.strategies.clone();
        Selection {
            pricing: s.pricing,
            tax: s.tax,
            shipping: s.shipping,
            promotions: s.promotions,
            approval: s.approval,
            order_process: s.order_process,
            order_code: s.order_code,
            stock_allocation: s.stock_allocation,
            payment_methods: self.payments.methods.clone(),
            options: s.options,
        }
    }

    /// Loads defaults, then the TOML file at `path` if it exists, then `VECTIS_*` variables,
    /// and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given explicitly.
    pub fn load_with(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut overrides = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("VECTIS_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) || key.is_empty() {
                continue;
            }
            let value: Value = value.parse().unwrap_or_else(|_| Value::from(value));
            if let Value::Dict(_, dict) = overrides
                .entry(section.to_owned())
                .or_insert_with(|| Value::from(Dict::new()))
            {
                dict.insert(key.to_owned(), value);
            }
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|err| {
            let key = err.path.join(".");
            ConfigError {
                key: if key.is_empty() { "config".into() } else { key },
                message: err.kind.to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that deserialise but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, message: &str| {
            Err(ConfigError {
                key: key.into(),
                message: message.into(),
            })
        };
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return fail("database.url", "must start with sqlite: or postgres://");
        }
        if self.database.max_connections == 0 {
            return fail("database.max_connections", "must be at least 1");
        }
        if self.http.listen.parse::<SocketAddr>().is_err() {
            return fail(
                "http.listen",
                "must be a socket address such as 127.0.0.1:8080",
            );
        }
        if self
            .http
            .trusted_proxies
            .iter()
            .any(|p| p.parse::<ipnet::IpNet>().is_err() && p.parse::<std::net::IpAddr>().is_err())
        {
            return fail(
                "http.trusted_proxies",
                "must list IP addresses or CIDR ranges such as 10.0.0.0/8",
            );
        }
        if self.http.body_limit_bytes < 1024 {
            return fail("http.body_limit_bytes", "must be at least 1024");
        }
        for (key, value) in [
            ("graphql.max_depth", self.graphql.max_depth),
            ("graphql.max_aliases", self.graphql.max_aliases),
            ("graphql.max_fields", self.graphql.max_fields),
            ("graphql.max_batch", self.graphql.max_batch),
            ("graphql.max_directives", self.graphql.max_directives),
            ("graphql.max_string_bytes", self.graphql.max_string_bytes),
        ] {
            if value == 0 {
                return fail(key, "must be at least 1");
            }
        }
        if crate::kernel::address::country("commerce.seller_country", &self.commerce.seller_country)
            .is_err()
        {
            return fail(
                "commerce.seller_country",
                "must be an ISO 3166-1 alpha-2 country code such as DE",
            );
        }
        if self.auth.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return fail("auth.jwt_secret", "must be at least 32 bytes long");
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 24 * 3600 {
            return fail("auth.access_token_ttl_secs", "must be between 1 and 86400");
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return fail(
                "auth.refresh_token_ttl_secs",
                "must not be shorter than auth.access_token_ttl_secs",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return fail("log.filter", "is not a valid tracing filter");
        }
        if self.kafka.partitions < 1 {
            return fail("kafka.partitions", "must be at least 1");
        }
        if self.kafka.relay_batch == 0 || self.kafka.relay_batch > 10_000 {
            return fail("kafka.relay_batch", "must be between 1 and 10000");
        }
        if self.consumer.max_attempts < 1 {
            return fail("consumer.max_attempts", "must be at least 1");
        }
        if self.consumer.retry_initial_ms == 0
            || self.consumer.retry_max_ms < self.consumer.retry_initial_ms
        {
            return fail(
                "consumer.retry_max_ms",
                "must be at least consumer.retry_initial_ms, which must be positive",
            );
        }
        if self.consumer.webhook_disable_after < 1 {
            return fail("consumer.webhook_disable_after", "must be at least 1");
        }
        Ok(())
    }

    /// The trusted proxies as networks (validated at load).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.http
            .trusted_proxies
            .iter()
            .filter_map(|p| {
                p.parse::<ipnet::IpNet>()
                    .ok()
                    .or_else(|| p.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect()
    }

    /// The listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.http
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("vectis-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vectis.toml");
        std::fs::write(&path, toml).unwrap();
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::load_with(&path, env)
    }

    #[test]
    fn defaults_are_valid() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.http.listen, "127.0.0.1:8080");
        assert!(config.database.url.starts_with("sqlite:"));
        assert_eq!(config.log.filter, "info,sqlx=warn");
    }

    #[test]
    fn toml_overrides_defaults_and_errors_name_the_key() {
        let config = load("[http]\nlisten = \"0.0.0.0:9000\"\n", &[]).unwrap();
        assert_eq!(config.http.listen, "0.0.0.0:9000");

        let err = load("[http]\nlisten = \"nonsense\"\n", &[]).unwrap_err();
        assert_eq!(err.key, "http.listen");

        let err = load("[graphql]\nmax_depth = \"deep\"\n", &[]).unwrap_err();
        assert_eq!(err.key, "graphql.max_depth");

        let err = load("[database]\nurl = \"mysql://x\"\n", &[]).unwrap_err();
        assert_eq!(err.key, "database.url");
        assert!(err.to_string().contains("database.url"));
    }

    #[test]
    fn env_overrides_toml_and_ignores_foreign_variables() {
        let config = load(
            "[database]\nmax_connections = 4\n",
            &[
                ("VECTIS_DATABASE_URL", "postgres://vectis@localhost/vectis"),
                ("VECTIS_DATABASE_MAX_CONNECTIONS", "7"),
                ("VECTIS_TEST_DATABASE_URL", "postgres://elsewhere"),
                ("OTHER_HTTP_LISTEN", "nonsense"),
            ],
        )
        .unwrap();
        assert_eq!(config.database.url, "postgres://vectis@localhost/vectis");
        assert_eq!(config.database.max_connections, 7);

        let err = load("", &[("VECTIS_HTTP_LISTEN", "not-an-address")]).unwrap_err();
        assert_eq!(err.key, "http.listen");
        let err = load("", &[("VECTIS_AUTH_JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.key, "auth.jwt_secret");
        let err = load("", &[("VECTIS_HTTP_BODY_LIMIT_BYTES", "lots")]).unwrap_err();
        assert_eq!(err.key, "http.body_limit_bytes");
    }
}
