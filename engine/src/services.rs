//! Every domain service, wired together once: what the GraphQL schema, the HTTP layer, the
//! command line and the event consumer share.

use crate::accounts::AccountsService;
use crate::auth::AuthService;
use crate::cart::CartService;
use crate::cart::service::CartSettings;
use crate::catalog::CatalogService;
use crate::companies::CompaniesService;
use crate::config::Config;
use crate::db::Db;
use crate::events::{Core, EventBus};
use crate::pricing::PricingService;
use crate::tenancy::TenantService;
use vectis_strategies::Strategies;
use vectis_strategies::registry::RegistryError;

/// Every domain service, cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Database and event bus.
    pub core: Core,
    /// Tenants.
    pub tenants: TenantService,
    /// Staff users and tokens.
    pub auth: AuthService,
    /// Catalog.
    pub catalog: CatalogService,
    /// Customers, groups, addresses.
    pub accounts: AccountsService,
    /// Companies, locations, company users, sales reps.
    pub companies: CompaniesService,
    /// Price lists and quotes.
    pub pricing: PricingService,
    /// Carts.
    pub cart: CartService,
    /// Read models built by the event consumer.
    pub projections: crate::projections::ProjectionsService,
    /// Webhook endpoints and deliveries.
    pub webhooks: crate::webhooks::WebhooksService,
    /// Orders and the order process.
    pub orders: crate::orders::OrdersService,
    /// Stock locations, levels, reservations.
    pub inventory: crate::inventory::InventoryService,
    /// Approval rules and flows.
    pub approvals: crate::approvals::ApprovalsService,
    /// Quotes.
    pub quotes: crate::quotes::QuotesService,
    /// Requisition lists.
    pub requisition_lists: crate::requisition_lists::RequisitionListsService,
    /// The configured business strategies.
    pub strategies: Strategies,
}

impl Services {
    /// Builds the services over a connected database, with the configured strategies.
    pub fn new(db: Db, config: &Config) -> Result<Self, RegistryError> {
        let strategies = vectis_strategies::registry::resolve(&config.selection())?;
        Self::with_strategies(db, config, strategies)
    }

    /// Builds the services with the given business strategies (see `docs/extending.md`). A
    /// merged order process that does not validate is an error naming the process and state.
    pub fn with_strategies(
        db: Db,
        config: &Config,
        strategies: Strategies,
    ) -> Result<Self, RegistryError> {
        let core = Core {
            db: db.clone(),
            bus: EventBus::default(),
        };
        let tenants = TenantService::new(db);
        let accounts = AccountsService::new(core.clone());
        let companies = CompaniesService::new(core.clone(), accounts.clone());
        let pricing = PricingService::new(
            core.clone(),
            accounts.clone(),
            companies.clone(),
            strategies.clone(),
        );
        let cart = CartService::new(
            core.clone(),
            pricing.clone(),
            strategies.clone(),
            CartSettings {
                seller_country: config.commerce.seller_country.to_ascii_uppercase(),
                prices_include_tax: config.commerce.prices_include_tax,
            },
        );
        let inventory = crate::inventory::InventoryService::new(
            core.clone(),
            strategies.stock_allocation.clone(),
        );
        let orders = crate::orders::OrdersService::new(
            core.clone(),
            &strategies,
            inventory.clone(),
            cart.clone(),
            pricing.clone(),
            companies.clone(),
        )?;
        Ok(Services {
            approvals: orders.approvals.clone(),
            quotes: orders.quotes.clone(),
            requisition_lists: crate::requisition_lists::RequisitionListsService::new(
                core.clone(),
                cart.clone(),
                orders.clone(),
            ),
            orders,
            inventory,
            auth: AuthService::new(
                core.clone(),
                tenants.clone(),
                accounts.clone(),
                companies.clone(),
                &config.auth,
            ),
            catalog: CatalogService::new(core.clone()),
            pricing,
            cart,
            projections: crate::projections::ProjectionsService::new(core.clone()),
            webhooks: crate::webhooks::WebhooksService::new(
                core.clone(),
                crate::webhooks::egress::EgressPolicy {
                    allow_private: config.webhooks.allow_private_targets,
                },
            ),
            strategies,
            accounts,
            companies,
            tenants,
            core,
        })
    }
}
