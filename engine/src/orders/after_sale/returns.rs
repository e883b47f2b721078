//! Returns: a buyer (or staff) asks to send back shipped units, with a reason per line; staff
//! receive them, putting each line's units back into stock at a location or writing them
//! off, and refund through the payment handlers: by default the returned units' share of what
//! the order charged for goods (its discount and tax included), or an amount staff choose;
//! never more than was paid and not yet refunded.
//!
//! Every step locks the order first: concurrent requests cannot together return more than
//! shipped, and a return is received (restocked, refunded) once.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::super::service::{OrdersService, PaymentFailure, TransitionFailure};
use super::cancel_lines::{LineUnits, share};
use super::refunds::GiveBack;
use crate::auth::{Caller, Permission};
use crate::cart::entity::{line, order};
use crate::db::id_in;
use crate::db::json_rows::{JsonRows, hex};
use crate::error::{AppError, AppResult};
use crate::inventory::InventoryService;
use crate::inventory::entity::{order_return, return_line};
use crate::inventory::fulfil::LineRefusal;
use crate::inventory::service::{Change, StockRow, kind};
use crate::kernel::TenantId;

/// Return states.
pub mod return_state {
    /// Asked for; the goods are on their way back.
    pub const REQUESTED: &str = "Requested";
    /// Received: restocked or written off, and refunded.
    pub const RECEIVED: &str = "Received";
    /// Declined by staff; its units may be returned again.
    pub const DECLINED: &str = "Declined";
}

/// Units of a line to return, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    /// The line and units.
    pub units: LineUnits,
    /// Why (1-500 characters).
    pub reason: String,
}

/// What `requestReturn` and `receiveReturn` did.
#[derive(Debug)]
pub enum ReturnOutcome {
    /// The return, with its lines and the order's currency.
    Return(Box<(order_return::Model, Vec<return_line::Model>, String)>),
    /// Lines that cannot be returned as asked; nothing changed.
    Refused(Vec<LineRefusal>),
    /// Not now: `NOTHING_SHIPPED`, `RETURN_NOT_OPEN` (received or declined already).
    NotReturnable(TransitionFailure),
    /// The refund was refused (`REFUND_EXCEEDS_PAYMENT`); nothing changed.
    Payment(PaymentFailure),
}

#[derive(Serialize)]
struct ReturnLineRow {
    id: String,
    line: String,
    quantity: i64,
    reason: String,
}

/// How staff receive a return.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// Where restocked units go back (a stock location's code); needed unless every line is
    /// written off.
    pub location: Option<String>,
    /// Return lines (by order line) written off instead of restocked.
    pub write_off: Vec<Uuid>,
    /// The refund; by default the returned units' share of what the order charged.
    pub refund: Option<i64>,
}

fn not_returnable(code: &str, message: String, o: &order::Model) -> ReturnOutcome {
    ReturnOutcome::NotReturnable(TransitionFailure {
        code: code.into(),
        message,
        from: o.state.clone(),
        to: o.state.clone(),
    })
}

