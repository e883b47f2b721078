//! Requisition lists: who sees and changes which list, filling lists from every source in
//! constant statements (one variant lookup, one multi-row upsert, one aggregate), and adding a
//! list to the cart through the cart's own bulk add.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::entity::{line, list};
use crate::auth::{Caller, CompanyPermission, Permission, Principal};
use crate::cart::CartService;
use crate::cart::entity::line as order_line;
use crate::cart::service::{CartChange, CartOutcome, LineInput};
use crate::catalog::read as catalog;
use crate::catalog::service::ARCHIVED;
use crate::companies::CompaniesService;
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::db::page::PageRequest;
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, UnitOfWork};
use crate::kernel::TenantId;
use crate::pricing::service::MAX_LINE_QUANTITY;

/// Most lines a list holds, and most items one call takes.
pub const MAX_LIST_LINES: usize = crate::cart::service::MAX_CART_LINES;

/// Where lines come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Lines by SKU or variant id.
    Lines(Vec<LineInput>),
    /// The caller's active cart.
    Cart,
    /// An order the caller may see.
    Order(Uuid),
}

/// A line to change: by line id or SKU; quantity 0 removes it.
#[derive(Debug, Clone, Default)]
pub struct LineSet {
    /// The list line.
    pub line_id: Option<Uuid>,
    /// Or its SKU.
    pub sku: Option<String>,
    /// New quantity.
    pub quantity: i64,
}

/// What a list change did: all or nothing; `errors` by position in the input.
#[derive(Debug, Clone)]
pub struct ListOutcome {
    /// The list after the change (as it was when nothing applied).
    pub list: Option<list::Model>,
    /// Whether it applied.
    pub applied: bool,
    /// Invalid items.
    pub errors: Vec<ItemError>,
}

/// Requisition lists.
#[derive(Clone)]
pub struct RequisitionListsService {
    core: Core,
    cart: CartService,
    orders: crate::orders::OrdersService,
}

fn list_event(l: &list::Model) -> serde_json::Value {
    json!({
        "listId": l.id,
        "companyId": l.company_id,
        "ownerId": l.owner_id,
        "name": l.name,
        "shared": l.shared,
        "lineCount": l.line_count,
    })
}

#[derive(Serialize)]
struct Row {
    id: String,
    variant: String,
    quantity: i64,
}

impl RequisitionListsService {
    /// The service.
    pub fn new(core: Core, cart: CartService, orders: crate::orders::OrdersService) -> Self {
        RequisitionListsService { core, cart, orders }
    }

    /// Fails unless the caller is a company user (checked before any input is looked at).
    pub fn check_caller(caller: &Caller) -> AppResult<()> {
        Self::require_company_user(caller).map(|_| ())
    }

    /// Company users only (before any input is looked at).
    fn require_company_user(caller: &Caller) -> AppResult<(Uuid, Uuid, Option<Uuid>)> {
        let (customer, membership) = caller.require_customer()?;
        let m = membership.ok_or_else(|| AppError::Forbidden("COMPANY_USER".into()))?;
        Ok((customer, m.company_id, m.location_id))
    }

    /// The caller's permissions in their company, as stored now.
    async fn permissions_in(
        tx: &sea_orm::DatabaseTransaction,
        caller: &Caller,
    ) -> AppResult<(Uuid, Uuid, Vec<CompanyPermission>)> {
        let (customer, company, location) = Self::require_company_user(caller)?;
        let m =
            CompaniesService::current_membership_in(tx, caller.tenant, customer, company, location)
                .await?
                .ok_or_else(|| AppError::Forbidden("COMPANY_USER".into()))?;
        Ok((customer, company, m.permissions))
    }

    /// Loads (and with `write`, locks) a list the caller may see, or change: their own, or
    /// their company's shared lists (changed with `MANAGE_REQUISITION_LISTS`). Staff with
    /// `COMPANY_READ` read every list.
    async fn authorized(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        caller: &Caller,
        id: Uuid,
        write: bool,
    ) -> AppResult<list::Model> {
        let not_found = || AppError::not_found("RequisitionList", id);
        let mut find = list::Entity::find()
            .filter(list::Column::TenantId.eq(caller.tenant.0))
            .filter(list::Column::Id.eq(id));
        if write {
            find = find.lock_exclusive();
        }
        let found = find.one(tx).await?.ok_or_else(not_found)?;
        if let Principal::Staff { .. } | Principal::ApiKey { .. } = caller.principal {
            if write {
                return Err(AppError::Forbidden("COMPANY_USER".into()));
            }
            caller.require(Permission::CompanyRead)?;
            return Ok(found);
        }
        let (customer, company, permissions) = Self::permissions_in(tx, caller).await?;
        let own = found.owner_id == customer;
        if found.company_id != company || (!own && !found.shared) {
            return Err(not_found());
        }
        if write
            && found.shared
            && !permissions.contains(&CompanyPermission::ManageRequisitionLists)
        {
            return Err(AppError::Forbidden("MANAGE_REQUISITION_LISTS".into()));
        }
        if write && !own && !found.shared {
            return Err(not_found());
        }
        Ok(found)
    }

