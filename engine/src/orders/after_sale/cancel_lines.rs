//! Cancelling some lines (or units of them) of an order before they ship: their reserved
//! stock is released, the line's price and tax shrink to the units still ordered, the order's
//! totals follow (its discount and the discount's tax in proportion; shipping stays as
//! charged), and the difference is given back through the payment handlers: an authorised
//! amount is released, a settled one refunded. Cancelling every unit left of an order that
//! has shipped nothing cancels the order; cancelling what is left of a partly shipped order
//! makes it `Shipped`.
//!
//! Constant statements whatever the number of lines: the order's lines and what shipped (one
//! query each), one multi-row line update, the stock release, the order row, the payments.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::order_process::state;

use super::super::service::{OrdersService, PaymentFailure, TransitionFailure, actor_of};
use super::refunds::GiveBack;
use crate::auth::Caller;
use crate::cart::entity::{line, order};
use crate::cart::service::StoredTaxSummary;
use crate::db::json_rows::{JsonRows, hex};
use crate::error::{AppError, AppResult};
use crate::events::UnitOfWork;
use crate::inventory::InventoryService;
use crate::inventory::fulfil::LineRefusal;

/// Units of an order line (to cancel or return).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineUnits {
    /// The order line.
    pub line_id: Uuid,
    /// Units (positive).
    pub quantity: i64,
}

/// What `cancelOrderLines` did.
#[derive(Debug)]
pub enum CancelLinesOutcome {
    /// The order after it (cancelled, when nothing was left).
    Cancelled(Box<order::Model>),
    /// Lines that cannot be cancelled as asked; nothing changed.
    Refused(Vec<LineRefusal>),
    /// The order cannot change any more (shipped, delivered, cancelled) or the process
    /// refused.
    Transition(TransitionFailure),
}

#[derive(Serialize)]
struct LineWrite {
    id: String,
    variant: String,
    quantity: i64,
    unit_price: i64,
    line_price: i64,
    tax: i64,
    tax_category: String,
    weight: i64,
    price_source: String,
    tax_lines: String,
    cancelled: i64,
}

/// `amount × part / whole`, rounded half up (exact in i128).
pub(super) fn share(amount: i64, part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    let (a, p, w) = (i128::from(amount), i128::from(part), i128::from(whole));
    let doubled = 2 * a * p;
    let rounded = (doubled + w * doubled.signum()) / (2 * w);
    i64::try_from(rounded).unwrap_or(amount)
}

/// The tax on shipping in an order's tax summary.
pub(super) fn shipping_tax(summary: &[StoredTaxSummary]) -> i64 {
    summary
        .iter()
        .filter(|s| s.category == "shipping")
        .map(|s| s.tax)
        .sum()
}

/// An order's money after some of its lines shrank.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reduced {
    subtotal: i64,
    discount: i64,
    tax: i64,
    total: i64,
    summary: Vec<StoredTaxSummary>,
}

/// The order's totals with `lines` as they are now (`before`: their values at the last
/// change); shipping and its tax stay, the discount and its tax shrink with the subtotal.
fn reduce(o: &order::Model, before: &[line::Model], after: &[line::Model]) -> Reduced {
    let summary: Vec<StoredTaxSummary> = serde_json::from_str(&o.tax_summary).unwrap_or_default();
    let shipping_tax = shipping_tax(&summary);
    let lines_tax_before: i64 = before.iter().map(|l| l.tax).sum();
    let discount_tax_before = o.tax - lines_tax_before - shipping_tax;
    let mut per_category: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for l in after {
        let e = per_category.entry(l.tax_category.as_str()).or_default();
        e.0 += l.line_price;
        e.1 += l.tax;
    }
    let subtotal: i64 = after.iter().map(|l| l.line_price).sum();
    let discount = share(o.discount, subtotal, o.subtotal).min(subtotal);
    let discount_tax = share(discount_tax_before, subtotal, o.subtotal);
    let lines_tax: i64 = after.iter().map(|l| l.tax).sum();
    let tax = lines_tax + shipping_tax + discount_tax;
    let mut total = subtotal - discount + o.shipping;
    if !o.prices_include_tax {
        total += tax;
    }
    let mut reduced: Vec<StoredTaxSummary> = per_category
        .iter()
        .map(|(category, (amount, tax))| StoredTaxSummary {
            category: (*category).to_owned(),
            amount: amount - share(discount, *amount, subtotal),
            tax: tax + share(discount_tax, *amount, subtotal),
        })
        .collect();
    reduced.extend(summary.into_iter().filter(|s| s.category == "shipping"));
    Reduced {
        subtotal,
        discount,
        tax,
        total,
        summary: reduced,
    }
}

