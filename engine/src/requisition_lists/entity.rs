//! Requisition list tables: `requisition_lists`, `requisition_list_lines`.

pub mod list {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "requisition_lists")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub company_id: Uuid,
        /// The company user who made it.
        pub owner_id: Uuid,
        pub name: String,
        pub description: Option<String>,
        /// Visible to the whole company (edited by those with `MANAGE_REQUISITION_LISTS`).
        pub shared: bool,
        pub line_count: i64,
        pub version: i64,
    }
    no_relations!();
}

crate::events::aggregate!(list::Entity, "requisition_list", "RequisitionList");

pub mod line {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "requisition_list_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub list_id: Uuid,
        pub variant_id: Uuid,
        pub quantity: i64,
    }
    no_relations!();
}