    fn check_name(name: &str, description: Option<&str>) -> AppResult<(String, Option<String>)> {
        Ok((
            crate::kernel::text::text("name", name, 200)?,
            crate::kernel::text::optional_text("description", description, 1000)?,
        ))
    }

    /// Creates a list (a company user with `PLACE_ORDERS`; a shared one needs
    /// `MANAGE_REQUISITION_LISTS`), filled from `source` if given.
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        description: Option<&str>,
        shared: bool,
        source: Option<Source>,
    ) -> AppResult<ListOutcome> {
        Self::require_company_user(caller)?;
        let (name, description) = Self::check_name(name, description)?;
        let mut uow = self.core.begin_for(caller).await?;
        let (customer, company, permissions) = Self::permissions_in(uow.tx(), caller).await?;
        if !permissions.contains(&CompanyPermission::PlaceOrders) {
            return Err(AppError::Forbidden("PLACE_ORDERS".into()));
        }
        if shared && !permissions.contains(&CompanyPermission::ManageRequisitionLists) {
            return Err(AppError::Forbidden("MANAGE_REQUISITION_LISTS".into()));
        }
        let now = Utc::now();
        let id = Uuid::now_v7();
        list::Entity::insert(list::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            created_at: Set(now),
            updated_at: Set(now),
            company_id: Set(company),
            owner_id: Set(customer),
            name: Set(name),
            description: Set(description),
            shared: Set(shared),
            line_count: Set(0),
            version: Set(0),
        })
        .exec_without_returning(uow.tx())
        .await?;
        let count = match source {
            Some(source) => match self.fill_in(&uow, caller, id, source).await? {
                Ok(count) => count,
                Err(errors) => {
                    return Ok(ListOutcome {
                        list: None,
                        applied: false,
                        errors,
                    });
                }
            },
            None => 0,
        };
        let saved = uow
            .change::<list::Entity>(
                id,
                vec![(list::Column::LineCount, Expr::value(count))],
                "vectis.requisition_list.created",
                list_event,
            )
            .await?;
        uow.commit().await?;
        Ok(ListOutcome {
            list: Some(saved),
            applied: true,
            errors: Vec::new(),
        })
    }

    /// Renames, describes or shares a list (as any change to it).
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        name: Option<&str>,
        description: Option<Option<&str>>,
        shared: Option<bool>,
    ) -> AppResult<list::Model> {
        Self::require_company_user(caller)?;
        let name = name
            .map(|n| crate::kernel::text::text("name", n, 200))
            .transpose()?;
        let description = description
            .map(|d| crate::kernel::text::optional_text("description", d, 1000))
            .transpose()?;
        let mut uow = self.core.begin_for(caller).await?;
        let found = self.authorized(uow.tx(), caller, id, true).await?;
        if shared.is_some_and(|s| s != found.shared) {
            let (_, _, permissions) = Self::permissions_in(uow.tx(), caller).await?;
            if !permissions.contains(&CompanyPermission::ManageRequisitionLists) {
                return Err(AppError::Forbidden("MANAGE_REQUISITION_LISTS".into()));
            }
        }
        let mut sets = Vec::new();
        if let Some(n) = name {
            sets.push((list::Column::Name, Expr::value(n)));
        }
        if let Some(d) = description {
            sets.push((list::Column::Description, Expr::value(d)));
        }
        if let Some(s) = shared {
            sets.push((list::Column::Shared, Expr::value(s)));
        }
        let saved = uow
            .change::<list::Entity>(
                found.id,
                sets,
                "vectis.requisition_list.updated",
                list_event,
            )
            .await?;
        uow.commit().await?;
        Ok(saved)
    }

    /// Adds lines from `source` (quantities of SKUs already on the list add up).
    pub async fn add(&self, caller: &Caller, id: Uuid, source: Source) -> AppResult<ListOutcome> {
        Self::require_company_user(caller)?;
        let uow = self.core.begin_for(caller).await?;
        let found = self.authorized(uow.tx(), caller, id, true).await?;
        let count = match self.fill_in(&uow, caller, found.id, source).await? {
            Ok(count) => count,
            Err(errors) => {
                return Ok(ListOutcome {
                    list: Some(found),
                    applied: false,
                    errors,
                });
            }
        };
        self.finish(uow, found, count).await
    }

    /// Sets quantities of lines by line id or SKU; 0 removes a line.
    pub async fn set(
        &self,
        caller: &Caller,
        id: Uuid,
        lines: Vec<LineSet>,
    ) -> AppResult<ListOutcome> {
        Self::require_company_user(caller)?;
        if lines.len() > MAX_LIST_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {MAX_LIST_LINES} lines per call"),
            ));
        }
        let uow = self.core.begin_for(caller).await?;
        let found = self.authorized(uow.tx(), caller, id, true).await?;
        let tenant = caller.tenant;
        let current = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::ListId.eq(found.id))
            .all(uow.tx())
            .await?;
        let skus: Vec<String> = lines.iter().filter_map(|l| l.sku.clone()).collect();
        let by_sku: HashMap<String, Uuid> = catalog::variants_by_sku(uow.tx(), tenant, skus, true)
            .await?
            .into_iter()
            .map(|v| (v.sku, v.id))
            .collect();
        let by_line: HashMap<Uuid, &line::Model> = current.iter().map(|l| (l.id, l)).collect();
        let by_variant: HashMap<Uuid, &line::Model> =
            current.iter().map(|l| (l.variant_id, l)).collect();
        let mut errors = Vec::new();
        let mut rows = Vec::new();
        let mut deletes = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let target = match (&l.line_id, &l.sku) {
                (Some(id), _) => by_line.get(id).copied(),
                (None, Some(sku)) => by_sku.get(sku).and_then(|v| by_variant.get(v).copied()),
                (None, None) => None,
            };
            let Some(target) = target else {
                errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("lineId"),
                    "the list has no such line",
                ));
                continue;
            };
            if !(0..=MAX_LINE_QUANTITY).contains(&l.quantity) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("quantity"),
                    format!("must be 0-{MAX_LINE_QUANTITY} (0 removes the line)"),
                ));
                continue;
            }
            if l.quantity == 0 {
                deletes.push(target.id);
            } else {
                rows.push(Row {
                    id: hex(target.id),
                    variant: hex(target.variant_id),
                    quantity: l.quantity,
                });
            }
        }
        if !errors.is_empty() {
            return Ok(ListOutcome {
                list: Some(found),
                applied: false,
                errors,
            });
        }
        if !deletes.is_empty() {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(tenant.0))
                .filter(line::Column::ListId.eq(found.id))
                .filter(id_in(
                    self.core.db.backend(),
                    (line::Entity, line::Column::Id),
                    deletes,
                ))
                .exec(uow.tx())
                .await?;
        }
        self.upsert(&uow, found.id, &rows, false).await?;
        let (count, _) = self.sums(&uow, found.id).await?;
        self.finish(uow, found, count).await
    }

    async fn finish(
        &self,
        mut uow: UnitOfWork,
        found: list::Model,
        count: i64,
    ) -> AppResult<ListOutcome> {
        let saved = uow
            .change::<list::Entity>(
                found.id,
                vec![(list::Column::LineCount, Expr::value(count))],
                "vectis.requisition_list.lines_changed",
                list_event,
            )
            .await?;
        uow.commit().await?;
        Ok(ListOutcome {
            list: Some(saved),
            applied: true,
            errors: Vec::new(),
        })
    }

    /// Deletes a list (as any change to it).
    pub async fn delete(&self, caller: &Caller, id: Uuid) -> AppResult<bool> {
        Self::require_company_user(caller)?;
        let mut uow = self.core.begin_for(caller).await?;
        let found = self.authorized(uow.tx(), caller, id, true).await?;
        uow.change::<list::Entity>(
            found.id,
            Vec::new(),
            "vectis.requisition_list.deleted",
            list_event,
        )
        .await?;
        list::Entity::delete_by_id(found.id).exec(uow.tx()).await?;
        uow.commit().await?;
        Ok(true)
    }

    /// Adds the list's lines (or those of `line_ids`) to the caller's cart in one bulk add:
    /// lines that cannot be bought (archived, no price) are reported by their position in
    /// the list, the rest are added.
    pub async fn add_to_cart(
        &self,
        caller: &Caller,
        id: Uuid,
        line_ids: Option<Vec<Uuid>>,
    ) -> AppResult<CartOutcome> {
        Self::require_company_user(caller)?;
        let tenant = caller.tenant;
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let found = self.authorized(&tx, caller, id, false).await?;
        let mut lines = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::ListId.eq(found.id))
            .order_by_asc(line::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        if let Some(ids) = line_ids {
            let wanted: std::collections::HashSet<Uuid> = ids.into_iter().collect();
            lines.retain(|l| wanted.contains(&l.id));
        }
        let items = lines
            .iter()
            .map(|l| LineInput {
                variant_id: Some(l.variant_id),
                sku: None,
                quantity: l.quantity,
            })
            .collect();
        self.cart
            .change(caller, None, None, CartChange::AddLines(items), true)
            .await
    }

    /// Resolves `source` to (variant, quantity) and upserts them, adding quantities; the line
    /// count, or the item errors (nothing is written then).
    async fn fill_in(
        &self,
        uow: &UnitOfWork,
        caller: &Caller,
        list_id: Uuid,
        source: Source,
    ) -> AppResult<Result<i64, Vec<ItemError>>> {
        let tenant = caller.tenant;
        let items: Vec<(Uuid, i64)> = match source {
            Source::Lines(inputs) => {
                if inputs.len() > MAX_LIST_LINES {
                    return Err(AppError::validation(
                        "lines",
                        format!("at most {MAX_LIST_LINES} lines per call"),
                    ));
                }
                let skus: Vec<String> = inputs.iter().filter_map(|l| l.sku.clone()).collect();
                let ids: Vec<Uuid> = inputs.iter().filter_map(|l| l.variant_id).collect();
                let mut variants = catalog::variants_by_sku(uow.tx(), tenant, skus, true).await?;
                variants.extend(catalog::variants_by_id(uow.tx(), tenant, ids, true).await?);
                let by_id: HashMap<Uuid, &crate::catalog::entity::variant::Model> =
                    variants.iter().map(|v| (v.id, v)).collect();
                let by_sku: HashMap<&str, &crate::catalog::entity::variant::Model> =
                    variants.iter().map(|v| (v.sku.as_str(), v)).collect();
                let mut errors = Vec::new();
                let mut out = Vec::with_capacity(inputs.len());
                for (i, l) in inputs.iter().enumerate() {
                    let v = match (&l.variant_id, &l.sku) {
                        (Some(id), _) => by_id.get(id),
                        (None, Some(sku)) => by_sku.get(sku.as_str()),
                        (None, None) => None,
                    };
                    match v {
                        None => errors.push(ItemError::new(
                            i,
                            code::NOT_FOUND,
                            Some("sku"),
                            "no such variant",
                        )),
                        Some(v) if v.status == ARCHIVED => errors.push(ItemError::new(
                            i,
                            crate::cart::service::item_code::ARCHIVED,
                            Some("sku"),
                            "the variant is archived",
                        )),
                        Some(_) if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) => {
                            errors.push(ItemError::new(
                                i,
                                code::VALIDATION,
                                Some("quantity"),
                                format!("must be 1-{MAX_LINE_QUANTITY}"),
                            ))
                        }
                        Some(v) => out.push((v.id, l.quantity)),
                    }
                }
                if !errors.is_empty() {
                    return Ok(Err(errors));
                }
                out
            }
            Source::Cart => match self.cart.active(caller, None).await? {
                Some(cart) => Self::order_lines(uow, cart.id).await?,
                None => Vec::new(),
            },
            Source::Order(order) => {
                let placed = self.orders.order(caller, order).await?;
                Self::order_lines(uow, placed.id).await?
            }
        };
        // Several items of one variant add up.
        let mut merged: Vec<(Uuid, i64)> = Vec::with_capacity(items.len());
        let mut at: HashMap<Uuid, usize> = HashMap::new();
        for (v, q) in items {
            match at.get(&v) {
                Some(&i) => merged[i].1 = merged[i].1.saturating_add(q),
                None => {
                    at.insert(v, merged.len());
                    merged.push((v, q));
                }
            }
        }
        let rows: Vec<Row> = merged
            .into_iter()
            .map(|(v, q)| Row {
                id: hex(Uuid::now_v7()),
                variant: hex(v),
                quantity: q,
            })
            .collect();
        self.upsert(uow, list_id, &rows, true).await?;
        let (count, max) = self.sums(uow, list_id).await?;
        if count > MAX_LIST_LINES as i64 {
            return Err(AppError::Rejected {
                code: "LIST_FULL",
                message: format!("a list holds at most {MAX_LIST_LINES} lines"),
            });
        }
        if max > MAX_LINE_QUANTITY {
            return Err(AppError::validation(
                "quantity",
                format!("a line holds at most {MAX_LINE_QUANTITY}"),
            ));
        }
        Ok(Ok(count))
    }

    /// Variants and quantities still ordered of an order's (or cart's) lines.
    async fn order_lines(uow: &UnitOfWork, order_id: Uuid) -> AppResult<Vec<(Uuid, i64)>> {
        Ok(order_line::Entity::find()
            .filter(order_line::Column::TenantId.eq(uow.tenant().0))
            .filter(order_line::Column::OrderId.eq(order_id))
            .order_by_asc(order_line::Column::Id)
            .all(uow.tx())
            .await?
            .into_iter()
            .filter(|l| l.current_quantity() > 0)
            .map(|l| (l.variant_id, l.current_quantity()))
            .collect())
    }

    /// One upsert of `rows`; with `add`, quantities of lines already there add up.
    async fn upsert(
        &self,
        uow: &UnitOfWork,
        list_id: Uuid,
        rows: &[Row],
        add: bool,
    ) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = JsonRows::new(self.core.db.backend());
        let source = insert.from(rows)?;
        let (t, l, ts) = (
            insert.param(uow.tenant().0),
            insert.param(list_id),
            insert.param(Utc::now()),
        );
        let quantity = if add {
            "requisition_list_lines.quantity + excluded.quantity"
        } else {
            "excluded.quantity"
        };
        let sql = format!(
            "INSERT INTO requisition_list_lines (id, tenant_id, list_id, variant_id, quantity, \
             created_at, updated_at) SELECT {}, {t}, {l}, {}, {}, {ts}, {ts} FROM {source} \
             WHERE true ON CONFLICT (list_id, variant_id) DO UPDATE SET quantity = {quantity}, \
             updated_at = excluded.updated_at",
            insert.uuid("id"),
            insert.uuid("variant"),
            insert.int("quantity"),
        );
        insert.execute(uow.tx(), sql).await
    }

    /// Lines and the largest quantity of a list (one statement).
    async fn sums(&self, uow: &UnitOfWork, list_id: Uuid) -> AppResult<(i64, i64)> {
        let backend = self.core.db.backend();
        let sql = if backend == sea_orm::DbBackend::Postgres {
            "SELECT count(*)::bigint AS n, coalesce(max(quantity), 0)::bigint AS m \
             FROM requisition_list_lines WHERE tenant_id = $1 AND list_id = $2"
        } else {
            "SELECT count(*) AS n, coalesce(max(quantity), 0) AS m \
             FROM requisition_list_lines WHERE tenant_id = ? AND list_id = ?"
        };
        let row = uow
            .tx()
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [uow.tenant().0.into(), list_id.into()],
            ))
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no sums")))?;
        Ok((row.try_get("", "n")?, row.try_get("", "m")?))
    }

    /// A list the caller may see.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> AppResult<list::Model> {
        let tx = self
            .core
            .db
            .read(crate::db::Scope::Tenant(caller.tenant))
            .await?;
        let found = self.authorized(&tx, caller, id, false).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The caller's lists and their company's shared lists, by name (staff with
    /// `COMPANY_READ`: a company's lists).
    pub async fn list(
        &self,
        caller: &Caller,
        company: Option<Uuid>,
    ) -> AppResult<Vec<list::Model>> {
        let tenant = caller.tenant;
        let tx = self.core.db.read(crate::db::Scope::Tenant(tenant)).await?;
        let mut query = list::Entity::find().filter(list::Column::TenantId.eq(tenant.0));
        match &caller.principal {
            Principal::Staff { .. } | Principal::ApiKey { .. } => {
                caller.require(Permission::CompanyRead)?;
                let company = company
                    .ok_or_else(|| AppError::validation("companyId", "staff name the company"))?;
                query = query.filter(list::Column::CompanyId.eq(company));
            }
            _ => {
                let (customer, company, _) = Self::permissions_in(&tx, caller).await?;
                query = query.filter(list::Column::CompanyId.eq(company)).filter(
                    sea_orm::Condition::any()
                        .add(list::Column::OwnerId.eq(customer))
                        .add(list::Column::Shared.eq(true)),
                );
            }
        }
        let rows = query
            .order_by_asc(list::Column::Name)
            .order_by_asc(list::Column::Id)
            .limit(200)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// A page of a list's lines in the order they were added (one extra when more follow).
    pub async fn lines(
        &self,
        tenant: TenantId,
        list_id: Uuid,
        request: PageRequest,
    ) -> AppResult<Vec<line::Model>> {
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    let q = line::Entity::find()
                        .filter(line::Column::TenantId.eq(tenant.0))
                        .filter(line::Column::ListId.eq(list_id));
                    Ok(request.apply(q, line::Column::Id).all(tx).await?)
                })
            })
            .await
    }
}