impl OrdersService {
    /// Units of each line in the returns of `order` so far (declined ones aside).
    async fn returned_in<C: sea_orm::ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        order: Uuid,
    ) -> AppResult<HashMap<Uuid, i64>> {
        let ids: Vec<Uuid> = order_return::Entity::find()
            .filter(order_return::Column::TenantId.eq(tenant.0))
            .filter(order_return::Column::OrderId.eq(order))
            .filter(order_return::Column::State.ne(return_state::DECLINED))
            .all(tx)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for l in return_line::Entity::find()
            .filter(return_line::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                self.core.db.backend(),
                (return_line::Entity, return_line::Column::ReturnId),
                ids,
            ))
            .all(tx)
            .await?
        {
            *out.entry(l.line_id).or_insert(0) += l.quantity;
        }
        Ok(out)
    }

    /// Opens a return of shipped units of an order (its buyer, a company user with
    /// `PLACE_ORDERS` in its company, staff with `ORDER_WRITE`).
    pub async fn request_return(
        &self,
        caller: &Caller,
        order_id: Uuid,
        lines: Vec<ReturnLine>,
    ) -> AppResult<ReturnOutcome> {
        Self::buyer_or_staff(caller, "log in to return goods")?;
        if lines.is_empty() {
            return Err(AppError::validation("lines", "return at least one line"));
        }
        if lines.len() > crate::cart::service::MAX_CART_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {} lines", crate::cart::service::MAX_CART_LINES),
            ));
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, order_id)
            .await?
            .filter(|o| o.state != vectis_strategies::order_process::state::CART)
            .ok_or_else(|| AppError::not_found("Order", order_id))?;
        self.authorize(uow.tx(), caller, &order, true).await?;
        let shipped = InventoryService::shipped_in(uow.tx(), tenant, order.id).await?;
        if shipped.values().all(|s| *s == 0) {
            return Ok(not_returnable(
                "NOTHING_SHIPPED",
                "nothing of this order has shipped yet; cancel lines instead".into(),
                &order,
            ));
        }
        let returned = self.returned_in(uow.tx(), tenant, order.id).await?;
        let order_lines = self.order_lines_in(&uow, &order).await?;
        let skus = self.skus_in(&uow, &order_lines).await?;
        let by_id: HashMap<Uuid, &line::Model> = order_lines.iter().map(|l| (l.id, l)).collect();
        let mut refusals = Vec::new();
        let mut seen = HashSet::new();
        for r in &lines {
            let u = r.units;
            let Some(l) = by_id.get(&u.line_id) else {
                refusals.push(LineRefusal::unknown(u.line_id, u.quantity));
                continue;
            };
            let returnable = shipped.get(&l.id).copied().unwrap_or(0)
                - returned.get(&l.id).copied().unwrap_or(0);
            let refusal = |code| LineRefusal {
                code,
                line_id: u.line_id,
                sku: skus.get(&l.variant_id).cloned().unwrap_or_default(),
                requested: u.quantity,
                possible: returnable.max(0),
            };
            let reason = r.reason.trim();
            if u.quantity <= 0
                || !seen.insert(u.line_id)
                || reason.is_empty()
                || reason.chars().count() > 500
            {
                refusals.push(refusal("VALIDATION"));
            } else if u.quantity > returnable {
                refusals.push(refusal("EXCEEDS_RETURNABLE"));
            }
        }
        if !refusals.is_empty() {
            return Ok(ReturnOutcome::Refused(refusals));
        }
        let now = Utc::now();
        let created = order_return::Entity::insert(order_return::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            order_id: Set(order.id),
            state: Set(return_state::REQUESTED.into()),
            refunded: Set(0),
            requested_by: Set(caller.actor()),
            created_at: Set(now),
            updated_at: Set(now),
            received_at: Set(None),
            decline_reason: Set(None),
        })
        .exec_with_returning(uow.tx())
        .await?;
        let rows: Vec<ReturnLineRow> = lines
            .iter()
            .map(|r| ReturnLineRow {
                id: hex(Uuid::now_v7()),
                line: hex(r.units.line_id),
                quantity: r.units.quantity,
                reason: r.reason.trim().to_owned(),
            })
            .collect();
        let mut insert = JsonRows::new(self.core.db.backend());
        let source = insert.from(&rows)?;
        let (t, ret, ts) = (
            insert.param(tenant.0),
            insert.param(created.id),
            insert.param(now),
        );
        let sql = format!(
            "INSERT INTO return_lines (id, tenant_id, return_id, line_id, quantity, reason, \
             location_id, restocked, created_at, updated_at) \
             SELECT {}, {t}, {ret}, {}, {}, {}, NULL, NULL, {ts}, {ts} FROM {source}",
            insert.uuid("id"),
            insert.uuid("line"),
            insert.int("quantity"),
            insert.text("reason"),
        );
        insert.execute(uow.tx(), sql).await?;
        let event_lines: Vec<serde_json::Value> = lines
            .iter()
            .map(|r| {
                json!({ "lineId": r.units.line_id, "quantity": r.units.quantity,
                    "reason": r.reason.trim(),
                    "sku": by_id.get(&r.units.line_id).and_then(|l| skus.get(&l.variant_id)) })
            })
            .collect();
        uow.change::<order::Entity>(
            order.id,
            Vec::new(),
            "vectis.order.return_requested",
            |o| json!({ "orderId": o.id, "code": o.code, "returnId": created.id, "lines": event_lines }),
        )
        .await?;
        let saved = return_line::Entity::find()
            .filter(return_line::Column::TenantId.eq(tenant.0))
            .filter(return_line::Column::ReturnId.eq(created.id))
            .order_by_asc(return_line::Column::Id)
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        Ok(ReturnOutcome::Return(Box::new((
            created,
            saved,
            order.currency,
        ))))
    }

    /// Receives a requested return (`ORDER_WRITE`): units go back into stock at
    /// `receipt.location` (movement kind `return`) unless written off, and the refund is
    /// given back through the payment handlers. A return is received once.
    pub async fn receive_return(
        &self,
        caller: &Caller,
        return_id: Uuid,
        receipt: Receipt,
    ) -> AppResult<ReturnOutcome> {
        caller.require(Permission::OrderWrite)?;
        if receipt.refund.is_some_and(|r| r < 0) {
            return Err(AppError::validation("refundAmount", "must not be negative"));
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let order = match self.lock_requested(&uow, return_id).await? {
            Ok(order) => order,
            Err(refused) => return Ok(refused),
        };
        let lines = return_line::Entity::find()
            .filter(return_line::Column::TenantId.eq(tenant.0))
            .filter(return_line::Column::ReturnId.eq(return_id))
            .order_by_asc(return_line::Column::Id)
            .all(uow.tx())
            .await?;
        let order_lines = self.order_lines_in(&uow, &order).await?;
        let skus = self.skus_in(&uow, &order_lines).await?;
        let by_id: HashMap<Uuid, &line::Model> = order_lines.iter().map(|l| (l.id, l)).collect();
        let in_return: HashSet<Uuid> = lines.iter().map(|l| l.line_id).collect();
        let refusals: Vec<LineRefusal> = receipt
            .write_off
            .iter()
            .filter(|id| !in_return.contains(id))
            .map(|id| LineRefusal::unknown(*id, 0))
            .collect();
        if !refusals.is_empty() {
            return Ok(ReturnOutcome::Refused(refusals));
        }
        let written_off: HashSet<Uuid> = receipt.write_off.iter().copied().collect();
        let restock: Vec<&return_line::Model> = lines
            .iter()
            .filter(|l| !written_off.contains(&l.line_id))
            .collect();
        let location = match (&receipt.location, restock.is_empty()) {
            (_, true) => None,
            (None, false) => {
                return Err(AppError::validation(
                    "location",
                    "give the stock location the returned units go back to (or write them off)",
                ));
            }
            (Some(code), false) => {
                let code = code.trim();
                Some(
                    self.inventory
                        .locations(tenant)
                        .await?
                        .into_iter()
                        .find(|l| l.code == code)
                        .ok_or_else(|| AppError::not_found("StockLocation", code))?,
                )
            }
        };
        if let Some(at) = &location {
            let rows = restock
                .iter()
                .map(|l| StockRow {
                    sku: by_id
                        .get(&l.line_id)
                        .and_then(|o| skus.get(&o.variant_id))
                        .cloned()
                        .unwrap_or_default(),
                    location: at.code.clone(),
                    change: Change::Add(l.quantity),
                })
                .collect();
            let reason = format!("return {return_id}");
            if let Err(errors) = self
                .inventory
                .change_stock_in(&mut uow, rows, kind::RETURN, Some(&reason), None)
                .await?
            {
                return Err(AppError::validation(
                    "lines",
                    errors
                        .first()
                        .map(|e| e.message.clone())
                        .unwrap_or_default(),
                ));
            }
            return_line::Entity::update_many()
                .col_expr(return_line::Column::LocationId, Expr::value(at.id))
                .col_expr(return_line::Column::Restocked, Expr::value(true))
                .col_expr(return_line::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(return_line::Column::TenantId.eq(tenant.0))
                .filter(return_line::Column::ReturnId.eq(return_id))
                .filter(return_line::Column::LineId.is_not_in(written_off.iter().copied()))
                .exec(uow.tx())
                .await?;
        }
        if !written_off.is_empty() {
            return_line::Entity::update_many()
                .col_expr(return_line::Column::Restocked, Expr::value(false))
                .col_expr(return_line::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(return_line::Column::TenantId.eq(tenant.0))
                .filter(return_line::Column::ReturnId.eq(return_id))
                .filter(return_line::Column::LineId.is_in(written_off.iter().copied()))
                .exec(uow.tx())
                .await?;
        }
        let amount = receipt
            .refund
            .unwrap_or_else(|| Self::returned_value(&order, &order_lines, &lines));
        let given = match self
            .give_back_in(
                &mut uow,
                &order,
                GiveBack {
                    amount,
                    strict: receipt.refund.is_some(),
                    return_id: Some(return_id),
                    reason: Some("return received"),
                    by: caller.actor(),
                    ..Default::default()
                },
            )
            .await?
        {
            Ok(g) => g,
            Err(f) => return Ok(ReturnOutcome::Payment(f)),
        };
        let now = Utc::now();
        let received = order_return::Entity::update_many()
            .col_expr(
                order_return::Column::State,
                Expr::value(return_state::RECEIVED),
            )
            .col_expr(order_return::Column::Refunded, Expr::value(given.amount))
            .col_expr(order_return::Column::ReceivedAt, Expr::value(now))
            .col_expr(order_return::Column::UpdatedAt, Expr::value(now))
            .filter(order_return::Column::TenantId.eq(tenant.0))
            .filter(order_return::Column::Id.eq(return_id))
            .exec_with_returning(uow.tx())
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("Return", return_id))?;
        let event_lines: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                let restocked = !written_off.contains(&l.line_id);
                json!({ "lineId": l.line_id, "quantity": l.quantity, "restocked": restocked,
                    "location": location.as_ref().filter(|_| restocked).map(|at| &at.code),
                    "sku": by_id.get(&l.line_id).and_then(|o| skus.get(&o.variant_id)) })
            })
            .collect();
        uow.change::<order::Entity>(order.id, Vec::new(), "vectis.order.return_received", |o| {
            json!({ "orderId": o.id, "code": o.code, "returnId": return_id,
                    "lines": event_lines, "refund": given.amount, "currency": o.currency })
        })
        .await?;
        let lines = return_line::Entity::find()
            .filter(return_line::Column::TenantId.eq(tenant.0))
            .filter(return_line::Column::ReturnId.eq(return_id))
            .order_by_asc(return_line::Column::Id)
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        self.finish_refunds(tenant, Some(caller), given.refunds)
            .await?;
        Ok(ReturnOutcome::Return(Box::new((
            received,
            lines,
            order.currency,
        ))))
    }

    /// Locks the order of requested return `return_id` (then reads the return again under
    /// the lock: a concurrent receipt or decline may have recorded it).
    async fn lock_requested(
        &self,
        uow: &crate::events::UnitOfWork,
        return_id: Uuid,
    ) -> AppResult<Result<order::Model, ReturnOutcome>> {
        let tenant = uow.tenant();
        let found = order_return::Entity::find_by_id(return_id)
            .filter(order_return::Column::TenantId.eq(tenant.0))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Return", return_id))?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, found.order_id)
            .await?
            .ok_or_else(|| AppError::not_found("Return", return_id))?;
        let current = order_return::Entity::find_by_id(return_id)
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Return", return_id))?;
        if current.state != return_state::REQUESTED {
            return Ok(Err(not_returnable(
                "RETURN_NOT_OPEN",
                format!("this return was {} already", current.state.to_lowercase()),
                &order,
            )));
        }
        Ok(Ok(order))
    }

    /// Declines a requested return (`ORDER_WRITE`) with a reason for the buyer; its units may
    /// be returned again.
    pub async fn decline_return(
        &self,
        caller: &Caller,
        return_id: Uuid,
        reason: Option<String>,
    ) -> AppResult<ReturnOutcome> {
        caller.require(Permission::OrderWrite)?;
        let reason = crate::kernel::text::optional("reason", reason.as_deref(), 500)?;
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let order = match self.lock_requested(&uow, return_id).await? {
            Ok(order) => order,
            Err(refused) => return Ok(refused),
        };
        let declined = order_return::Entity::update_many()
            .col_expr(
                order_return::Column::State,
                Expr::value(return_state::DECLINED),
            )
            .col_expr(
                order_return::Column::DeclineReason,
                Expr::value(reason.clone()),
            )
            .col_expr(order_return::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(order_return::Column::TenantId.eq(tenant.0))
            .filter(order_return::Column::Id.eq(return_id))
            .exec_with_returning(uow.tx())
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::not_found("Return", return_id))?;
        uow.change::<order::Entity>(
            order.id,
            Vec::new(),
            "vectis.order.return_declined",
            |o| json!({ "orderId": o.id, "code": o.code, "returnId": return_id, "reason": reason }),
        )
        .await?;
        let lines = return_line::Entity::find()
            .filter(return_line::Column::TenantId.eq(tenant.0))
            .filter(return_line::Column::ReturnId.eq(return_id))
            .order_by_asc(return_line::Column::Id)
            .all(uow.tx())
            .await?;
        uow.commit().await?;
        Ok(ReturnOutcome::Return(Box::new((
            declined,
            lines,
            order.currency,
        ))))
    }

    /// The returned units' share of what the order charged for goods (after its discount,
    /// with tax when prices are net; shipping is not refunded).
    fn returned_value(
        order: &order::Model,
        order_lines: &[line::Model],
        returned: &[return_line::Model],
    ) -> i64 {
        let gross = |l: &line::Model| {
            if order.prices_include_tax {
                l.line_price
            } else {
                l.line_price + l.tax
            }
        };
        let by_id: HashMap<Uuid, &line::Model> = order_lines.iter().map(|l| (l.id, l)).collect();
        let all: i64 = order_lines.iter().map(gross).sum();
        let back: i64 = returned
            .iter()
            .filter_map(|r| {
                let l = by_id.get(&r.line_id)?;
                Some(share(gross(l), r.quantity, l.current_quantity()))
            })
            .sum();
        let summary: Vec<crate::cart::service::StoredTaxSummary> =
            serde_json::from_str(&order.tax_summary).unwrap_or_default();
        let shipping_tax = super::cancel_lines::shipping_tax(&summary);
        let shipping = if order.prices_include_tax {
            order.shipping
        } else {
            order.shipping + shipping_tax
        };
        share(order.total - shipping, back, all)
    }

    /// The returns of `orders` with their lines, oldest first.
    pub async fn returns(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<(order_return::Model, Vec<return_line::Model>)>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    let returns = order_return::Entity::find()
                        .filter(order_return::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (order_return::Entity, order_return::Column::OrderId),
                            orders,
                        ))
                        .order_by_asc(order_return::Column::Id)
                        .all(tx)
                        .await?;
                    if returns.is_empty() {
                        return Ok(Vec::new());
                    }
                    let lines = return_line::Entity::find()
                        .filter(return_line::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (return_line::Entity, return_line::Column::ReturnId),
                            returns.iter().map(|r| r.id).collect(),
                        ))
                        .order_by_asc(return_line::Column::Id)
                        .all(tx)
                        .await?;
                    let mut by_return: HashMap<Uuid, Vec<return_line::Model>> = HashMap::new();
                    for l in lines {
                        by_return.entry(l.return_id).or_default().push(l);
                    }
                    Ok(returns
                        .into_iter()
                        .map(|r| {
                            let lines = by_return.remove(&r.id).unwrap_or_default();
                            (r, lines)
                        })
                        .collect())
                })
            })
            .await
    }
}
