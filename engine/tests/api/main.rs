//! Black-box tests of the engine through its GraphQL API (with and without HTTP).
//! They run on SQLite by default and on PostgreSQL when `VECTIS_TEST_DATABASE_URL` is set.

mod accounts;
mod after_sale;
mod api_keys;
mod approvals;
mod auth;
mod cart;
mod catalog;
mod companies;
mod concurrency;
mod contract;
mod errors;
mod events;
mod extensions;
mod http;
mod inventory;
mod isolation;
mod notifications;
mod orders;
mod permissions;
mod pricing;
mod privileges;
mod quotes;
mod requisition_lists;
mod schema;
mod seed;
mod statements;
mod streaming;
mod support;
mod webhooks;

// The example extensions, enabled by configuration in `extensions`.
use vectis_ext_credit_review as _;
use vectis_ext_volume_discount as _;