impl OrdersService {
    /// Cancels `units` of an order's lines before they ship (who may: as for `cancelOrder`).
    pub async fn cancel_lines(
        &self,
        caller: &Caller,
        id: Uuid,
        units: Vec<LineUnits>,
        reason: Option<String>,
    ) -> AppResult<CancelLinesOutcome> {
        let reason = Self::cancel_reason(caller, reason)?;
        if units.is_empty() {
            return Err(AppError::validation("lines", "cancel at least one line"));
        }
        if units.len() > crate::cart::service::MAX_CART_LINES {
            return Err(AppError::validation(
                "lines",
                format!("at most {} lines", crate::cart::service::MAX_CART_LINES),
            ));
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, id)
            .await?
            .filter(|o| o.state != state::CART)
            .ok_or_else(|| AppError::not_found("Order", id))?;
        self.authorize(uow.tx(), caller, &order, true).await?;
        if order.state != state::PARTIALLY_SHIPPED
            && !self.process.allows(&order.state, state::CANCELLED)
        {
            return Ok(CancelLinesOutcome::Transition(TransitionFailure {
                code: "ORDER_NOT_CANCELLABLE".into(),
                message: format!("an order in {} has no lines left to cancel", order.state),
                from: order.state.clone(),
                to: order.state.clone(),
            }));
        }
        let lines = self.order_lines_in(&uow, &order).await?;
        let shipped = InventoryService::shipped_in(uow.tx(), tenant, order.id).await?;
        let skus = self.skus_in(&uow, &lines).await?;
        let by_id: HashMap<Uuid, &line::Model> = lines.iter().map(|l| (l.id, l)).collect();
        let mut refusals = Vec::new();
        let mut seen = HashSet::new();
        for u in &units {
            let Some(l) = by_id.get(&u.line_id) else {
                refusals.push(LineRefusal::unknown(u.line_id, u.quantity));
                continue;
            };
            let open = l.current_quantity() - shipped.get(&l.id).copied().unwrap_or(0);
            let refusal = |code| LineRefusal {
                code,
                line_id: u.line_id,
                sku: skus.get(&l.variant_id).cloned().unwrap_or_default(),
                requested: u.quantity,
                possible: open.max(0),
            };
            if u.quantity <= 0 || !seen.insert(u.line_id) {
                refusals.push(refusal("VALIDATION"));
            } else if u.quantity > open {
                refusals.push(refusal("EXCEEDS_UNSHIPPED"));
            }
        }
        if !refusals.is_empty() {
            return Ok(CancelLinesOutcome::Refused(refusals));
        }
        let cancel: HashMap<Uuid, i64> = units.iter().map(|u| (u.line_id, u.quantity)).collect();
        let nothing_left = lines.iter().all(|l| {
            l.current_quantity() - cancel.get(&l.id).copied().unwrap_or(0)
                == shipped.get(&l.id).copied().unwrap_or(0)
        });
        if nothing_left && shipped.values().all(|s| *s == 0) {
            // Every unit: the order is cancelled.
            let (cancelled, given) = match self
                .cancel_in(&mut uow, caller, &order, reason.as_deref())
                .await?
            {
                Ok(done) => done,
                Err(f) => return Ok(CancelLinesOutcome::Transition(f)),
            };
            uow.commit().await?;
            self.finish_refunds(tenant, Some(caller), given.refunds)
                .await?;
            return Ok(CancelLinesOutcome::Cancelled(Box::new(cancelled)));
        }
        let after: Vec<line::Model> = lines
            .iter()
            .map(|l| {
                let Some(k) = cancel.get(&l.id) else {
                    return l.clone();
                };
                let current = l.current_quantity();
                let left = current - k;
                let mut n = l.clone();
                n.line_price = share(l.line_price, left, current);
                n.tax = share(l.tax, left, current);
                n.cancelled_quantity += k;
                n
            })
            .collect();
        self.write_cancelled(&uow, &order, &after, &cancel).await?;
        self.inventory
            .release_in(
                &mut uow,
                order.id,
                order.version + 1,
                reason.as_deref().unwrap_or("lines cancelled"),
                Some(&cancel),
            )
            .await?;
        let reduced = reduce(&order, &lines, &after);
        let given_back = order.total - reduced.total;
        let quantity: i64 = cancel.values().sum();
        let weight: i64 = after
            .iter()
            .filter_map(|l| cancel.get(&l.id).map(|k| k * l.unit_weight_grams))
            .sum();
        let summary =
            serde_json::to_string(&reduced.summary).map_err(|e| AppError::Internal(e.into()))?;
        use sea_orm::sea_query::Expr;
        let event_lines: Vec<serde_json::Value> = units
            .iter()
            .map(|u| {
                json!({ "lineId": u.line_id, "quantity": u.quantity,
                    "sku": by_id.get(&u.line_id).and_then(|l| skus.get(&l.variant_id)) })
            })
            .collect();
        let reason_text = reason.clone();
        let changed = uow
            .change::<order::Entity>(
                order.id,
                vec![
                    (order::Column::Subtotal, Expr::value(reduced.subtotal)),
                    (order::Column::Discount, Expr::value(reduced.discount)),
                    (order::Column::Tax, Expr::value(reduced.tax)),
                    (order::Column::Total, Expr::value(reduced.total)),
                    (order::Column::TaxSummary, Expr::value(summary)),
                    (
                        order::Column::TotalQuantity,
                        Expr::value(order.total_quantity - quantity),
                    ),
                    (
                        order::Column::TotalWeightGrams,
                        Expr::value((order.total_weight_grams - weight).max(0)),
                    ),
                ],
                "vectis.order.lines_cancelled",
                |o| {
                    json!({ "orderId": o.id, "code": o.code, "lines": event_lines,
                        "quantity": quantity, "amount": given_back, "total": o.total,
                        "currency": o.currency, "reason": reason_text })
                },
            )
            .await?;
        let mut result = changed.clone();
        if nothing_left && order.state == state::PARTIALLY_SHIPPED {
            // What is left has shipped.
            match self
                .transition(
                    &mut uow,
                    &changed,
                    changed.total,
                    state::SHIPPED,
                    &actor_of(caller),
                    reason.as_deref(),
                )
                .await?
            {
                Ok(o) => result = o,
                Err(f) => return Ok(CancelLinesOutcome::Transition(f)),
            }
        }
        self.approvals.unspend_in(&uow, &order, given_back).await?;
        let given = match self
            .give_back_in(
                &mut uow,
                &order,
                GiveBack {
                    amount: given_back,
                    reason: Some(reason.as_deref().unwrap_or("lines cancelled")),
                    by: caller.actor(),
                    ..Default::default()
                },
            )
            .await?
        {
            Ok(g) => g,
            Err(PaymentFailure { code, message }) => {
                return Err(AppError::Internal(anyhow::anyhow!("{code}: {message}")));
            }
        };
        uow.commit().await?;
        self.finish_refunds(tenant, Some(caller), given.refunds)
            .await?;
        Ok(CancelLinesOutcome::Cancelled(Box::new(result)))
    }

