//! Quotes: requests from carts, the rep's pricing and sending, the buyer's answers, expiry,
//! who sees and works on which quote, and the quoted prices a cart accepting a quote uses.
//!
//! Every operation locks the quote row first, then works in a constant number of statements
//! whatever the number of lines (lines travel as one JSON parameter; totals are one
//! aggregate).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::pricing::{LinePrice, PriceLine, PriceSource, PricingError};
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{history, line, quote, settings};
use crate::auth::{Caller, CompanyPermission, Permission, Principal};
use crate::cart::CartService;
use crate::cart::entity::{line as cart_line, order};
use crate::catalog::read as catalog;
use crate::companies::CompaniesService;
use crate::companies::service::{Grants, Need};
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::db::page::PageRequest;
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, UnitOfWork};
use crate::kernel::TenantId;
use crate::pricing::service::MAX_LINE_QUANTITY;

/// Quote states.
pub mod state {
    /// Asked for by the buyer; the rep works on it.
    pub const REQUESTED: &str = "Requested";
    /// Sent to the buyer, who may accept, decline or renegotiate until it expires.
    pub const SENT: &str = "Sent";
    /// The buyer asked for changes; back with the rep.
    pub const RENEGOTIATING: &str = "Renegotiating";
    /// Accepted: it became an order.
    pub const ACCEPTED: &str = "Accepted";
    /// Declined by the buyer.
    pub const DECLINED: &str = "Declined";
    /// Not answered before its expiry.
    pub const EXPIRED: &str = "Expired";
}

/// Most lines a quote holds (as a cart).
pub const MAX_QUOTE_LINES: usize = crate::cart::service::MAX_CART_LINES;
/// How long a sent quote is valid by default.
pub const DEFAULT_VALIDITY_DAYS: i32 = 30;

/// A quote operation refused for a business reason; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `EMPTY_CART`, `QUOTE_NOT_EDITABLE`, `QUOTE_NOT_SENT`, `QUOTE_EXPIRED`,
    /// `QUOTE_ALREADY_ACCEPTED`, `NOT_ASSIGNED`, `LINES_REFUSED`, `DISCOUNT_EXCEEDS_SUBTOTAL`,
    /// `QUOTE_EMPTY`, `QUOTE_OTHER_COMPANY`.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Per-line errors (`LINES_REFUSED`), by position in the input.
    pub lines: Vec<ItemError>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            lines: Vec::new(),
        }
    }
}

/// A result that may be refused.
pub type Outcome<T> = Result<T, Refusal>;

/// A tenant's quote settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteSettings {
    /// Whether reps may quote above the buyer's own price.
    pub allow_above_list: bool,
    /// How long a sent quote stays valid unless the rep gives an expiry.
    pub validity_days: i32,
}

impl Default for QuoteSettings {
    fn default() -> Self {
        QuoteSettings {
            allow_above_list: false,
            validity_days: DEFAULT_VALIDITY_DAYS,
        }
    }
}

/// What a buyer asks a quote for.
#[derive(Debug, Clone, Default)]
pub struct RequestInput {
    /// What they need (up to 2,000 characters).
    pub comment: Option<String>,
    /// When they would like it delivered (not in the past).
    pub requested_delivery_date: Option<NaiveDate>,
}

/// A rep's change to one line.
#[derive(Debug, Clone, Default)]
pub struct LineChange {
    /// The quote line.
    pub line_id: Uuid,
    /// The quoted unit price (before the line discount).
    pub unit_price: Option<i64>,
    /// A discount on the line, in basis points (0-10,000).
    pub discount_bp: Option<i32>,
    /// A new quantity; 0 removes the line.
    pub quantity: Option<i64>,
}

/// A rep's changes to a quote.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    /// Line changes (up to 10,000).
    pub lines: Vec<LineChange>,
    /// The order-level discount (an amount in the quote's currency).
    pub discount: Option<i64>,
    /// Until when the quote will be valid once sent (in the future).
    pub expires_at: Option<DateTime<Utc>>,
    /// A note for the buyer (up to 2,000 characters).
    pub comment: Option<String>,
}

/// How the caller stands to a quote.
enum Side {
    /// The buyer's company: whether the caller may answer (accept, decline, renegotiate).
    Buyer { may_respond: bool },
    /// The seller: whether the caller sees it, and may work on it (`Err` says why not).
    Seller {
        visible: bool,
        work: Result<(), &'static str>,
    },
}

/// Quotes.
#[derive(Clone)]
pub struct QuotesService {
    core: Core,
    companies: CompaniesService,
    cart: CartService,
}

/// The unit price after a discount of `bp` basis points, rounded half up.
fn discounted(unit: i64, bp: i32) -> i64 {
    let v = (unit as i128) * (10_000 - bp as i128);
    ((v + 5_000) / 10_000) as i64
}

fn quote_event(q: &quote::Model) -> serde_json::Value {
    json!({
        "quoteId": q.id,
        "companyId": q.company_id,
        "customerId": q.customer_id,
        "locationId": q.location_id,
        "state": q.state,
        "round": q.round,
        "currency": q.currency,
        "lineCount": q.line_count,
        "subtotal": q.subtotal,
        "discount": q.discount,
        "total": q.total,
        "expiresAt": q.expires_at,
        "repId": q.rep_id,
    })
}

