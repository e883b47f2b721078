//! B2B quotes: a buyer turns their cart into a quote request; a sales rep assigned to the
//! company (or staff with `ORDER_WRITE`) prices it (line prices, line discounts, an order
//! discount, an expiry) and sends it; the buyer accepts it (it is placed through the normal
//! checkout with the quoted prices frozen, approval included), declines it or asks to
//! renegotiate. Sent quotes that pass their expiry are marked expired by a sweep. Acceptance
//! itself goes through the orders service (`orders::service::OrdersService::accept_quote`),
//! which owns placement.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod entity;
pub mod graphql;
pub mod service;

pub use service::QuotesService;
