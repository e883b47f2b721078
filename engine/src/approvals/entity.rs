//! Approvals tables: `approval_rules`, `approval_flows`, `approval_decisions`, `member_spend`.

pub mod rule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "approval_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub company_id: Uuid,
        pub name: String,
        pub active: bool,
        /// JSON `RuleCondition`.
        pub condition: String,
        /// JSON `[[RoleCount]]`.
        pub tiers: String,
        pub version: i64,
    }
    no_relations!();
}

crate::events::aggregate!(rule::Entity, "approval_rule", "ApprovalRule");

pub mod flow {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "approval_flows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub order_id: Uuid,
        pub company_id: Uuid,
        pub location_id: Option<Uuid>,
        pub buyer_id: Option<Uuid>,
        /// `Pending`, `Approved`, `Rejected`.
        pub state: String,
        /// JSON `[Requirement]`.
        pub requirements: String,
        pub version: i64,
    }
    no_relations!();
}

pub mod decision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "approval_decisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub flow_id: Uuid,
        pub order_id: Uuid,
        pub requirement: i32,
        pub tier: i32,
        pub approver_id: Uuid,
        pub role: String,
        /// `approved` or `rejected`.
        pub decision: String,
        pub comment: Option<String>,
    }
    no_relations!();
}

pub mod spend {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_spend")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub member_id: Uuid,
        pub month: String,
        pub currency: String,
        pub amount: i64,
    }
    no_relations!();
}

/// Flow states.
pub mod flow_state {
    /// Waiting for decisions.
    pub const PENDING: &str = "Pending";
    /// Every requirement was met; the order was placed.
    pub const APPROVED: &str = "Approved";
    /// An approver rejected it; the order was cancelled.
    pub const REJECTED: &str = "Rejected";
}
