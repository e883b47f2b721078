//! B2B approvals: approval rules per company (inherited by its divisions), in tiers of
//! roles; the buyer's spending limits per order and per month (the month's spend kept
//! atomically); the approval flow of every order that needs one, with each decision.
//! Placement asks the `ApprovalStrategy` (see `vectis_strategies::approval`); the decisions
//! themselves go through the orders service (`orders::approve`), which owns the order's
//! transitions.

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

pub use service::ApprovalsService;
