//! Wiring: the services, the schema and the request entry point shared by HTTP and tests.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;

use crate::accounts::loader::AccountsLoader;
use crate::auth::throttle::ClientIp;
use crate::auth::{Caller, Permission};
use crate::catalog::loader::{CatalogLoader, request_loader};
use crate::companies::loader::CompaniesLoader;
use crate::config::Config;
use crate::db::Db;
use crate::graphql::limits::QueryLimits;
use crate::graphql::{VectisSchema, build_schema};
pub use crate::services::Services;
use vectis_strategies::Strategies;
use vectis_strategies::registry::RegistryError;

/// The engine: configuration, services and schema.
#[derive(Clone)]
pub struct App {
    /// Configuration as loaded at boot.
    pub config: Arc<Config>,
    /// Domain services.
    pub services: Services,
    /// The GraphQL schema.
    pub schema: VectisSchema,
    /// Alias and field limits, checked before execution.
    pub limits: QueryLimits,
    /// Anonymous catalog responses.
    pub response_cache: Arc<crate::http::cache::ResponseCache>,
    /// The outbox relay of this process, once started (see `consumer::EventRuntime`).
    pub relay: crate::consumer::RelaySlot,
}

impl App {
    /// Connects to the configured database, applies migrations and builds the engine.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        // Strategies first: a configuration that cannot boot changes nothing.
        let strategies = vectis_strategies::registry::resolve(&config.selection())?;
        let db = Db::connect(&config.database).await?;
        db.migrate().await?;
        Ok(App::with_strategies(config, db, strategies)?)
    }

    /// Builds the engine over a connected, migrated database, with the strategies the
    /// configuration chooses (`[strategies]`, `[payments]`). A name that is not linked, an
    /// incompatible engine range, bad options or an invalid merged order process is an error
    /// naming the setting, and the engine does not start.
    pub fn new(config: Config, db: Db) -> Result<App, RegistryError> {
        let strategies = vectis_strategies::registry::resolve(&config.selection())?;
        Self::with_strategies(config, db, strategies)
    }

    /// Builds the engine with custom business strategies: an embedding binary passes its own
    /// `Strategies` (usually the defaults with some replaced). The strategies are checked
    /// here: an order process that does not validate is an error naming the process and the
    /// state, and the engine does not start.
    pub fn with_strategies(
        config: Config,
        db: Db,
        strategies: Strategies,
    ) -> Result<App, RegistryError> {
        let services = Services::with_strategies(db, &config, strategies)?;
        let schema = build_schema(services.clone(), &config.graphql);
        let limits = QueryLimits {
            max_aliases: config.graphql.max_aliases,
            max_fields: config.graphql.max_fields,
            max_directives: config.graphql.max_directives,
            max_string_bytes: config.graphql.max_string_bytes,
        };
        let response_cache = Arc::new(crate::http::cache::ResponseCache::new(
            std::time::Duration::from_secs(config.http.catalog_cache_ttl_secs),
            10_000,
        ));
        Ok(App {
            config: Arc::new(config),
            services,
            schema,
            limits,
            response_cache,
            relay: Arc::default(),
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.services.core.db
    }

    /// Attaches the caller and the per-request loaders to a GraphQL request.
    pub fn prepare(
        &self,
        mut request: async_graphql::Request,
        caller: Option<Caller>,
        ip: Option<ClientIp>,
    ) -> async_graphql::Request {
        if let Some(ip) = ip {
            request = request.data(ip);
        }
        if let Some(caller) = caller {
            let loader = CatalogLoader::new(
                self.db().clone(),
                caller.tenant,
                caller.has(Permission::CatalogRead),
            );
            let accounts = AccountsLoader::new(self.services.accounts.clone(), caller.tenant);
            let companies = CompaniesLoader::new(self.services.companies.clone(), caller.tenant);
            let inventory = crate::inventory::graphql::request_loader(
                self.services.inventory.clone(),
                caller.tenant,
            );
            let orders = crate::orders::loader::OrdersLoader::new(
                self.services.orders.clone(),
                self.services.inventory.clone(),
                caller.tenant,
            );
            let prices = crate::pricing::loader::request_loader(
                self.services.pricing.clone(),
                caller.clone(),
            );
            request = request
                .data(request_loader(loader))
                .data(prices)
                .data(inventory)
                .data(DataLoader::new(orders, tokio::spawn))
                .data(DataLoader::new(accounts, tokio::spawn))
                .data(DataLoader::new(companies, tokio::spawn))
                .data(caller);
        }
        request
    }

    /// Executes one GraphQL request as `caller`.
    pub async fn execute(
        &self,
        request: async_graphql::Request,
        caller: Option<Caller>,
    ) -> async_graphql::Response {
        self.execute_from(request, caller, None).await
    }

    /// Executes one GraphQL request as `caller` from client address `ip`.
    pub async fn execute_from(
        &self,
        request: async_graphql::Request,
        caller: Option<Caller>,
        ip: Option<ClientIp>,
    ) -> async_graphql::Response {
        let mut request = request;
        if let Err(err) = self.limits.check(&mut request) {
            return async_graphql::Response::from_errors(vec![err]);
        }
        // Authorisation reads current state: a token's company rights are looked up again.
        let caller = match caller {
            Some(caller) => match self.services.auth.current(caller).await {
                Ok(caller) => Some(caller),
                Err(err) => {
                    return async_graphql::Response::from_errors(vec![err.into_server_error()]);
                }
            },
            None => None,
        };
        let mut response = self.schema.execute(self.prepare(request, caller, ip)).await;
        crate::graphql::limits::ensure_codes(&mut response);
        response
    }
}
