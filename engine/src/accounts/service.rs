//! Customers, groups, addresses and email tokens.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use super::entity::{address as address_entity, customer, customer_group, email_token};
use crate::auth::{
    Caller, Permission, hash_password, normalize_email, parse_tenant_token, tenant_token,
    validate_password,
};
use crate::error::{AppError, AppResult};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::kernel::PostalAddress;
use crate::kernel::TenantId;
use crate::kernel::text;

/// How long an email verification token lives.
pub const VERIFY_TTL_HOURS: i64 = 72;
/// How long a password reset token lives.
pub const RESET_TTL_HOURS: i64 = 2;
const VERIFY: &str = "verify_email";
const RESET: &str = "reset_password";

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Email (lower case), unique per tenant.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Customer group (pricing scope).
    pub customer_group_id: Option<Uuid>,
    /// When the email was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// May log in.
    pub active: bool,
    /// Version (event sequence).
    pub version: i64,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<customer::Model> for Customer {
    fn from(m: customer::Model) -> Self {
        Customer {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            email: m.email,
            first_name: m.first_name,
            last_name: m.last_name,
            phone: m.phone,
            customer_group_id: m.customer_group_id,
            email_verified_at: m.email_verified_at,
            active: m.status == "active",
            version: m.version,
            created_at: m.created_at,
        }
    }
}

/// Input of a registration.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    /// Email.
    pub email: String,
    /// Password (the rule of `validate_password`); `None` for invited users who set it later.
    pub password: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone.
    pub phone: Option<String>,
}

/// An address-book entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    /// Id.
    pub id: Uuid,
    /// Recipient.
    pub full_name: String,
    /// Company name on the label.
    pub company_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Default for shipping.
    pub default_shipping: bool,
    /// Default for billing.
    pub default_billing: bool,
    /// The address.
    pub address: PostalAddress,
}

impl From<address_entity::Model> for AddressEntry {
    fn from(m: address_entity::Model) -> Self {
        AddressEntry {
            id: m.id,
            full_name: m.full_name,
            company_name: m.company_name,
            phone: m.phone,
            default_shipping: m.default_shipping,
            default_billing: m.default_billing,
            address: PostalAddress {
                street_line1: m.street_line1,
                street_line2: m.street_line2,
                city: m.city,
                postal_code: m.postal_code,
                region: m.region,
                country_code: m.country_code,
            },
        }
    }
}

/// Input of an address-book entry.
#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    /// Recipient.
    pub full_name: String,
    /// Company name on the label.
    pub company_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Make it the default shipping address.
    pub default_shipping: bool,
    /// Make it the default billing address.
    pub default_billing: bool,
    /// The address.
    pub address: PostalAddress,
}

/// A customer group (e.g. wholesale, distributor): a pricing scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerGroup {
    /// Id.
    pub id: Uuid,
    /// Code, unique per tenant.
    pub code: String,
    /// Name.
    pub name: String,
}

impl From<customer_group::Model> for CustomerGroup {
    fn from(m: customer_group::Model) -> Self {
        CustomerGroup {
            id: m.id,
            code: m.code,
            name: m.name,
        }
    }
}

/// Customers, groups, addresses and email tokens.
#[derive(Clone)]
pub struct AccountsService {
    core: Core,
}

async fn bump_customer(
    uow: &UnitOfWork,
    id: Uuid,
    sets: Vec<(customer::Column, Expr)>,
) -> AppResult<customer::Model> {
    uow.bump::<customer::Entity>(id, sets, "Customer").await
}

impl AccountsService {
    /// A service over `core`.
    pub fn new(core: Core) -> Self {
        AccountsService { core }
    }

