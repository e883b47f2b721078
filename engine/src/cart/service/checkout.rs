//! What checkout asks of the cart, inside the placing unit of work: the caller's cart locked,
//! every line re-priced (with what changed), the totals, and the order row's placement fields.
//! The orders module orchestrates placement through these; the cart's tables stay the cart's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::*;

/// A line whose price is no longer what the cart shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    /// The line.
    pub line_id: Uuid,
    /// Its SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: i64,
    /// The unit price the cart shows.
    pub old_unit_price: i64,
    /// The unit price now; `None` when the line can no longer be bought (archived, no price).
    pub new_unit_price: Option<i64>,
}

/// What placement writes on the order row.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The order code.
    pub code: String,
    /// When.
    pub placed_at: DateTime<Utc>,
    /// Ship-to.
    pub shipping_address: PostalAddress,
    /// Bill-to.
    pub billing_address: PostalAddress,
    /// The buyer's purchase-order number.
    pub po_number: Option<String>,
    /// The payment method's code.
    pub payment_method: String,
    /// The key a repeated placement finds the order by.
    pub idempotency_key: String,
    /// A guest's email.
    pub email: Option<String>,
}

impl CartService {
    /// The caller's active cart, locked for the rest of the unit of work (`PLACE_ORDERS` is
    /// checked for company users).
    pub(crate) async fn lock_active_in(
        &self,
        uow: &UnitOfWork,
        caller: &Caller,
        token: Option<&str>,
    ) -> AppResult<Option<order::Model>> {
        Self::require_buyer(caller)?;
        match Self::cart_key(caller, token)? {
            Some(key) => Self::lock_cart(uow, &key).await,
            None => Ok(None),
        }
    }

    /// The key of the caller's cart (whoever's cart it is, whether or not it exists yet).
    pub(crate) fn cart_key_of(caller: &Caller, token: Option<&str>) -> AppResult<Option<String>> {
        Self::cart_key(caller, token)
    }

    /// The order placed with `key`, if any.
    pub(crate) async fn order_by_idempotency_key_in(
        &self,
        uow: &UnitOfWork,
        key: &str,
    ) -> AppResult<Option<order::Model>> {
        Ok(order::Entity::find()
            .filter(order::Column::TenantId.eq(uow.tenant().0))
            .filter(order::Column::IdempotencyKey.eq(key.to_owned()))
            .one(uow.tx())
            .await?)
    }

    /// The newest order placed from the cart key hashed as `cart_of` at cart version
    /// `version` (its idempotency key is `cart:{cart_of}:{cart id}:{version}`).
    pub(crate) async fn order_by_version_key_in(
        &self,
        uow: &UnitOfWork,
        cart_of: &str,
        version: i64,
    ) -> AppResult<Option<order::Model>> {
        use sea_orm::QueryOrder;
        use sea_orm::sea_query::{ExprTrait, LikeExpr};
        Ok(order::Entity::find()
            .filter(order::Column::TenantId.eq(uow.tenant().0))
            .filter(
                Expr::col(order::Column::IdempotencyKey)
                    .like(LikeExpr::new(format!("cart:{cart_of}:%:{version}"))),
            )
            .order_by_desc(order::Column::Id)
            .one(uow.tx())
            .await?)
    }