/// The quoted unit prices of `lines` (of the cart accepting quote `quote`): one query.
pub async fn quoted_prices_in<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    quote: Uuid,
    lines: &[PriceLine],
    currency: CurrencyCode,
) -> AppResult<Vec<Result<LinePrice, PricingError>>> {
    let rows: HashMap<Uuid, (i64, i64)> = line::Entity::find()
        .select_only()
        .column(line::Column::VariantId)
        .column(line::Column::LinePrice)
        .column(line::Column::Quantity)
        .filter(line::Column::TenantId.eq(tenant.0))
        .filter(line::Column::QuoteId.eq(quote))
        .into_tuple::<(Uuid, i64, i64)>()
        .all(tx)
        .await?
        .into_iter()
        .map(|(v, p, q)| (v, (p, q)))
        .collect();
    Ok(lines
        .iter()
        .map(|l| match rows.get(&l.variant) {
            Some((price, quantity)) if *quantity == l.quantity && *quantity > 0 => Ok(LinePrice {
                unit: Money::new(price / quantity, currency),
                source: PriceSource::Base,
            }),
            _ => Err(PricingError::NoPrice(currency)),
        })
        .collect())
}

/// The order-level discount of quote `quote`.
pub async fn discount_in<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    quote: Uuid,
) -> AppResult<i64> {
    Ok(quote::Entity::find()
        .select_only()
        .column(quote::Column::Discount)
        .filter(quote::Column::TenantId.eq(tenant.0))
        .filter(quote::Column::Id.eq(quote))
        .into_tuple::<i64>()
        .one(tx)
        .await?
        .unwrap_or_default())
}

/// Who a quote event emails: the buyer (`to_buyer`), else the sales reps assigned to the
/// company or a parent, and the rep who last worked on it; `(email, first name)`.
pub async fn mail_recipients_in<C: ConnectionTrait>(
    tx: &C,
    tenant: TenantId,
    to_buyer: bool,
    customer: Option<Uuid>,
    company: Option<Uuid>,
    rep: Option<Uuid>,
) -> AppResult<Vec<(String, String)>> {
    use crate::accounts::entity::customer as customer_entity;
    use crate::auth::entity::staff_user;
    use crate::companies::entity::sales_rep;
    if to_buyer {
        let Some(customer) = customer else {
            return Ok(Vec::new());
        };
        return Ok(customer_entity::Entity::find()
            .filter(customer_entity::Column::TenantId.eq(tenant.0))
            .filter(customer_entity::Column::Id.eq(customer))
            .all(tx)
            .await?
            .into_iter()
            .map(|c| (c.email, c.first_name))
            .collect());
    }
    let chain = match company {
        Some(company) => CompaniesService::chain_of(tx, tenant, company).await?,
        None => Vec::new(),
    };
    let mut staff: Vec<Uuid> = sales_rep::Entity::find()
        .select_only()
        .column(sales_rep::Column::StaffUserId)
        .filter(sales_rep::Column::TenantId.eq(tenant.0))
        .filter(sales_rep::Column::CompanyId.is_in(chain))
        .into_tuple()
        .all(tx)
        .await?;
    staff.extend(rep);
    if staff.is_empty() {
        return Ok(Vec::new());
    }
    Ok(staff_user::Entity::find()
        .filter(staff_user::Column::TenantId.eq(tenant.0))
        .filter(staff_user::Column::Id.is_in(staff))
        .filter(staff_user::Column::Active.eq(true))
        .order_by_asc(staff_user::Column::Email)
        .all(tx)
        .await?
        .into_iter()
        .map(|s| (s.email, s.display_name))
        .collect())
}

#[derive(Serialize)]
struct LineRow {
    id: String,
    variant: String,
    sku: String,
    quantity: i64,
    list: i64,
    unit: i64,
    bp: i64,
    price: i64,
}

impl QuotesService {
    /// The service.
    pub fn new(core: Core, companies: CompaniesService, cart: CartService) -> Self {
        QuotesService {
            core,
            companies,
            cart,
        }
    }

    /// Buyers: company users (with `PLACE_ORDERS` to ask and answer, checked again on their
    /// current membership).
    fn require_buyer(caller: &Caller) -> AppResult<()> {
        let (_, membership) = caller.require_customer()?;
        match membership {
            Some(m) if m.can(CompanyPermission::PlaceOrders) => Ok(()),
            Some(_) => Err(AppError::Forbidden("PLACE_ORDERS".into())),
            None => Err(AppError::Forbidden("COMPANY_USER".into())),
        }
    }

    /// Sellers: staff with `ORDER_WRITE`, or sales reps (`IMPERSONATE`) for the companies
    /// assigned to them.
    fn require_seller(caller: &Caller) -> AppResult<()> {
        match &caller.principal {
            Principal::Storefront => Err(AppError::Unauthenticated(
                "log in as staff to work on quotes".into(),
            )),
            _ if caller.has(Permission::OrderWrite) || caller.has(Permission::Impersonate) => {
                Ok(())
            }
            _ => Err(AppError::Forbidden("ORDER_WRITE".into())),
        }
    }

