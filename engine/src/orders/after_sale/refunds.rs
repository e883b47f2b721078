//! Giving money back: refunds of settled payments and releases (voids) of authorised amounts,
//! for `refundPayment`, cancelled orders and lines, and received returns.
//!
//! **Never more than was paid.** Under the order's lock (every payment change takes it first)
//! the amount is checked against what each payment still holds and taken off it at once: a
//! settled payment's `refundedAmount` grows, an authorised payment's `amount` shrinks (an
//! invoice releases the company's credit with it). A `Pending` refund row records the intent
//! and commits; only then is the payment handler asked, outside any transaction, with the
//! refund's id as the idempotency key; a second unit of work records `Done`, or `Failed` when
//! the provider refused (the amount then counts as refundable again). A handler that does not
//! answer leaves the refund `Pending`: `vectis serve` asks again with the same key.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::payments::{PaymentKind, PaymentOutcome, PaymentRequest};

use super::super::entity::{payment, payment_state, refund, refund_kind, refund_state};
use super::super::service::{OrdersService, PaymentFailure, credit_holder, money};
use crate::auth::Caller;
use crate::cart::entity::order;
use crate::companies::CompaniesService;
use crate::db::id_in;
use crate::error::{AppError, AppResult};
use crate::events::UnitOfWork;
use crate::kernel::TenantId;

/// What to give back from an order's payments.
#[derive(Debug, Clone, Default)]
pub(crate) struct GiveBack<'a> {
    /// The amount, in the order's currency's minor units.
    pub amount: i64,
    /// Only from this payment, and only what it settled (`refundPayment`).
    pub payment: Option<Uuid>,
    /// Refuse (`REFUND_EXCEEDS_PAYMENT`) when the payments cannot cover `amount`; otherwise
    /// give back what they hold.
    pub strict: bool,
    /// The return this refund is for.
    pub return_id: Option<Uuid>,
    /// Why, for the records.
    pub reason: Option<&'a str>,
    /// Who asked.
    pub by: Option<Uuid>,
}

/// Refunds recorded by [`OrdersService::give_back_in`]: finish them after the commit with
/// [`OrdersService::finish_refunds`].
#[derive(Debug, Clone, Default)]
pub(crate) struct GivenBack {
    /// The refund rows.
    pub refunds: Vec<Uuid>,
    /// The amount they cover.
    pub amount: i64,
}

impl OrdersService {
    /// Inside the order's lock: takes `g.amount` off the order's payments, authorised amounts
    /// first (released), then settled ones (refunded), newest payment first, and records a
    /// `Pending` refund per payment touched.
    pub(crate) async fn give_back_in(
        &self,
        uow: &mut UnitOfWork,
        order: &order::Model,
        g: GiveBack<'_>,
    ) -> AppResult<Result<GivenBack, PaymentFailure>> {
        let tenant = uow.tenant();
        if g.amount <= 0 {
            return Ok(Ok(GivenBack::default()));
        }
        let mut payments = self.payments_in(uow.tx(), tenant, vec![order.id]).await?;
        payments.reverse();
        if let Some(only) = g.payment {
            payments.retain(|p| p.id == only && p.state == payment_state::SETTLED);
        }
        let room = |p: &payment::Model| match p.state.as_str() {
            payment_state::AUTHORIZED => p.amount,
            payment_state::SETTLED => p.settled_amount - p.refunded_amount,
            _ => 0,
        };
        // Authorised amounts are released before settled money is paid back.
        payments.sort_by_key(|p| p.state != payment_state::AUTHORIZED);
        let total: i64 = payments.iter().map(room).sum();
        if g.strict && g.amount > total {
            return Ok(Err(PaymentFailure {
                code: "REFUND_EXCEEDS_PAYMENT".into(),
                message: format!(
                    "at most {} can be refunded",
                    money(total.max(0), &order.currency)
                ),
            }));
        }
        let mut left = g.amount;
        let mut out = GivenBack::default();
        let now = Utc::now();
        let mut rows = Vec::new();
        for p in &payments {
            let take = room(p).min(left);
            if take <= 0 {
                continue;
            }
            left -= take;
            let kind = if p.state == payment_state::AUTHORIZED {
                let mut sets = Vec::new();
                if take == p.amount {
                    sets.push((
                        payment::Column::State,
                        Expr::value(payment_state::CANCELLED),
                    ));
                } else {
                    sets.push((payment::Column::Amount, Expr::value(p.amount - take)));
                }
                uow.bump::<payment::Entity>(p.id, sets, "Payment").await?;
                if let Some(handler) = self.payment_handler(&p.method)
                    && handler.kind() == PaymentKind::OnAccount
                    && let Some(holder) = credit_holder(p)
                {
                    CompaniesService::release_credit_in(uow.tx(), tenant, holder, take).await?;
                }
                refund_kind::VOID
            } else {
                let refunded = p.refunded_amount + take;
                let mut sets = vec![(payment::Column::RefundedAmount, Expr::value(refunded))];
                if refunded == p.settled_amount {
                    sets.push((payment::Column::State, Expr::value(payment_state::REFUNDED)));
                }
                uow.bump::<payment::Entity>(p.id, sets, "Payment").await?;
                refund_kind::REFUND
            };
            let id = Uuid::now_v7();
            rows.push(refund::ActiveModel {
                id: Set(id),
                tenant_id: Set(tenant.0),
                created_at: Set(now),
                updated_at: Set(now),
                order_id: Set(order.id),
                payment_id: Set(p.id),
                return_id: Set(g.return_id),
                kind: Set(kind.into()),
                state: Set(refund_state::PENDING.into()),
                amount: Set(take),
                currency: Set(p.currency.clone()),
                reason: Set(g.reason.map(|r| r.chars().take(500).collect())),
                message: Set(None),
                requested_by: Set(g.by),
            });
            out.refunds.push(id);
            out.amount += take;
            if left == 0 {
                break;
            }
        }
        if !rows.is_empty() {
            refund::Entity::insert_many(rows)
                .exec_without_returning(uow.tx())
                .await?;
        }
        Ok(Ok(out))
    }