    /// A customer by id.
    pub async fn customer(&self, tenant: TenantId, id: Uuid) -> AppResult<Option<Customer>> {
        let found = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(customer::Entity::find_by_id(id)
                        .filter(customer::Column::TenantId.eq(tenant.0))
                        .one(tx)
                        .await?)
                })
            })
            .await?;
        Ok(found.map(Customer::from))
    }

    /// Customers by id (for loaders).
    pub async fn customers(&self, tenant: TenantId, ids: Vec<Uuid>) -> AppResult<Vec<Customer>> {
        let backend = self.core.db.backend();
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(customer::Entity::find()
                        .filter(customer::Column::TenantId.eq(tenant.0))
                        .filter(crate::db::id_in(
                            backend,
                            (customer::Entity, customer::Column::Id),
                            ids,
                        ))
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        Ok(rows.into_iter().map(Customer::from).collect())
    }

    /// A customer and their password hash, by email.
    pub async fn credentials(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> AppResult<Option<(Customer, Option<String>)>> {
        let email = email.trim().to_lowercase();
        let found = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(customer::Entity::find()
                        .filter(customer::Column::TenantId.eq(tenant.0))
                        .filter(customer::Column::Email.eq(email))
                        .one(tx)
                        .await?)
                })
            })
            .await?;
        Ok(found.map(|m| {
            let hash = m.password_hash.clone();
            (Customer::from(m), hash)
        }))
    }

    /// Finds a customer by email inside an open unit of work.
    pub async fn find_by_email_in(
        &self,
        uow: &UnitOfWork,
        email: &str,
    ) -> AppResult<Option<Customer>> {
        Ok(customer::Entity::find()
            .filter(customer::Column::TenantId.eq(uow.tenant().0))
            .filter(customer::Column::Email.eq(email.to_owned()))
            .one(uow.tx())
            .await?
            .map(Customer::from))
    }

    /// Creates a customer inside an open unit of work (registration, accepted invitations,
    /// staff). `verified` marks the email as proven (an accepted invitation proves it).
    pub async fn create_in(
        &self,
        uow: &mut UnitOfWork,
        input: NewCustomer,
        verified: bool,
    ) -> AppResult<Customer> {
        let email = normalize_email("email", &input.email)?;
        let first_name = text::name("firstName", &input.first_name, 100)?;
        let last_name = text::name("lastName", &input.last_name, 100)?;
        let phone = text::optional_text("phone", input.phone.as_deref(), 40)?;
        let password_hash = match &input.password {
            Some(password) => {
                validate_password("password", password)?;
                Some(hash_password(password)?)
            }
            None => None,
        };
        let now = Utc::now();
        let id = Uuid::now_v7();
        let tenant = uow.tenant();
        let created = customer::Entity::insert(customer::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            email: Set(email.clone()),
            password_hash: Set(password_hash),
            first_name: Set(first_name),
            last_name: Set(last_name),
            phone: Set(phone),
            customer_group_id: Set(None),
            email_verified_at: Set(verified.then_some(now)),
            status: Set("active".into()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_customers_tenant_email",
            "customers.email",
            "an account with this email exists already",
        ))?;
        uow.record(DomainEvent::new(
            tenant,
            "customer",
            id,
            1,
            "vectis.account.registered",
            json!({ "id": id, "email": email, "firstName": created.first_name, "lastName": created.last_name, "emailVerified": verified }),
        ));
        Ok(created.into())
    }

    async fn issue_email_token(
        &self,
        uow: &mut UnitOfWork,
        customer: &Customer,
        purpose: &'static str,
        hours: i64,
    ) -> AppResult<()> {
        let (token, hash) = tenant_token(uow.tenant());
        let now = Utc::now();
        let expires = now + Duration::hours(hours);
        email_token::Entity::insert(email_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(uow.tenant().0),
            customer_id: Set(customer.id),
            purpose: Set(purpose.into()),
            token_hash: Set(hash),
            expires_at: Set(expires),
            used_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let event_type = if purpose == VERIFY {
            "vectis.account.email_verification_requested"
        } else {
            "vectis.account.password_reset_requested"
        };
        let bumped = bump_customer(uow, customer.id, Vec::new()).await?;
        let event = DomainEvent::new(
            uow.tenant(),
            "customer",
            customer.id,
            bumped.version,
            event_type,
            json!({ "customerId": customer.id, "email": customer.email, "firstName": customer.first_name, "expiresAt": expires }),
        );
        // The raw token goes only into the email: kept for the notifications handler, never
        // in the event.
        crate::notifications::keep_token(uow.tx(), uow.tenant(), event.id, &token).await?;
        uow.record(event);
        Ok(())
    }

    /// Creates a customer for staff (`CUSTOMER_WRITE`); the email counts as verified and the
    /// password may be left for the customer to set through a password reset.
    pub async fn create_customer(
        &self,
        caller: &Caller,
        input: NewCustomer,
    ) -> AppResult<Customer> {
        caller.require(Permission::CustomerWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        let created = self.create_in(&mut uow, input, true).await?;
        uow.commit().await?;
        Ok(created)
    }

    /// Registers a customer from a storefront and requests email verification.
    pub async fn register(&self, tenant: TenantId, input: NewCustomer) -> AppResult<Customer> {
        if input.password.is_none() {
            return Err(AppError::validation("password", "is required"));
        }
        let mut uow = self.core.begin(tenant, None).await?;
        let created = self.create_in(&mut uow, input, false).await?;
        self.issue_email_token(&mut uow, &created, VERIFY, VERIFY_TTL_HOURS)
            .await?;
        uow.commit().await?;
        Ok(created)
    }

    async fn redeem(&self, token: &str, purpose: &str) -> AppResult<(UnitOfWork, customer::Model)> {
        let invalid = || AppError::validation("token", "is invalid or expired");
        let (tenant, hash) = parse_tenant_token(token).ok_or_else(invalid)?;
        let uow = self.core.begin(tenant, None).await?;
        // Single use: of concurrent redemptions exactly one gets the row back.
        let row = crate::db::lock::consume::<email_token::Entity, _>(
            uow.tx(),
            tenant,
            "used_at",
            sea_orm::Condition::all()
                .add(email_token::Column::TokenHash.eq(hash))
                .add(email_token::Column::Purpose.eq(purpose))
                .add(email_token::Column::ExpiresAt.gt(Utc::now())),
        )
        .await?
        .ok_or_else(invalid)?;
        let customer = customer::Entity::find_by_id(row.customer_id)
            .filter(customer::Column::TenantId.eq(tenant.0))
            .one(uow.tx())
            .await?
            .ok_or_else(invalid)?;
        Ok((uow, customer))
    }

    /// Marks the email of the token's customer as verified.
    pub async fn verify_email(&self, token: &str) -> AppResult<Customer> {
        let (mut uow, found) = self.redeem(token, VERIFY).await?;
        let updated = uow
            .change::<customer::Entity>(
                found.id,
                vec![(customer::Column::EmailVerifiedAt, Expr::value(Utc::now()))],
                "vectis.account.email_verified",
                |c| json!({ "id": c.id, "email": c.email }),
            )
            .await?;
        uow.commit().await?;
        Ok(updated.into())
    }

    /// Starts a password reset. Succeeds whether or not the email exists.
    pub async fn request_password_reset(&self, tenant: TenantId, email: &str) -> AppResult<()> {
        let email = email.trim().to_lowercase();
        let mut uow = self.core.begin(tenant, None).await?;
        if let Some(found) = self
            .find_by_email_in(&uow, &email)
            .await?
            .filter(|c| c.active)
        {
            self.issue_email_token(&mut uow, &found, RESET, RESET_TTL_HOURS)
                .await?;
        }
        uow.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset token (which also proves the email). The unit of work
    /// is returned open: the caller ends the account's sessions in it and commits
    /// (`AuthService::reset_password`).
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
    ) -> AppResult<(UnitOfWork, Customer)> {
        validate_password("password", password)?;
        let hash = hash_password(password)?;
        let (mut uow, found) = self.redeem(token, RESET).await?;
        let mut sets = vec![(customer::Column::PasswordHash, Expr::value(hash))];
        if found.email_verified_at.is_none() {
            sets.push((customer::Column::EmailVerifiedAt, Expr::value(Utc::now())));
        }
        let updated = uow
            .change::<customer::Entity>(
                found.id,
                sets,
                "vectis.account.password_changed",
                |updated| json!({ "id": updated.id }),
            )
            .await?;
        Ok((uow, updated.into()))
    }

    /// Sets the password of a customer who has none yet (accepting an invitation).
    pub async fn set_initial_password_in(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        password: &str,
    ) -> AppResult<()> {
        validate_password("password", password)?;
        let hash = hash_password(password)?;
        uow.change::<customer::Entity>(
            id,
            vec![
                (customer::Column::PasswordHash, Expr::value(hash)),
                (customer::Column::EmailVerifiedAt, Expr::value(Utc::now())),
            ],
            "vectis.account.password_changed",
            |_| json!({ "id": id }),
        )
        .await?;
        Ok(())
    }

    /// The address books of several customers (for loaders): `(customer, entry)` pairs.
    pub async fn addresses_of(
        &self,
        tenant: TenantId,
        customers: Vec<Uuid>,
    ) -> AppResult<Vec<(Uuid, AddressEntry)>> {
        let backend = self.core.db.backend();
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(address_entity::Entity::find()
                        .filter(address_entity::Column::TenantId.eq(tenant.0))
                        .filter(crate::db::id_in(
                            backend,
                            (address_entity::Entity, address_entity::Column::CustomerId),
                            customers,
                        ))
                        .order_by_asc(address_entity::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| (m.customer_id, AddressEntry::from(m)))
            .collect())
    }

    /// Adds an address to the calling customer's book (or replaces `id`).
    pub async fn save_address(
        &self,
        caller: &Caller,
        id: Option<Uuid>,
        input: AddressInput,
    ) -> AppResult<AddressEntry> {
        let (customer_id, _) = caller.require_customer()?;
        let full_name = text::name("fullName", &input.full_name, 200)?;
        let company_name = text::optional_text("companyName", input.company_name.as_deref(), 200)?;
        let phone = text::optional_text("phone", input.phone.as_deref(), 40)?;
        let postal = input.address.validated()?;
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let count = address_entity::Entity::find()
            .filter(address_entity::Column::TenantId.eq(tenant.0))
            .filter(address_entity::Column::CustomerId.eq(customer_id))
            .count(uow.tx())
            .await?;
        if id.is_none() && count >= 100 {
            return Err(AppError::validation(
                "address",
                "an address book holds at most 100 addresses",
            ));
        }
        if let Some(id) = id {
            let exists = address_entity::Entity::find_by_id(id)
                .filter(address_entity::Column::TenantId.eq(tenant.0))
                .filter(address_entity::Column::CustomerId.eq(customer_id))
                .one(uow.tx())
                .await?;
            if exists.is_none() {
                return Err(AppError::not_found("Address", id));
            }
        }
        // The first address becomes the default for both purposes.
        let default_shipping = input.default_shipping || count == 0;
        let default_billing = input.default_billing || count == 0;
        for (flag, column) in [
            (default_shipping, address_entity::Column::DefaultShipping),
            (default_billing, address_entity::Column::DefaultBilling),
        ] {
            if flag {
                address_entity::Entity::update_many()
                    .col_expr(column, Expr::value(false))
                    .filter(address_entity::Column::TenantId.eq(tenant.0))
                    .filter(address_entity::Column::CustomerId.eq(customer_id))
                    .exec(uow.tx())
                    .await?;
            }
        }
        let now = Utc::now();
        let address_id = id.unwrap_or_else(Uuid::now_v7);
        let model = address_entity::ActiveModel {
            id: Set(address_id),
            tenant_id: Set(tenant.0),
            customer_id: Set(customer_id),
            full_name: Set(full_name),
            company_name: Set(company_name),
            phone: Set(phone),
            default_shipping: Set(default_shipping),
            default_billing: Set(default_billing),
            street_line1: Set(postal.street_line1),
            street_line2: Set(postal.street_line2),
            city: Set(postal.city),
            postal_code: Set(postal.postal_code),
            region: Set(postal.region),
            country_code: Set(postal.country_code),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let saved = if id.is_some() {
            address_entity::Entity::update(model).exec(uow.tx()).await?
        } else {
            address_entity::Entity::insert(model)
                .exec_with_returning(uow.tx())
                .await?
        };
        uow
            .change::<customer::Entity>(customer_id, Vec::new(), "vectis.account.address_saved", |_| json!({ "customerId": customer_id, "addressId": address_id, "countryCode": saved.country_code }))
            .await?;
        uow.commit().await?;
        Ok(saved.into())
    }

    /// Removes an address from the calling customer's book.
    pub async fn delete_address(&self, caller: &Caller, id: Uuid) -> AppResult<()> {
        let (customer_id, _) = caller.require_customer()?;
        let mut uow = self.core.begin_for(caller).await?;
        let deleted = address_entity::Entity::delete_many()
            .filter(address_entity::Column::TenantId.eq(caller.tenant.0))
            .filter(address_entity::Column::CustomerId.eq(customer_id))
            .filter(address_entity::Column::Id.eq(id))
            .exec(uow.tx())
            .await?;
        if deleted.rows_affected == 0 {
            return Err(AppError::not_found("Address", id));
        }
        uow.change::<customer::Entity>(
            customer_id,
            Vec::new(),
            "vectis.account.address_deleted",
            |_| json!({ "customerId": customer_id, "addressId": id }),
        )
        .await?;
        uow.commit().await?;
        Ok(())
    }

    /// Creates a customer group.
    pub async fn create_group(
        &self,
        caller: &Caller,
        code_: &str,
        name: &str,
    ) -> AppResult<CustomerGroup> {
        caller.require(Permission::CustomerWrite)?;
        let code_ = crate::catalog::service::validate_code("code", &code_.to_lowercase())?;
        let name = text::name("name", name, 200)?;
        let mut uow = self.core.begin_for(caller).await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let created = customer_group::Entity::insert(customer_group::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            code: Set(code_.clone()),
            name: Set(name),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await
        .map_err(crate::db::conflict(
            "uq_customer_groups_tenant_code",
            "customer_groups.code",
            format!("customer group `{code_}` exists already"),
        ))?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "customer_group",
            id,
            1,
            "vectis.account.customer_group_created",
            json!({ "id": id, "code": created.code, "name": created.name }),
        ));
        uow.commit().await?;
        Ok(created.into())
    }

    /// All customer groups of the tenant.
    pub async fn groups(&self, tenant: TenantId) -> AppResult<Vec<CustomerGroup>> {
        let rows = self
            .core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(customer_group::Entity::find()
                        .filter(customer_group::Column::TenantId.eq(tenant.0))
                        .order_by_asc(customer_group::Column::Code)
                        .all(tx)
                        .await?)
                })
            })
            .await?;
        Ok(rows.into_iter().map(CustomerGroup::from).collect())
    }

    /// Checks that a customer group exists in the unit of work's tenant.
    pub async fn ensure_group_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<()> {
        customer_group::Entity::find_by_id(id)
            .filter(customer_group::Column::TenantId.eq(uow.tenant().0))
            .one(uow.tx())
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found("CustomerGroup", id))
    }

    /// Puts a customer into a group (or none).
    pub async fn set_group(
        &self,
        caller: &Caller,
        customer_id: Uuid,
        group: Option<Uuid>,
    ) -> AppResult<Customer> {
        caller.require(Permission::CustomerWrite)?;
        let mut uow = self.core.begin_for(caller).await?;
        if let Some(group) = group {
            self.ensure_group_in(&uow, group).await?;
        }
        let updated = uow
            .change::<customer::Entity>(
                customer_id,
                vec![(customer::Column::CustomerGroupId, Expr::value(group))],
                "vectis.account.customer_group_changed",
                |_| json!({ "id": customer_id, "customerGroupId": group }),
            )
            .await?;
        uow.commit().await?;
        Ok(updated.into())
    }

    /// A page of customers for staff, by id, optionally filtered by email or name.
    pub async fn list(
        &self,
        caller: &Caller,
        search: Option<String>,
        page: crate::db::page::PageRequest,
    ) -> AppResult<crate::db::page::Page<Customer>> {
        caller.require(Permission::CustomerRead)?;
        let tenant = caller.tenant;
        let mut filter = customer::Entity::find().filter(customer::Column::TenantId.eq(tenant.0));
        if let Some(pattern) =
            crate::db::contains_pattern("search", search.as_deref().unwrap_or(""))?
        {
            filter = filter.filter(
                Expr::col((customer::Entity, customer::Column::Email))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
                    .or(Expr::expr(sea_orm::sea_query::Func::lower(Expr::col((
                        customer::Entity,
                        customer::Column::LastName,
                    ))))
                    .like(LikeExpr::new(pattern).escape('\\'))),
            );
        }
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let total = filter.clone().count(&tx).await?;
        let rows = page.apply(filter, customer::Column::Id).all(&tx).await?;
        tx.commit().await?;
        Ok(page.page(rows, total).map(Customer::from))
    }
}
