//! Tables of the companies module.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod company {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "companies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub parent_id: Option<Uuid>,
        pub root_id: Uuid,
        pub name: String,
        pub vat_id: Option<String>,
        pub tax_exempt: Option<bool>,
        pub payment_terms: Option<String>,
        pub credit_limit: Option<i64>,
        pub credit_currency: Option<String>,
        pub credit_exposure: i64,
        pub customer_group_id: Option<Uuid>,
        pub status: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod location {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_locations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub company_id: Uuid,
        pub name: String,
        pub is_shipping: bool,
        pub is_billing: bool,
        pub vat_id: Option<String>,
        pub tax_exempt: Option<bool>,
        pub payment_terms: Option<String>,
        pub status: String,
        pub version: i64,
        pub street_line1: String,
        pub street_line2: Option<String>,
        pub city: String,
        pub postal_code: String,
        pub region: Option<String>,
        pub country_code: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The stock location that serves this location's orders first.
        pub preferred_stock_location_id: Option<Uuid>,
    }
    no_relations!();
}

pub mod role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub company_id: Uuid,
        pub code: String,
        pub name: String,
        pub permissions: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub company_id: Uuid,
        pub customer_id: Uuid,
        pub roles: String,
        pub location_ids: String,
        pub spending_limit: Option<i64>,
        pub spending_currency: Option<String>,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Per calendar month, in `spending_currency`.
        pub monthly_spending_limit: Option<i64>,
    }
    no_relations!();
}

pub mod invitation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_invitations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub company_id: Uuid,
        pub email: String,
        pub roles: String,
        pub location_ids: String,
        pub token_hash: String,
        pub invited_by: Option<Uuid>,
        pub expires_at: DateTimeUtc,
        /// `staff`, `customer` or `api_key` (who `invited_by` is).
        pub inviter_kind: Option<String>,
        pub accepted_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod sales_rep {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sales_rep_assignments")]
    pub struct Model {
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub staff_user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub company_id: Uuid,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

crate::events::aggregate!(company::Entity, "company", "Company");