    /// Asks the payment handlers to carry out `ids` (pending refunds of one tenant), each
    /// outside any transaction, and records what they did. A handler that does not answer
    /// leaves its refund pending for [`Self::recover_refunds`]. Returns the refunds as they
    /// stand.
    pub(crate) async fn finish_refunds(
        &self,
        tenant: TenantId,
        caller: Option<&Caller>,
        ids: Vec<Uuid>,
    ) -> AppResult<Vec<refund::Model>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (r, p) = self
                .core
                .read(tenant, move |tx| {
                    Box::pin(async move {
                        let r = refund::Entity::find_by_id(id)
                            .filter(refund::Column::TenantId.eq(tenant.0))
                            .one(tx)
                            .await?
                            .ok_or_else(|| AppError::not_found("Refund", id))?;
                        let p = payment::Entity::find_by_id(r.payment_id)
                            .filter(payment::Column::TenantId.eq(tenant.0))
                            .one(tx)
                            .await?
                            .ok_or_else(|| AppError::not_found("Payment", r.payment_id))?;
                        Ok((r, p))
                    })
                })
                .await?;
            if r.state != refund_state::PENDING {
                out.push(r);
                continue;
            }
            let handler = self.handler_of(&p)?;
            let request = PaymentRequest {
                idempotency_key: r.id,
                order_id: r.order_id,
                order_code: None,
                amount: money(r.amount, &r.currency),
                metadata: serde_json::from_str(&p.metadata).unwrap_or_default(),
                transaction_id: p.transaction_id.clone(),
            };
            let outcome = if r.kind == refund_kind::VOID {
                handler.cancel(&request).await
            } else {
                handler.refund(&request).await
            };
            let declined = match outcome {
                Err(e) => {
                    tracing::warn!(refund = %r.id, error = %e, "the payment provider did not answer a refund; it is asked again later");
                    out.push(r);
                    continue;
                }
                Ok(PaymentOutcome::Declined { message }) => Some(message),
                Ok(_) => None,
            };
            out.push(self.record_refund(tenant, caller, &r, declined).await?);
        }
        Ok(out)
    }

    /// Records a handler's answer to pending refund `r` (`declined` with the provider's
    /// reason, else done) under its order's lock; a refund already recorded stays as it is.
    async fn record_refund(
        &self,
        tenant: TenantId,
        caller: Option<&Caller>,
        r: &refund::Model,
        declined: Option<String>,
    ) -> AppResult<refund::Model> {
        let mut uow = self.begin_as(tenant, caller).await?;
        let order = crate::db::lock::lock::<order::Entity, _>(uow.tx(), tenant, r.order_id)
            .await?
            .ok_or_else(|| AppError::not_found("Order", r.order_id))?;
        let state = if declined.is_some() {
            refund_state::FAILED
        } else {
            refund_state::DONE
        };
        let updated = refund::Entity::update_many()
            .col_expr(refund::Column::State, Expr::value(state))
            .col_expr(
                refund::Column::Message,
                Expr::value(
                    declined
                        .as_deref()
                        .map(|m| m.chars().take(500).collect::<String>()),
                ),
            )
            .col_expr(refund::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(refund::Column::TenantId.eq(tenant.0))
            .filter(refund::Column::Id.eq(r.id))
            .filter(refund::Column::State.eq(refund_state::PENDING))
            .exec_with_returning(uow.tx())
            .await?;
        let Some(updated) = updated.into_iter().next() else {
            // Recorded meanwhile (a recovery run and the request raced): nothing to do.
            return refund::Entity::find_by_id(r.id)
                .one(uow.tx())
                .await?
                .ok_or_else(|| AppError::not_found("Refund", r.id));
        };
        let payment = crate::db::lock::lock::<payment::Entity, _>(uow.tx(), tenant, r.payment_id)
            .await?
            .ok_or_else(|| AppError::not_found("Payment", r.payment_id))?;
        let mut data = json!({ "orderId": order.id, "code": order.code, "paymentId": payment.id,
            "refundId": r.id, "kind": r.kind, "amount": r.amount, "currency": r.currency,
            "returnId": r.return_id });
        let event = if let Some(message) = &declined {
            if r.kind == refund_kind::REFUND {
                // Refused: the amount is refundable again.
                uow.bump::<payment::Entity>(
                    payment.id,
                    vec![
                        (
                            payment::Column::RefundedAmount,
                            Expr::value(payment.refunded_amount - r.amount),
                        ),
                        (payment::Column::State, Expr::value(payment_state::SETTLED)),
                    ],
                    "Payment",
                )
                .await?;
            }
            data["message"] = json!(message);
            "vectis.order.refund_failed"
        } else {
            data["refunded"] = json!(payment.refunded_amount);
            if r.kind == refund_kind::VOID {
                "vectis.order.payment_released"
            } else {
                "vectis.order.payment_refunded"
            }
        };
        uow.change::<order::Entity>(order.id, Vec::new(), event, |_| data)
            .await?;
        uow.commit().await?;
        Ok(updated)
    }

    /// Asks again about refunds left pending (the handler did not answer, or the engine
    /// stopped between recording a refund and asking) for longer than `grace`; returns how
    /// many were recorded done or failed.
    pub async fn recover_refunds(&self, grace: std::time::Duration) -> AppResult<usize> {
        use sea_orm::QuerySelect;
        let cutoff = Utc::now() - Duration::from_std(grace).unwrap_or(Duration::zero());
        let tx = self.core.db.read(crate::db::Scope::System).await?;
        let pending = refund::Entity::find()
            .filter(refund::Column::State.eq(refund_state::PENDING))
            .filter(refund::Column::CreatedAt.lt(cutoff))
            .order_by_asc(refund::Column::CreatedAt)
            .limit(100)
            .all(&tx)
            .await?;
        tx.commit().await?;
        let mut resolved = 0;
        for r in pending {
            match self
                .finish_refunds(TenantId(r.tenant_id), None, vec![r.id])
                .await
            {
                Ok(done) => {
                    resolved += done
                        .iter()
                        .filter(|d| d.state != refund_state::PENDING)
                        .count();
                }
                Err(e) => tracing::warn!(refund = %r.id, error = ?e, "recovering a refund"),
            }
        }
        Ok(resolved)
    }

    /// The refunds of `orders`, oldest first.
    pub async fn refunds(
        &self,
        tenant: TenantId,
        orders: Vec<Uuid>,
    ) -> AppResult<Vec<refund::Model>> {
        let backend = self.core.db.backend();
        self.core
            .read(tenant, move |tx| {
                Box::pin(async move {
                    Ok(refund::Entity::find()
                        .filter(refund::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (refund::Entity, refund::Column::OrderId),
                            orders,
                        ))
                        .order_by_asc(refund::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }
}