    /// Re-prices and re-taxes every line of `cart` as it is now (its ship-to included), in the
    /// same statements as any cart change, and reports the lines whose unit price changed or
    /// that can no longer be bought. With `write`, the new prices are stored (and lines that
    /// cannot be bought removed); without, nothing is written.
    pub(crate) async fn reprice_in(
        &self,
        uow: &UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
        write: bool,
    ) -> AppResult<Vec<PriceChange>> {
        let tenant = uow.tenant();
        let lines = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::OrderId.eq(cart.id))
            .all(uow.tx())
            .await?;
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let ids = lines.iter().map(|l| l.variant_id).collect();
        let variants: HashMap<Uuid, variant::Model> =
            catalog::variants_by_id(uow.tx(), tenant, ids, true)
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        let mut changes = Vec::new();
        let mut items: Vec<(&variant::Model, i64, Option<Uuid>)> = Vec::new();
        let mut priced_lines = Vec::new();
        let mut deletes = Vec::new();
        for l in &lines {
            match variants.get(&l.variant_id).filter(|v| v.status != ARCHIVED) {
                Some(v) => {
                    items.push((v, l.quantity, Some(l.id)));
                    priced_lines.push(l);
                }
                None => {
                    deletes.push(l.id);
                    changes.push(PriceChange {
                        line_id: l.id,
                        sku: variants
                            .get(&l.variant_id)
                            .map(|v| v.sku.clone())
                            .unwrap_or_default(),
                        quantity: l.quantity,
                        old_unit_price: l.unit_price,
                        new_unit_price: None,
                    });
                }
            }
        }
        let priced = self.price(uow, buyer, cart, &items).await?;
        let mut upserts = Vec::with_capacity(priced.len());
        for ((l, (v, _, _)), row) in priced_lines.iter().zip(&items).zip(priced) {
            match row {
                Ok(row) => {
                    if row.unit_price() != l.unit_price {
                        changes.push(PriceChange {
                            line_id: l.id,
                            sku: v.sku.clone(),
                            quantity: l.quantity,
                            old_unit_price: l.unit_price,
                            new_unit_price: Some(row.unit_price()),
                        });
                    }
                    upserts.push(row);
                }
                Err(_) => {
                    deletes.push(l.id);
                    changes.push(PriceChange {
                        line_id: l.id,
                        sku: v.sku.clone(),
                        quantity: l.quantity,
                        old_unit_price: l.unit_price,
                        new_unit_price: None,
                    });
                }
            }
        }
        if write {
            self.write_lines(uow, cart, upserts, deletes, false).await?;
        }
        Ok(changes)
    }

    /// The order's lines as stock sees them: line, variant, SKU and quantity (two queries).
    pub(crate) async fn stock_lines_in(
        &self,
        uow: &UnitOfWork,
        order: &order::Model,
    ) -> AppResult<Vec<crate::inventory::ReserveLine>> {
        let tenant = uow.tenant();
        let lines = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::OrderId.eq(order.id))
            .all(uow.tx())
            .await?;
        let ids = lines.iter().map(|l| l.variant_id).collect();
        let skus: HashMap<Uuid, String> = catalog::variants_by_id(uow.tx(), tenant, ids, true)
            .await?
            .into_iter()
            .map(|v| (v.id, v.sku))
            .collect();
        Ok(lines
            .into_iter()
            .map(|l| crate::inventory::ReserveLine {
                line_id: l.id,
                variant_id: l.variant_id,
                sku: skus.get(&l.variant_id).cloned().unwrap_or_default(),
                quantity: l.current_quantity(),
            })
            .collect())
    }

    /// The cart that accepts quote `quote`: under the quote's own key (never anyone's active
    /// cart, so nobody edits it), with the quote's `lines` (variant, quantity) at the quoted
    /// prices, taxed for the buyer, and its totals with the quote's discount. Found again
    /// rather than created when an earlier acceptance's payment was declined. Constant
    /// statements, whatever the number of lines.
    pub(crate) async fn quote_cart_in(
        &self,
        uow: &mut UnitOfWork,
        buyer: &Buyer,
        quote: Uuid,
        currency: CurrencyCode,
        lines: &[(Uuid, i64)],
    ) -> AppResult<order::Model> {
        let key = format!("quote:{quote}");
        if let Some(cart) = Self::lock_cart(uow, &key).await? {
            return Ok(cart);
        }
        let (cart, _) = self
            .create(uow, &key, buyer, Some(currency), Some(quote))
            .await?;
        let ids = lines.iter().map(|(v, _)| *v).collect();
        let variants: HashMap<Uuid, variant::Model> =
            catalog::variants_by_id(uow.tx(), uow.tenant(), ids, true)
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        let items: Vec<(&variant::Model, i64, Option<Uuid>)> = lines
            .iter()
            .filter_map(|(v, q)| variants.get(v).map(|v| (v, *q, None)))
            .collect();
        let mut rows = Vec::with_capacity(items.len());
        for row in self.price(uow, buyer, &cart, &items).await? {
            rows.push(row.map_err(|(_, message)| AppError::Rejected {
                code: "QUOTE_LINE_UNAVAILABLE",
                message,
            })?);
        }
        self.write_lines(uow, &cart, rows, Vec::new(), false)
            .await?;
        self.save_totals(uow, buyer, &cart).await
    }

    /// Recomputes and stores the cart's totals (version bump, no event).
    pub(crate) async fn totals_in(
        &self,
        uow: &mut UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
    ) -> AppResult<order::Model> {
        self.save_totals(uow, buyer, cart).await
    }

    /// What placement writes on the order row, with the state change that places it: it stops
    /// being anyone's cart (a new one starts at the next change) and keeps everything it was
    /// placed with.
    pub(crate) fn placement_sets(placement: Placement) -> AppResult<Vec<(order::Column, Expr)>> {
        Ok(vec![
            (order::Column::CartKey, Expr::value(None::<String>)),
            (order::Column::Code, Expr::value(placement.code)),
            (order::Column::PlacedAt, Expr::value(placement.placed_at)),
            (
                order::Column::ShippingAddress,
                Expr::value(json_text(&placement.shipping_address)?),
            ),
            (
                order::Column::BillingAddress,
                Expr::value(json_text(&placement.billing_address)?),
            ),
            (order::Column::PoNumber, Expr::value(placement.po_number)),
            (
                order::Column::PaymentMethod,
                Expr::value(placement.payment_method),
            ),
            (
                order::Column::IdempotencyKey,
                Expr::value(placement.idempotency_key),
            ),
            (order::Column::CustomerEmail, Expr::value(placement.email)),
        ])
    }

    /// Sets an order's state, with `more` columns (version bump; the caller records the
    /// transition and its event).
    pub(crate) async fn set_state_in(
        &self,
        uow: &UnitOfWork,
        order_id: Uuid,
        state: &str,
        more: Vec<(order::Column, Expr)>,
    ) -> AppResult<order::Model> {
        let mut sets = vec![(order::Column::State, Expr::value(state.to_owned()))];
        sets.extend(more);
        uow.bump::<order::Entity>(order_id, sets, "Order").await
    }

    /// Sets the ship-to of a cart being checked out (lines are re-priced after).
    pub(crate) fn ship_to(cart: &mut order::Model, address: &PostalAddress) -> AppResult<()> {
        cart.shipping_address = Some(json_text(address)?);
        Ok(())
    }
}
