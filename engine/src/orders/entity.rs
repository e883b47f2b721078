//! Orders tables: `order_transitions` (the history) and `payments`. The order row itself is
//! `orders` (the cart module's: a cart is an order in its first state).

pub mod transition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_transitions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub order_id: Uuid,
        pub from_state: String,
        pub to_state: String,
        pub actor_id: Option<Uuid>,
        pub acting_staff_id: Option<Uuid>,
        pub reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub order_id: Uuid,
        /// The payment method's code.
        pub method: String,
        /// `Pending`, `Authorized`, `Settled`, `Declined`, `Failed`, `Cancelled`, `Refunded`.
        pub state: String,
        pub currency: String,
        pub amount: i64,
        pub settled_amount: i64,
        pub refunded_amount: i64,
        pub transaction_id: Option<String>,
        /// JSON: what the buyer gave at checkout (never card numbers in clear beyond tests).
        pub metadata: String,
        pub message: Option<String>,
        pub due_at: Option<DateTimeUtc>,
        pub version: i64,
        /// A provider payment's pending placement (JSON), until its result is recorded.
        pub intent: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

crate::events::aggregate!(payment::Entity, "payment", "Payment");

/// Payment states.
pub mod payment_state {
    /// Intent recorded; the provider is being asked.
    pub const PENDING: &str = "Pending";
    /// Authorised (or invoiced on account).
    pub const AUTHORIZED: &str = "Authorized";
    /// Paid.
    pub const SETTLED: &str = "Settled";
    /// Refused by the provider.
    pub const DECLINED: &str = "Declined";
    /// The provider could not be reached; nothing was taken.
    pub const FAILED: &str = "Failed";
    /// Released before settlement.
    pub const CANCELLED: &str = "Cancelled";
    /// Paid back in full.
    pub const REFUNDED: &str = "Refunded";
}

pub mod refund {
    use sea_orm::entity::prelude::*;

    /// Money paid back (`refund`) or part of an authorisation released (`void`), recorded
    /// before the payment handler is asked: its id is the idempotency key of that call.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub order_id: Uuid,
        pub payment_id: Uuid,
        pub return_id: Option<Uuid>,
        /// `refund` or `void`.
        pub kind: String,
        /// `Pending`, `Done`, `Failed`.
        pub state: String,
        pub amount: i64,
        pub currency: String,
        pub reason: Option<String>,
        pub message: Option<String>,
        pub requested_by: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Refund states.
pub mod refund_state {
    /// Recorded; the handler is being asked (again, after an interruption).
    pub const PENDING: &str = "Pending";
    /// The handler did it.
    pub const DONE: &str = "Done";
    /// The handler refused; the amount counts as not refunded again.
    pub const FAILED: &str = "Failed";
}

/// Refund kinds.
pub mod refund_kind {
    /// Money taken is paid back.
    pub const REFUND: &str = "refund";
    /// Part of an authorisation (or an unpaid invoice) is released.
    pub const VOID: &str = "void";
}
