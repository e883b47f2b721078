//! Quote tables: `quotes`, `quote_lines`, `quote_history`, `quote_settings`.

pub mod quote {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quotes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub company_id: Uuid,
        pub location_id: Option<Uuid>,
        /// The company user who asked for it.
        pub customer_id: Uuid,
        /// See [`super::super::service::state`].
        pub state: String,
        pub currency: String,
        /// The buyer's request.
        pub comment: Option<String>,
        pub requested_delivery_date: Option<Date>,
        /// The rep (staff user) who last worked on it.
        pub rep_id: Option<Uuid>,
        pub rep_comment: Option<String>,
        pub decline_reason: Option<String>,
        pub line_count: i64,
        /// The lines at the buyer's own prices when requested.
        pub list_subtotal: i64,
        /// The lines at the quoted prices.
        pub subtotal: i64,
        /// The order-level discount (an amount).
        pub discount: i64,
        /// `subtotal - discount`, before shipping and tax.
        pub total: i64,
        /// 1 for the request, one more for each renegotiation.
        pub round: i32,
        pub expires_at: Option<DateTimeUtc>,
        pub sent_at: Option<DateTimeUtc>,
        /// The order it became.
        pub order_id: Option<Uuid>,
        pub version: i64,
    }
    no_relations!();
}

crate::events::aggregate!(quote::Entity, "quote", "Quote");

pub mod line {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quote_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub quote_id: Uuid,
        pub variant_id: Uuid,
        pub sku: String,
        pub quantity: i64,
        /// The buyer's own unit price when requested.
        pub list_price: i64,
        /// The quoted unit price, before the line discount.
        pub unit_price: i64,
        pub discount_bp: i32,
        /// Quantity × the unit price after the line discount.
        pub line_price: i64,
    }
    no_relations!();
}

pub mod history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quote_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub quote_id: Uuid,
        pub round: i32,
        /// `requested`, `sent`, `renegotiation_requested`, `accepted`, `declined`, `expired`.
        pub action: String,
        pub actor_id: Option<Uuid>,
        pub comment: Option<String>,
        pub subtotal: i64,
        pub discount: i64,
        pub total: i64,
        pub expires_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod settings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quote_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        pub allow_above_list: bool,
        pub validity_days: i32,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}
