//! Requisition lists: named lists of SKUs and quantities a company buys again and again
//! ("monthly site supplies"), up to 10,000 lines, filled from a cart, an order, pasted text
//! (quick order's format) or lines, and added to the cart in one call. A list is its owner's;
//! a shared list is the company's, and only company users with `MANAGE_REQUISITION_LISTS`
//! change it.

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

pub use service::RequisitionListsService;
