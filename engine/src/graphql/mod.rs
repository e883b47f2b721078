//! The GraphQL schema: each module's Query and Mutation objects merged into one root, built
//! by [`build_schema`] so tests can execute GraphQL without HTTP.

pub mod address;
pub mod connection;
pub mod context;
pub mod ids;
pub mod limits;
pub mod scalars;

use async_graphql::{EmptySubscription, MergedObject, Schema};

use crate::accounts::graphql::{AccountsMutation, AccountsQuery};
use crate::auth::graphql::{AuthMutation, AuthQuery};
use crate::cart::graphql::{CartMutation, CartQuery};
use crate::catalog::graphql::{CatalogMutation, CatalogQuery};
use crate::companies::graphql::{CompaniesMutation, CompaniesQuery};
use crate::config::GraphqlConfig;
use crate::inventory::graphql::{InventoryMutation, InventoryQuery};
use crate::orders::after_sale::graphql::AfterSaleMutation;
use crate::orders::graphql::{OrdersMutation, OrdersQuery};
use crate::pricing::graphql::{PricingMutation, PricingQuery};
use crate::projections::graphql::ProjectionsQuery;
use crate::services::Services;
use crate::webhooks::graphql::{WebhooksMutation, WebhooksQuery};

/// Root query: the merge of every module's queries.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    AuthQuery,
    CatalogQuery,
    AccountsQuery,
    CompaniesQuery,
    PricingQuery,
    CartQuery,
    ProjectionsQuery,
    WebhooksQuery,
    OrdersQuery,
    InventoryQuery,
    crate::approvals::graphql::ApprovalsQuery,
    crate::quotes::graphql::QuotesQuery,
    crate::requisition_lists::graphql::RequisitionListsQuery,
);

/// Root mutation: the merge of every module's mutations.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    AuthMutation,
    CatalogMutation,
    AccountsMutation,
    CompaniesMutation,
    PricingMutation,
    CartMutation,
    WebhooksMutation,
    OrdersMutation,
    AfterSaleMutation,
    crate::approvals::graphql::ApprovalsMutation,
    crate::quotes::graphql::QuotesMutation,
    crate::requisition_lists::graphql::RequisitionListsMutation,
    InventoryMutation,
);

/// The Vectis schema.
pub type VectisSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema over `services` with the configured depth limit (aliases and fields are
/// checked per request by [`limits::QueryLimits`], see `App::execute_from`).
pub fn build_schema(services: Services, limits: &GraphqlConfig) -> VectisSchema {
    let builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .data(services)
    .limit_depth(limits.max_depth);
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .finish()
    .sdl()
}