    /// Every line of `order`, in one statement.
    pub(crate) async fn order_lines_in(
        &self,
        uow: &UnitOfWork,
        order: &order::Model,
    ) -> AppResult<Vec<line::Model>> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        Ok(line::Entity::find()
            .filter(line::Column::TenantId.eq(uow.tenant().0))
            .filter(line::Column::OrderId.eq(order.id))
            .order_by_asc(line::Column::Id)
            .all(uow.tx())
            .await?)
    }

    /// The SKUs of `lines`' variants, in one statement.
    pub(crate) async fn skus_in(
        &self,
        uow: &UnitOfWork,
        lines: &[line::Model],
    ) -> AppResult<HashMap<Uuid, String>> {
        let ids = lines.iter().map(|l| l.variant_id).collect();
        Ok(
            crate::catalog::read::variants_by_id(uow.tx(), uow.tenant(), ids, true)
                .await?
                .into_iter()
                .map(|v| (v.id, v.sku))
                .collect(),
        )
    }

    /// Stores the cancelled lines' new price, tax and cancelled units in one statement.
    async fn write_cancelled(
        &self,
        uow: &UnitOfWork,
        order: &order::Model,
        after: &[line::Model],
        cancel: &HashMap<Uuid, i64>,
    ) -> AppResult<()> {
        let rows: Vec<LineWrite> = after
            .iter()
            .filter(|l| cancel.contains_key(&l.id))
            .map(|l| LineWrite {
                id: hex(l.id),
                variant: hex(l.variant_id),
                quantity: l.quantity,
                unit_price: l.unit_price,
                line_price: l.line_price,
                tax: l.tax,
                tax_category: l.tax_category.clone(),
                weight: l.unit_weight_grams,
                price_source: l.price_source.clone(),
                tax_lines: l.tax_lines.clone(),
                cancelled: l.cancelled_quantity,
            })
            .collect();
        let mut upsert = JsonRows::new(self.core.db.backend());
        let source = upsert.from(&rows)?;
        let (t, o, ts) = (
            upsert.param(uow.tenant().0),
            upsert.param(order.id),
            upsert.param(chrono::Utc::now()),
        );
        let sql = format!(
            "INSERT INTO order_lines (id, tenant_id, order_id, variant_id, quantity, unit_price, \
             line_price, tax, tax_category, unit_weight_grams, price_source, tax_lines, \
             cancelled_quantity, created_at, updated_at) \
             SELECT {}, {t}, {o}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {ts}, {ts} \
             FROM {source} WHERE true ON CONFLICT (id) DO UPDATE SET \
             line_price = excluded.line_price, tax = excluded.tax, \
             cancelled_quantity = excluded.cancelled_quantity, updated_at = excluded.updated_at",
            upsert.uuid("id"),
            upsert.uuid("variant"),
            upsert.int("quantity"),
            upsert.int("unit_price"),
            upsert.int("line_price"),
            upsert.int("tax"),
            upsert.text("tax_category"),
            upsert.int("weight"),
            upsert.text("price_source"),
            upsert.text("tax_lines"),
            upsert.int("cancelled"),
        );
        upsert.execute(uow.tx(), sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_up_and_are_exact_at_the_ends() {
        assert_eq!(share(1_000, 1, 3), 333);
        assert_eq!(share(1_000, 2, 3), 667);
        assert_eq!(share(1_000, 3, 3), 1_000);
        assert_eq!(share(1_000, 0, 3), 0);
        assert_eq!(share(-1_000, 2, 3), -667);
        assert_eq!(share(5, 1, 2), 3);
        assert_eq!(share(i64::MAX, 1, 1), i64::MAX);
        assert_eq!(share(7, 1, 0), 0);
    }
}
