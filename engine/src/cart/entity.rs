//! Cart tables: `orders` (a cart is an order in its first state), `order_lines`, `coupons`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub state: String,
        pub cart_key: Option<String>,
        pub customer_id: Option<Uuid>,
        pub company_id: Option<Uuid>,
        pub location_id: Option<Uuid>,
        pub currency: String,
        pub prices_include_tax: bool,
        pub line_count: i64,
        pub total_quantity: i64,
        pub total_weight_grams: i64,
        pub subtotal: i64,
        pub discount: i64,
        pub shipping: i64,
        pub tax: i64,
        pub total: i64,
        /// JSON array of applied coupon codes.
        pub coupons: String,
        /// JSON array of `{code, amount}` order adjustments.
        pub adjustments: String,
        /// JSON array of `{category, amount, tax}` per tax category (lines, discounts, shipping).
        pub tax_summary: String,
        /// JSON postal address.
        pub shipping_address: Option<String>,
        pub shipping_method: Option<String>,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Human-readable order code, once placed.
        pub code: Option<String>,
        pub placed_at: Option<DateTimeUtc>,
        /// JSON postal address.
        pub billing_address: Option<String>,
        pub po_number: Option<String>,
        pub payment_method: Option<String>,
        pub idempotency_key: Option<String>,
        /// A guest's email (customers have theirs on the account).
        pub customer_email: Option<String>,
        /// The quote this order was accepted from (its lines carry the quoted prices).
        pub quote_id: Option<Uuid>,
    }
    no_relations!();
}

pub mod line {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub order_id: Uuid,
        pub variant_id: Uuid,
        pub quantity: i64,
        pub unit_price: i64,
        pub line_price: i64,
        pub tax: i64,
        pub tax_category: String,
        pub unit_weight_grams: i64,
        /// JSON `{kind, priceListId, minQuantity}`.
        pub price_source: String,
        /// JSON array of `{label, rateBp, amount, reverseCharge, note}`.
        pub tax_lines: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Units cancelled before they shipped (an order's); `quantity` is what was ordered,
        /// `line_price` and `tax` cover the units still ordered.
        pub cancelled_quantity: i64,
    }
    no_relations!();

    impl Model {
        /// Units still ordered.
        pub fn current_quantity(&self) -> i64 {
            self.quantity - self.cancelled_quantity
        }
    }
}

pub mod coupon {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "coupons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub code: String,
        pub name: String,
        pub kind: String,
        pub percentage_bp: Option<i32>,
        pub amount: Option<i64>,
        pub currency: String,
        pub min_order: Option<i64>,
        pub valid_from: Option<DateTimeUtc>,
        pub valid_until: Option<DateTimeUtc>,
        pub active: bool,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

crate::events::aggregate!(order::Entity, "order", "Cart");