    /// How the caller stands to `q`; `NOT_FOUND` when they may not see it.
    async fn side_in(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        caller: &Caller,
        q: &quote::Model,
    ) -> AppResult<Side> {
        let not_found = || AppError::not_found("Quote", q.id);
        match &caller.principal {
            Principal::Storefront => Err(AppError::Unauthenticated("log in to see quotes".into())),
            Principal::Customer { id, .. } => {
                let access = self
                    .companies
                    .access(tx, caller, q.company_id, Need::Read)
                    .await
                    .map_err(|_| not_found())?;
                let can = |p: CompanyPermission| match &access.grants {
                    Grants::All => true,
                    Grants::Only(ps) => ps.contains(&p),
                };
                let own = q.customer_id == *id;
                if !own && !can(CompanyPermission::ViewOrders) {
                    return Err(not_found());
                }
                Ok(Side::Buyer {
                    may_respond: can(CompanyPermission::PlaceOrders),
                })
            }
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                if caller.has(Permission::OrderWrite) {
                    return Ok(Side::Seller {
                        visible: true,
                        work: Ok(()),
                    });
                }
                let covered = match caller.staff_id() {
                    Some(staff) if caller.has(Permission::Impersonate) => {
                        CompaniesService::rep_covers_in(tx, caller.tenant, staff, q.company_id)
                            .await?
                    }
                    _ => false,
                };
                if covered {
                    Ok(Side::Seller {
                        visible: true,
                        work: Ok(()),
                    })
                } else if caller.has(Permission::OrderRead) || caller.has(Permission::Impersonate) {
                    Ok(Side::Seller {
                        visible: caller.has(Permission::OrderRead),
                        work: Err(if caller.has(Permission::Impersonate) {
                            "NOT_ASSIGNED"
                        } else {
                            code::FORBIDDEN
                        }),
                    })
                } else {
                    Err(AppError::Forbidden("ORDER_READ".into()))
                }
            }
        }
    }

    /// The seller may work on `q`, or the refusal saying why not (`FORBIDDEN` is an error).
    async fn may_work(
        &self,
        uow: &UnitOfWork,
        caller: &Caller,
        q: &quote::Model,
    ) -> AppResult<Outcome<()>> {
        match self.side_in(uow.tx(), caller, q).await? {
            Side::Seller { work: Ok(()), .. } => Ok(Ok(())),
            Side::Seller {
                work: Err("NOT_ASSIGNED"),
                ..
            } => Ok(Err(Refusal::new(
                "NOT_ASSIGNED",
                "you are not a sales rep of this company",
            ))),
            Side::Seller { .. } | Side::Buyer { .. } => {
                Err(AppError::Forbidden("ORDER_WRITE".into()))
            }
        }
    }

    /// The buyer may answer `q`.
    async fn may_respond(
        &self,
        uow: &UnitOfWork,
        caller: &Caller,
        q: &quote::Model,
    ) -> AppResult<()> {
        match self.side_in(uow.tx(), caller, q).await? {
            Side::Buyer { may_respond: true } => Ok(()),
            _ => Err(AppError::Forbidden("PLACE_ORDERS".into())),
        }
    }

    async fn lock_in(&self, uow: &UnitOfWork, id: Uuid) -> AppResult<quote::Model> {
        crate::db::lock::lock::<quote::Entity, _>(uow.tx(), uow.tenant(), id)
            .await?
            .ok_or_else(|| AppError::not_found("Quote", id))
    }

    async fn history_in(
        &self,
        uow: &UnitOfWork,
        q: &quote::Model,
        action: &str,
        actor: Option<Uuid>,
        comment: Option<String>,
    ) -> AppResult<()> {
        let now = Utc::now();
        history::Entity::insert(history::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(uow.tenant().0),
            created_at: Set(now),
            updated_at: Set(now),
            quote_id: Set(q.id),
            round: Set(q.round),
            action: Set(action.to_owned()),
            actor_id: Set(actor),
            comment: Set(comment),
            subtotal: Set(q.subtotal),
            discount: Set(q.discount),
            total: Set(q.total),
            expires_at: Set(q.expires_at),
        })
        .exec_without_returning(uow.tx())
        .await?;
        Ok(())
    }

    /// Why an answer to `q` is refused, if it is: it must be sent and not expired.
    fn answerable(q: &quote::Model) -> Option<Refusal> {
        let expired = q.expires_at.is_some_and(|t| t <= Utc::now());
        match q.state.as_str() {
            state::SENT if expired => Some(Refusal::new("QUOTE_EXPIRED", "the quote has expired")),
            state::SENT => None,
            state::EXPIRED => Some(Refusal::new("QUOTE_EXPIRED", "the quote has expired")),
            state::ACCEPTED => Some(Refusal::new(
                "QUOTE_ALREADY_ACCEPTED",
                "the quote was accepted already",
            )),
            s => Some(Refusal::new(
                "QUOTE_NOT_SENT",
                format!("the quote is {s}, not sent"),
            )),
        }
    }

    /// The tenant's settings (defaults when none were set).
    pub async fn settings_in<C: ConnectionTrait>(
        tx: &C,
        tenant: TenantId,
    ) -> AppResult<QuoteSettings> {
        Ok(settings::Entity::find_by_id(tenant.0)
            .one(tx)
            .await?
            .map(|s| QuoteSettings {
                allow_above_list: s.allow_above_list,
                validity_days: s.validity_days,
            })
            .unwrap_or_default())
    }

    /// The tenant's settings (`ORDER_READ`).
    pub async fn settings(&self, caller: &Caller) -> AppResult<QuoteSettings> {
        if !caller.has(Permission::OrderWrite) {
            caller.require(Permission::OrderRead)?;
        }
        let tenant = caller.tenant;
        self.core
            .read(tenant, |tx| Box::pin(Self::settings_in(tx, tenant)))
            .await
    }

    /// Changes the tenant's settings (`ORDER_WRITE`); `None` keeps a setting.
    pub async fn update_settings(
        &self,
        caller: &Caller,
        allow_above_list: Option<bool>,
        validity_days: Option<i32>,
    ) -> AppResult<QuoteSettings> {
        caller.require(Permission::OrderWrite)?;
        if let Some(d) = validity_days
            && !(1..=365).contains(&d)
        {
            return Err(AppError::validation("validityDays", "must be 1-365 days"));
        }
        let uow = self.core.begin_for(caller).await?;
        let current = Self::settings_in(uow.tx(), caller.tenant).await?;
        let next = QuoteSettings {
            allow_above_list: allow_above_list.unwrap_or(current.allow_above_list),
            validity_days: validity_days.unwrap_or(current.validity_days),
        };
        settings::Entity::insert(settings::ActiveModel {
            tenant_id: Set(caller.tenant.0),
            allow_above_list: Set(next.allow_above_list),
            validity_days: Set(next.validity_days),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(settings::Column::TenantId)
                .update_columns([
                    settings::Column::AllowAboveList,
                    settings::Column::ValidityDays,
                    settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(uow.tx())
        .await?;
        uow.commit().await?;
        Ok(next)
    }

    /// Turns the caller's cart into a quote request (a company user with `PLACE_ORDERS`): its
    /// lines at the buyer's own prices, as the cart shows them. The cart stays as it is.
    pub async fn request(
        &self,
        caller: &Caller,
        input: RequestInput,
    ) -> AppResult<Outcome<quote::Model>> {
        Self::require_buyer(caller)?;
        let comment =
            crate::kernel::text::optional_text("comment", input.comment.as_deref(), 2000)?;
        if let Some(d) = input.requested_delivery_date
            && d < Utc::now().date_naive()
        {
            return Err(AppError::validation(
                "requestedDeliveryDate",
                "must not be in the past",
            ));
        }
        let (customer, membership) = caller.require_customer()?;
        let membership = membership
            .cloned()
            .ok_or_else(|| AppError::Forbidden("COMPANY_USER".into()))?;
        let mut uow = self.core.begin_for(caller).await?;
        self.companies
            .access(
                uow.tx(),
                caller,
                membership.company_id,
                Need::Write(CompanyPermission::PlaceOrders),
            )
            .await?;
        let Some(cart) = self.cart.lock_active_in(&uow, caller, None).await? else {
            return Ok(Err(Refusal::new("EMPTY_CART", "the cart is empty")));
        };
        if cart.line_count == 0 {
            return Ok(Err(Refusal::new("EMPTY_CART", "the cart is empty")));
        }
        let tenant = uow.tenant();
        let lines = cart_line::Entity::find()
            .filter(cart_line::Column::TenantId.eq(tenant.0))
            .filter(cart_line::Column::OrderId.eq(cart.id))
            .order_by_asc(cart_line::Column::Id)
            .all(uow.tx())
            .await?;
        let skus: HashMap<Uuid, String> = catalog::variants_by_id(
            uow.tx(),
            tenant,
            lines.iter().map(|l| l.variant_id).collect(),
            true,
        )
        .await?
        .into_iter()
        .map(|v| (v.id, v.sku))
        .collect();
        let now = Utc::now();
        let id = Uuid::now_v7();
        quote::Entity::insert(quote::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            created_at: Set(now),
            updated_at: Set(now),
            company_id: Set(membership.company_id),
            location_id: Set(cart.location_id),
            customer_id: Set(customer),
            state: Set(state::REQUESTED.into()),
            currency: Set(cart.currency.clone()),
            comment: Set(comment.clone()),
            requested_delivery_date: Set(input.requested_delivery_date),
            rep_id: Set(None),
            rep_comment: Set(None),
            decline_reason: Set(None),
            line_count: Set(lines.len() as i64),
            list_subtotal: Set(cart.subtotal),
            subtotal: Set(cart.subtotal),
            discount: Set(0),
            total: Set(cart.subtotal),
            round: Set(1),
            expires_at: Set(None),
            sent_at: Set(None),
            order_id: Set(None),
            version: Set(0),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let rows: Vec<LineRow> = lines
            .iter()
            .map(|l| LineRow {
                id: hex(Uuid::now_v7()),
                variant: hex(l.variant_id),
                sku: skus.get(&l.variant_id).cloned().unwrap_or_default(),
                quantity: l.quantity,
                list: l.unit_price,
                unit: l.unit_price,
                bp: 0,
                price: l.line_price,
            })
            .collect();
        self.write_lines(&uow, id, &rows).await?;
        let q = uow
            .change::<quote::Entity>(id, Vec::new(), "vectis.quote.requested", |q| {
                let mut data = quote_event(q);
                data["comment"] = json!(q.comment);
                data["requestedDeliveryDate"] = json!(q.requested_delivery_date);
                data
            })
            .await?;
        self.history_in(&uow, &q, "requested", Some(customer), comment)
            .await?;
        uow.commit().await?;
        Ok(Ok(q))
    }

    /// Inserts or updates quote lines with one statement.
    async fn write_lines(&self, uow: &UnitOfWork, quote: Uuid, rows: &[LineRow]) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = JsonRows::new(self.core.db.backend());
        let source = insert.from(rows)?;
        let (t, q, ts) = (
            insert.param(uow.tenant().0),
            insert.param(quote),
            insert.param(Utc::now()),
        );
        let sql = format!(
            "INSERT INTO quote_lines (id, tenant_id, quote_id, variant_id, sku, quantity, \
             list_price, unit_price, discount_bp, line_price, created_at, updated_at) \
             SELECT {}, {t}, {q}, {}, {}, {}, {}, {}, {}, {}, {ts}, {ts} FROM {source} \
             WHERE true ON CONFLICT (quote_id, variant_id) DO UPDATE SET \
             quantity = excluded.quantity, unit_price = excluded.unit_price, \
             discount_bp = excluded.discount_bp, line_price = excluded.line_price, \
             updated_at = excluded.updated_at",
            insert.uuid("id"),
            insert.uuid("variant"),
            insert.text("sku"),
            insert.int("quantity"),
            insert.int("list"),
            insert.int("unit"),
            insert.int("bp"),
            insert.int("price"),
        );
        insert.execute(uow.tx(), sql).await
    }

    /// Count, quoted subtotal and subtotal at the buyer's prices of a quote's lines (one
    /// statement).
    async fn sums_in(&self, uow: &UnitOfWork, quote: Uuid) -> AppResult<(i64, i64, i64)> {
        let backend = self.core.db.backend();
        let sql = if backend == sea_orm::DbBackend::Postgres {
            "SELECT count(*)::bigint AS n, coalesce(sum(line_price), 0)::bigint AS p, \
             coalesce(sum(quantity * list_price), 0)::bigint AS l FROM quote_lines \
             WHERE tenant_id = $1 AND quote_id = $2"
        } else {
            "SELECT count(*) AS n, coalesce(sum(line_price), 0) AS p, \
             coalesce(sum(quantity * list_price), 0) AS l FROM quote_lines \
             WHERE tenant_id = ? AND quote_id = ?"
        };
        let row = uow
            .tx()
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [uow.tenant().0.into(), quote.into()],
            ))
            .await
            .map_err(|e| {
                if e.to_string().contains("overflow") || e.to_string().contains("out of range") {
                    AppError::validation("lines", "the amount overflows")
                } else {
                    e.into()
                }
            })?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no sums")))?;
        Ok((
            row.try_get("", "n")?,
            row.try_get("", "p")?,
            row.try_get("", "l")?,
        ))
    }

    /// A rep's pricing (staff with `ORDER_WRITE`, or a sales rep of the company): line prices,
    /// line discounts and quantities, the order discount, the expiry and a note, while the
    /// quote is with the seller (`Requested` or `Renegotiating`). Every line is checked; one
    /// bad line refuses the whole change.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        input: UpdateInput,
    ) -> AppResult<Outcome<quote::Model>> {
        Self::require_seller(caller)?;
        if input.lines.len() > MAX_QUOTE_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {MAX_QUOTE_LINES} lines per call"),
            ));
        }
        if input.discount.is_some_and(|d| d < 0) {
            return Err(AppError::validation("discount", "must not be negative"));
        }
        if input.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(AppError::validation("expiresAt", "must be in the future"));
        }
        let comment =
            crate::kernel::text::optional_text("comment", input.comment.as_deref(), 2000)?;
        let mut uow = self.core.begin_for(caller).await?;
        let q = self.lock_in(&uow, id).await?;
        if let Err(r) = self.may_work(&uow, caller, &q).await? {
            return Ok(Err(r));
        }
        if q.state != state::REQUESTED && q.state != state::RENEGOTIATING {
            return Ok(Err(Refusal::new(
                "QUOTE_NOT_EDITABLE",
                format!(
                    "the quote is {}; it can be changed while requested or renegotiated",
                    q.state
                ),
            )));
        }
        let settings = Self::settings_in(uow.tx(), uow.tenant()).await?;
        let backend = self.core.db.backend();
        let ids: Vec<Uuid> = input.lines.iter().map(|l| l.line_id).collect();
        let current: HashMap<Uuid, line::Model> = if ids.is_empty() {
            HashMap::new()
        } else {
            line::Entity::find()
                .filter(line::Column::TenantId.eq(uow.tenant().0))
                .filter(line::Column::QuoteId.eq(q.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), ids))
                .all(uow.tx())
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect()
        };
        let mut errors = Vec::new();
        let mut rows = Vec::new();
        let mut deletes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, change) in input.lines.iter().enumerate() {
            let Some(l) = current.get(&change.line_id) else {
                errors.push(ItemError::new(
                    i,
                    "UNKNOWN_LINE",
                    Some("lineId"),
                    "the quote has no such line",
                ));
                continue;
            };
            if !seen.insert(l.id) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("lineId"),
                    "the line is named twice",
                ));
                continue;
            }
            let unit = change.unit_price.unwrap_or(l.unit_price);
            let bp = change.discount_bp.unwrap_or(l.discount_bp);
            let quantity = change.quantity.unwrap_or(l.quantity);
            if unit < 0 {
                errors.push(ItemError::new(
                    i,
                    "NEGATIVE_PRICE",
                    Some("unitPrice"),
                    "a price must not be negative",
                ));
                continue;
            }
            if !(0..=10_000).contains(&bp) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("discountBasisPoints"),
                    "must be 0-10000",
                ));
                continue;
            }
            if !(0..=MAX_LINE_QUANTITY).contains(&quantity) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("quantity"),
                    format!("must be 0-{MAX_LINE_QUANTITY} (0 removes the line)"),
                ));
                continue;
            }
            if !settings.allow_above_list && unit > l.list_price {
                errors.push(ItemError::new(
                    i,
                    "ABOVE_LIST_PRICE",
                    Some("unitPrice"),
                    format!(
                        "the buyer's own price is {}; quotes may not exceed it",
                        l.list_price
                    ),
                ));
                continue;
            }
            if quantity == 0 {
                deletes.push(l.id);
                continue;
            }
            let Some(price) = discounted(unit, bp).checked_mul(quantity) else {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("unitPrice"),
                    "the line price overflows",
                ));
                continue;
            };
            rows.push(LineRow {
                id: hex(l.id),
                variant: hex(l.variant_id),
                sku: l.sku.clone(),
                quantity,
                list: l.list_price,
                unit,
                bp: bp.into(),
                price,
            });
        }
        if !errors.is_empty() {
            return Ok(Err(Refusal {
                code: "LINES_REFUSED",
                message: format!(
                    "{} line(s) cannot be quoted as asked; nothing changed",
                    errors.len()
                ),
                lines: errors,
            }));
        }
        if !deletes.is_empty() {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(uow.tenant().0))
                .filter(line::Column::QuoteId.eq(q.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), deletes))
                .exec(uow.tx())
                .await?;
        }
        self.write_lines(&uow, q.id, &rows).await?;
        let (count, subtotal, list_subtotal) = self.sums_in(&uow, q.id).await?;
        if count == 0 {
            return Ok(Err(Refusal::new(
                "QUOTE_EMPTY",
                "a quote keeps at least one line",
            )));
        }
        let discount = input.discount.unwrap_or(q.discount);
        if discount > subtotal {
            return Ok(Err(Refusal::new(
                "DISCOUNT_EXCEEDS_SUBTOTAL",
                format!("the discount is more than the lines' {subtotal}"),
            )));
        }
        let mut sets = vec![
            (quote::Column::LineCount, Expr::value(count)),
            (quote::Column::Subtotal, Expr::value(subtotal)),
            (quote::Column::ListSubtotal, Expr::value(list_subtotal)),
            (quote::Column::Discount, Expr::value(discount)),
            (quote::Column::Total, Expr::value(subtotal - discount)),
            (quote::Column::RepId, Expr::value(caller.actor())),
        ];
        if let Some(t) = input.expires_at {
            sets.push((quote::Column::ExpiresAt, Expr::value(t)));
        }
        if comment.is_some() {
            sets.push((quote::Column::RepComment, Expr::value(comment)));
        }
        let q = uow
            .change::<quote::Entity>(q.id, sets, "vectis.quote.updated", quote_event)
            .await?;
        uow.commit().await?;
        Ok(Ok(q))
    }

    /// Sends a quote to the buyer (as [`Self::update`]): its prices are frozen from now on;
    /// it is valid until `expires_at` (else the expiry set before, else the tenant's validity
    /// from now).
    pub async fn send(
        &self,
        caller: &Caller,
        id: Uuid,
        expires_at: Option<DateTime<Utc>>,
        comment: Option<String>,
    ) -> AppResult<Outcome<quote::Model>> {
        Self::require_seller(caller)?;
        let now = Utc::now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(AppError::validation("expiresAt", "must be in the future"));
        }
        let comment = crate::kernel::text::optional_text("comment", comment.as_deref(), 2000)?;
        let mut uow = self.core.begin_for(caller).await?;
        let q = self.lock_in(&uow, id).await?;
        if let Err(r) = self.may_work(&uow, caller, &q).await? {
            return Ok(Err(r));
        }
        if q.state != state::REQUESTED && q.state != state::RENEGOTIATING {
            return Ok(Err(Refusal::new(
                "QUOTE_NOT_EDITABLE",
                format!(
                    "the quote is {}; only a requested or renegotiated quote is sent",
                    q.state
                ),
            )));
        }
        let settings = Self::settings_in(uow.tx(), uow.tenant()).await?;
        let until = expires_at
            .or(q.expires_at.filter(|t| *t > now))
            .unwrap_or_else(|| now + Duration::days(settings.validity_days.into()));
        let mut sets = vec![
            (quote::Column::State, Expr::value(state::SENT)),
            (quote::Column::SentAt, Expr::value(now)),
            (quote::Column::ExpiresAt, Expr::value(until)),
            (quote::Column::RepId, Expr::value(caller.actor())),
        ];
        if comment.is_some() {
            sets.push((quote::Column::RepComment, Expr::value(comment.clone())));
        }
        let q = uow
            .change::<quote::Entity>(q.id, sets, "vectis.quote.sent", |q| {
                let mut data = quote_event(q);
                data["comment"] = json!(q.rep_comment);
                data
            })
            .await?;
        self.history_in(&uow, &q, "sent", caller.actor(), comment)
            .await?;
        uow.commit().await?;
        Ok(Ok(q))
    }

    /// The buyer declines a sent quote with a reason.
    pub async fn decline(
        &self,
        caller: &Caller,
        id: Uuid,
        reason: &str,
    ) -> AppResult<Outcome<quote::Model>> {
        Self::require_buyer(caller)?;
        let reason = crate::kernel::text::text("reason", reason, 1000)?;
        self.answer(caller, id, state::DECLINED, "declined", reason)
            .await
    }

    /// The buyer asks for changes to a sent quote: it goes back to the rep, in a new round.
    pub async fn renegotiate(
        &self,
        caller: &Caller,
        id: Uuid,
        comment: &str,
    ) -> AppResult<Outcome<quote::Model>> {
        Self::require_buyer(caller)?;
        let comment = crate::kernel::text::text("comment", comment, 2000)?;
        self.answer(
            caller,
            id,
            state::RENEGOTIATING,
            "renegotiation_requested",
            comment,
        )
        .await
    }

    async fn answer(
        &self,
        caller: &Caller,
        id: Uuid,
        to: &'static str,
        action: &'static str,
        comment: String,
    ) -> AppResult<Outcome<quote::Model>> {
        let mut uow = self.core.begin_for(caller).await?;
        let q = self.lock_in(&uow, id).await?;
        self.may_respond(&uow, caller, &q).await?;
        if let Some(r) = Self::answerable(&q) {
            return Ok(Err(r));
        }
        let mut sets = vec![(quote::Column::State, Expr::value(to))];
        let event = if to == state::DECLINED {
            sets.push((quote::Column::DeclineReason, Expr::value(comment.clone())));
            "vectis.quote.declined"
        } else {
            sets.push((quote::Column::Round, Expr::value(q.round + 1)));
            "vectis.quote.renegotiation_requested"
        };
        let q = uow
            .change::<quote::Entity>(q.id, sets, event, |q| {
                let mut data = quote_event(q);
                data["comment"] = json!(comment);
                data
            })
            .await?;
        self.history_in(&uow, &q, action, caller.actor(), Some(comment.clone()))
            .await?;
        uow.commit().await?;
        Ok(Ok(q))
    }

    /// Inside the placing unit of work: locks the quote, checks the buyer may accept it now,
    /// marks it accepted by the order `cart` will become and fills that cart with its lines
    /// at the quoted prices.
    pub(crate) async fn accept_in(
        &self,
        uow: &mut UnitOfWork,
        caller: &Caller,
        buyer: &crate::pricing::service::Buyer,
        id: Uuid,
    ) -> AppResult<Outcome<order::Model>> {
        let q = self.lock_in(uow, id).await?;
        self.may_respond(uow, caller, &q).await?;
        if let Some(r) = Self::answerable(&q) {
            return Ok(Err(r));
        }
        // The order is placed for the company the caller acts in: the quote's own.
        if caller.membership().map(|m| m.company_id) != Some(q.company_id) {
            return Ok(Err(Refusal::new(
                "QUOTE_OTHER_COMPANY",
                "accept the quote as a user of the company it was made for",
            )));
        }
        let lines: Vec<(Uuid, i64)> = line::Entity::find()
            .select_only()
            .column(line::Column::VariantId)
            .column(line::Column::Quantity)
            .filter(line::Column::TenantId.eq(uow.tenant().0))
            .filter(line::Column::QuoteId.eq(q.id))
            .into_tuple()
            .all(uow.tx())
            .await?;
        let currency: CurrencyCode = q
            .currency
            .parse()
            .map_err(|e: vectis_strategies::MoneyError| AppError::Internal(e.into()))?;
        let cart = self
            .cart
            .quote_cart_in(uow, buyer, q.id, currency, &lines)
            .await?;
        let q = uow
            .change::<quote::Entity>(
                q.id,
                vec![
                    (quote::Column::State, Expr::value(state::ACCEPTED)),
                    (quote::Column::OrderId, Expr::value(cart.id)),
                ],
                "vectis.quote.accepted",
                |q| {
                    let mut data = quote_event(q);
                    data["orderId"] = json!(q.order_id);
                    data
                },
            )
            .await?;
        self.history_in(uow, &q, "accepted", caller.actor(), None)
            .await?;
        Ok(Ok(cart))
    }

    /// When the payment of an acceptance is declined, the quote is open to be accepted
    /// again (its cart waits under the quote's key).
    pub(crate) async fn reopen_in(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        why: &str,
    ) -> AppResult<()> {
        let q = self.lock_in(uow, id).await?;
        if q.state != state::ACCEPTED {
            return Ok(());
        }
        let why = why.to_owned();
        uow.change::<quote::Entity>(
            q.id,
            vec![
                (quote::Column::State, Expr::value(state::SENT)),
                (quote::Column::OrderId, Expr::value(None::<Uuid>)),
            ],
            "vectis.quote.reopened",
            |q| {
                let mut data = quote_event(q);
                data["reason"] = json!(why);
                data
            },
        )
        .await?;
        Ok(())
    }

    /// Marks sent quotes past their expiry as expired, with an event each (a sweep of
    /// `vectis serve`); returns how many.
    pub async fn expire(&self, limit: u64) -> AppResult<usize> {
        let now = Utc::now();
        let tx = self.core.db.read(crate::db::Scope::System).await?;
        let due: Vec<(Uuid, Uuid)> = quote::Entity::find()
            .select_only()
            .column(quote::Column::TenantId)
            .column(quote::Column::Id)
            .filter(quote::Column::State.eq(state::SENT))
            .filter(quote::Column::ExpiresAt.lte(now))
            .limit(limit)
            .into_tuple()
            .all(&tx)
            .await?;
        tx.commit().await?;
        let mut expired = 0;
        for (tenant, id) in due {
            let mut uow = self.core.begin(TenantId(tenant), None).await?;
            let q = self.lock_in(&uow, id).await?;
            // Answered meanwhile.
            if q.state != state::SENT || q.expires_at.is_none_or(|t| t > now) {
                continue;
            }
            let q = uow
                .change::<quote::Entity>(
                    q.id,
                    vec![(quote::Column::State, Expr::value(state::EXPIRED))],
                    "vectis.quote.expired",
                    quote_event,
                )
                .await?;
            self.history_in(&uow, &q, "expired", None, None).await?;
            uow.commit().await?;
            expired += 1;
        }
        Ok(expired)
    }

    /// A quote the caller may see.
    pub async fn quote(&self, caller: &Caller, id: Uuid) -> AppResult<quote::Model> {
        let uow = self.core.begin_for(caller).await?;
        let q = quote::Entity::find()
            .filter(quote::Column::TenantId.eq(caller.tenant.0))
            .filter(quote::Column::Id.eq(id))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Quote", id))?;
        if let Side::Seller { visible: false, .. } = self.side_in(uow.tx(), caller, &q).await? {
            return Err(AppError::not_found("Quote", id));
        }
        uow.commit().await?;
        Ok(q)
    }

    /// Quotes the caller may see, newest first: a company user's own (all of their company
    /// and its divisions with `VIEW_ORDERS`), a sales rep's companies', every quote for staff
    /// with `ORDER_READ`.
    pub async fn list(
        &self,
        caller: &Caller,
        state: Option<String>,
        company: Option<Uuid>,
        first: u64,
    ) -> AppResult<Vec<quote::Model>> {
        let tenant = caller.tenant;
        let mut query = quote::Entity::find().filter(quote::Column::TenantId.eq(tenant.0));
        if let Some(s) = state {
            query = query.filter(quote::Column::State.eq(s));
        }
        if let Some(c) = company {
            query = query.filter(quote::Column::CompanyId.eq(c));
        }
        let uow = self.core.begin_for(caller).await?;
        let backend = self.core.db.backend();
        match &caller.principal {
            Principal::Storefront => {
                return Err(AppError::Unauthenticated("log in to see quotes".into()));
            }
            Principal::Customer { id, membership, .. } => {
                let m = membership
                    .as_ref()
                    .ok_or_else(|| AppError::Forbidden("COMPANY_USER".into()))?;
                let current = CompaniesService::current_membership_in(
                    uow.tx(),
                    tenant,
                    *id,
                    m.company_id,
                    m.location_id,
                )
                .await?
                .ok_or_else(|| AppError::Forbidden("COMPANY_USER".into()))?;
                if current.can(CompanyPermission::ViewOrders) {
                    let tree = self
                        .companies
                        .subtree_of(uow.tx(), tenant, m.company_id)
                        .await?;
                    query = query.filter(id_in(
                        backend,
                        (quote::Entity, quote::Column::CompanyId),
                        tree,
                    ));
                } else {
                    query = query.filter(quote::Column::CustomerId.eq(*id));
                }
            }
            _ if caller.has(Permission::OrderRead) || caller.has(Permission::OrderWrite) => {}
            _ if caller.has(Permission::Impersonate) => {
                let staff = caller.staff_id().unwrap_or_default();
                let companies = self
                    .companies
                    .rep_companies_in(uow.tx(), tenant, staff)
                    .await?;
                query = query.filter(id_in(
                    backend,
                    (quote::Entity, quote::Column::CompanyId),
                    companies,
                ));
            }
            _ => return Err(AppError::Forbidden("ORDER_READ".into())),
        }
        let rows = query
            .order_by_desc(quote::Column::Id)
            .limit(first.min(100))
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        Ok(rows)
    }

    /// A page of a quote's lines in request order (with one extra row when more follow).
    pub async fn lines(
        &self,
        tenant: TenantId,
        quote: Uuid,
        request: PageRequest,
    ) -> AppResult<Vec<line::Model>> {
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    let q = line::Entity::find()
                        .filter(line::Column::TenantId.eq(tenant.0))
                        .filter(line::Column::QuoteId.eq(quote));
                    Ok(request.apply(q, line::Column::Id).all(tx).await?)
                })
            })
            .await
    }

    /// A quote's history, oldest first.
    pub async fn history(&self, tenant: TenantId, quote: Uuid) -> AppResult<Vec<history::Model>> {
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(history::Entity::find()
                        .filter(history::Column::TenantId.eq(tenant.0))
                        .filter(history::Column::QuoteId.eq(quote))
                        .order_by_asc(history::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}
