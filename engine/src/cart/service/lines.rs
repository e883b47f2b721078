//! Line changes: the variants a change names, their quantities, batch pricing and taxing, and the one multi-row upsert and delete that write them.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
};
use serde_json::json;
use uuid::Uuid;

use super::*;

/// A priced and taxed line ready to be written (the JSON shape of the bulk upsert).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LineRow {
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
}

impl LineRow {
    /// The unit price it was priced at.
    pub(super) fn unit_price(&self) -> i64 {
        self.unit_price
    }
}

/// Why one line cannot be priced: an item error code and message.
pub(super) type LineFault = (&'static str, String);

/// One mutation in progress: collects line writes, item errors and the event payload.
pub(super) struct Work<'a> {
    pub(super) service: &'a CartService,
    pub(super) uow: &'a UnitOfWork,
    pub(super) buyer: &'a Buyer,
    pub(super) cart: &'a mut order::Model,
    pub(super) errors: Vec<ItemError>,
    pub(super) upserts: Vec<LineRow>,
    pub(super) deletes: Vec<Uuid>,
    pub(super) delete_all: bool,
    pub(super) event: serde_json::Value,
    pub(super) event_type: &'static str,
}

/// How an input item names a variant.
#[derive(Clone, Copy)]
pub(super) enum VariantRef<'i> {
    Id(Uuid),
    Sku(&'i str),
}

impl CartService {
    /// Prices and taxes `(variant, quantity, existing line id)` in one call to each strategy.
    /// Returns one result per input: the row, or an item error code and message.
    pub(super) async fn price(
        &self,
        uow: &UnitOfWork,
        buyer: &Buyer,
        cart: &order::Model,
        items: &[(&variant::Model, i64, Option<Uuid>)],
    ) -> AppResult<Vec<Result<LineRow, LineFault>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let currency = Self::currency_of(cart)?;
        let ids: Vec<Uuid> = items
            .iter()
            .map(|(v, _, _)| v.id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let lines: Vec<PriceLine> = items
            .iter()
            .map(|(v, q, _)| PriceLine {
                variant: v.id,
                quantity: *q,
            })
            .collect();
        // A cart accepting a quote has the quote's prices, frozen when it was sent.
        let prices = match cart.quote_id {
            Some(quote) => {
                crate::quotes::service::quoted_prices_in(
                    uow.tx(),
                    uow.tenant(),
                    quote,
                    &lines,
                    currency,
                )
                .await?
            }
            None => {
                let data = self
                    .pricing
                    .data_in(uow.tx(), uow.tenant(), ids, currency)
                    .await?;
                let ctx = buyer.pricing(currency);
                self.strategies.pricing.price(&ctx, &lines, &data)
            }
        };
        let mut amounts: Vec<Result<(LinePrice, Money), LineFault>> =
            Vec::with_capacity(items.len());
        for ((_, quantity, _), price) in items.iter().zip(prices) {
            amounts.push(match price {
                Ok(p) => match p.unit.checked_mul(*quantity) {
                    Ok(total) => Ok((p, total)),
                    Err(_) => Err((code::VALIDATION, "the line price overflows".to_owned())),
                },
                Err(PricingError::NoPrice(c)) => Err((
                    item_code::NO_PRICE,
                    format!("the variant has no price in {c}"),
                )),
                Err(PricingError::InvalidQuantity) => {
                    Err((code::VALIDATION, "quantity must be positive".to_owned()))
                }
            });
        }
        let tax_ctx = self.tax_context(buyer, cart)?;
        let taxable: Vec<TaxableLine> = items
            .iter()
            .zip(&amounts)
            .filter_map(|((v, _, _), a)| {
                a.as_ref().ok().map(|(_, total)| TaxableLine {
                    amount: *total,
                    category: v.tax_category.clone(),
                })
            })
            .collect();
        let mut taxes = self.strategies.tax.tax(&tax_ctx, &taxable).into_iter();
        let mut out = Vec::with_capacity(items.len());
        for ((v, quantity, line_id), amount) in items.iter().zip(amounts) {
            let (price, total) = match amount {
                Ok(a) => a,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let tax = match taxes.next() {
                Some(Ok(t)) => t,
                _ => {
                    out.push(Err((code::VALIDATION, "the line tax overflows".to_owned())));
                    continue;
                }
            };
            let tax_lines: Vec<StoredTaxLine> = tax.lines.iter().map(Into::into).collect();
            out.push(Ok(LineRow {
                id: line_id.unwrap_or_else(Uuid::now_v7).simple().to_string(),
                variant: v.id.simple().to_string(),
                quantity: *quantity,
                unit_price: price.unit.amount,
                line_price: total.amount,
                tax: tax.tax.amount,
                tax_category: v.tax_category.clone(),
                weight: v.weight_grams,
                price_source: json_text(&match cart.quote_id {
                    Some(quote) => StoredPriceSource::quote(quote),
                    None => StoredPriceSource::from(price.source),
                })?,
                tax_lines: json_text(&tax_lines)?,
            }));
        }
        Ok(out)
    }

    /// Writes lines with one upsert and one delete, whatever their number.
    pub(super) async fn write_lines(
        &self,
        uow: &UnitOfWork,
        cart: &order::Model,
        upserts: Vec<LineRow>,
        deletes: Vec<Uuid>,
        delete_all: bool,
    ) -> AppResult<()> {
        let backend = self.core.db.backend();
        let tenant = uow.tenant();
        if delete_all {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(tenant.0))
                .filter(line::Column::OrderId.eq(cart.id))
                .exec(uow.tx())
                .await?;
        } else if !deletes.is_empty() {
            line::Entity::delete_many()
                .filter(line::Column::TenantId.eq(tenant.0))
                .filter(line::Column::OrderId.eq(cart.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), deletes))
                .exec(uow.tx())
                .await?;
        }
        if upserts.is_empty() {
            return Ok(());
        }
        let rows = json_text(&upserts)?;
        let now = Utc::now();
        let update = "ON CONFLICT (order_id, variant_id) DO UPDATE SET quantity = excluded.quantity, \
             unit_price = excluded.unit_price, line_price = excluded.line_price, tax = excluded.tax, \
             tax_category = excluded.tax_category, unit_weight_grams = excluded.unit_weight_grams, \
             price_source = excluded.price_source, tax_lines = excluded.tax_lines, \
             updated_at = excluded.updated_at";
        let columns = "id, tenant_id, order_id, variant_id, quantity, unit_price, line_price, tax, \
             tax_category, unit_weight_grams, price_source, tax_lines, created_at, updated_at";
        let statement = if backend == DbBackend::Postgres {
            Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO order_lines ({columns}) SELECT (x->>'id')::uuid, $1, $2, \
                     (x->>'variant')::uuid, (x->>'quantity')::bigint, (x->>'unitPrice')::bigint, \
                     (x->>'linePrice')::bigint, (x->>'tax')::bigint, x->>'taxCategory', \
                     (x->>'weight')::bigint, x->>'priceSource', x->>'taxLines', $3, $3 \
                     FROM jsonb_array_elements($4::jsonb) AS x {update}"
                ),
                [tenant.0.into(), cart.id.into(), now.into(), rows.into()],
            )
        } else {
            Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO order_lines ({columns}) SELECT unhex(json_extract(value, '$.id')), ?, ?, \
                     unhex(json_extract(value, '$.variant')), json_extract(value, '$.quantity'), \
                     json_extract(value, '$.unitPrice'), json_extract(value, '$.linePrice'), \
                     json_extract(value, '$.tax'), json_extract(value, '$.taxCategory'), \
                     json_extract(value, '$.weight'), json_extract(value, '$.priceSource'), \
                     json_extract(value, '$.taxLines'), ?, ? FROM json_each(?) WHERE true {update}"
                ),
                [
                    tenant.0.into(),
                    cart.id.into(),
                    now.into(),
                    now.into(),
                    rows.into(),
                ],
            )
        };
        uow.tx().execute_raw(statement).await?;
        Ok(())
    }
}

impl Work<'_> {
    pub(super) fn error(
        &mut self,
        index: usize,
        code: &str,
        field: &str,
        message: impl Into<String>,
    ) {
        self.errors
            .push(ItemError::new(index, code, Some(field), message));
    }

    pub(super) async fn run(&mut self, change: CartChange) -> AppResult<()> {
        match change {
            CartChange::AddLines(lines) => {
                self.event_type = "vectis.cart.lines_added";
                let refs: Vec<(Option<VariantRef<'_>>, i64)> = lines
                    .iter()
                    .map(|l| {
                        (
                            Self::variant_ref(l.variant_id, l.sku.as_deref()),
                            l.quantity,
                        )
                    })
                    .collect();
                self.set_quantities(&refs, true).await
            }
            CartChange::UpdateLines(lines) => {
                self.event_type = "vectis.cart.lines_updated";
                self.update(&lines).await
            }
            CartChange::RemoveLines(ids) => {
                self.event_type = "vectis.cart.lines_removed";
                self.remove(&ids).await
            }
            CartChange::Clear => {
                self.event_type = "vectis.cart.cleared";
                self.delete_all = true;
                Ok(())
            }
            CartChange::ApplyCoupon(code) => {
                self.event_type = "vectis.cart.coupon_applied";
                let Some(code) = self.coupon_code(&code) else {
                    return Ok(());
                };
                self.apply_coupon(code).await
            }
            CartChange::RemoveCoupon(code) => {
                self.event_type = "vectis.cart.coupon_removed";
                let Some(code) = self.coupon_code(&code) else {
                    return Ok(());
                };
                let mut codes: Vec<String> =
                    serde_json::from_str(&self.cart.coupons).unwrap_or_default();
                if !codes.contains(&code) {
                    self.error(
                        0,
                        code::NOT_FOUND,
                        "code",
                        format!("coupon {code} is not on the cart"),
                    );
                    return Ok(());
                }
                codes.retain(|c| c != &code);
                self.cart.coupons = json_text(&codes)?;
                self.event = json!({ "code": code });
                Ok(())
            }
            CartChange::ShippingAddress(address) => {
                self.event_type = "vectis.cart.shipping_address_set";
                self.event = json!({ "countryCode": address.country_code });
                self.cart.shipping_address = Some(json_text(&address)?);
                self.reprice_all().await
            }
            CartChange::ShippingMethod(code) => {
                self.event_type = "vectis.cart.shipping_method_set";
                let offered = self.service.shipping_methods(self.cart)?;
                if !offered.iter().any(|q| q.code == code) {
                    let message = format!(
                        "shipping method `{code}` is not offered for this cart (offered: {})",
                        offered
                            .iter()
                            .map(|q| q.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.error(0, item_code::SHIPPING_METHOD_NOT_AVAILABLE, "code", message);
                    return Ok(());
                }
                self.event = json!({ "method": code });
                self.cart.shipping_method = Some(code);
                Ok(())
            }
        }
    }

    pub(super) fn variant_ref<'i>(
        id: Option<Uuid>,
        sku: Option<&'i str>,
    ) -> Option<VariantRef<'i>> {
        match (id, sku) {
            (Some(id), None) => Some(VariantRef::Id(id)),
            (None, Some(sku)) => Some(VariantRef::Sku(sku.trim())),
            _ => None,
        }
    }

    /// The variants named by ids or SKUs, archived ones included (one statement).
    pub(super) async fn variants(
        &self,
        refs: &[Option<VariantRef<'_>>],
    ) -> AppResult<Vec<variant::Model>> {
        let mut ids = Vec::new();
        let mut skus = Vec::new();
        for r in refs.iter().flatten() {
            match r {
                VariantRef::Id(id) => ids.push(*id),
                VariantRef::Sku(sku) => skus.push((*sku).to_owned()),
            }
        }
        catalog::variants_by_ref(self.uow.tx(), self.uow.tenant(), ids, skus).await
    }

    /// The cart's lines of these variants (one statement).
    pub(super) async fn lines_of(&self, variants: Vec<Uuid>) -> AppResult<Vec<line::Model>> {
        if variants.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.service.core.db.backend();
        Ok(line::Entity::find()
            .filter(line::Column::TenantId.eq(self.uow.tenant().0))
            .filter(line::Column::OrderId.eq(self.cart.id))
            .filter(id_in(
                backend,
                (line::Entity, line::Column::VariantId),
                variants,
            ))
            .all(self.uow.tx())
            .await?)
    }

    /// Adds (`add`) or sets quantities of variants; a resulting quantity of 0 removes the line.
    pub(super) async fn set_quantities(
        &mut self,
        refs: &[(Option<VariantRef<'_>>, i64)],
        add: bool,
    ) -> AppResult<()> {
        let only_refs: Vec<Option<VariantRef<'_>>> = refs.iter().map(|(r, _)| *r).collect();
        let variants = self.variants(&only_refs).await?;
        let by_id: HashMap<Uuid, &variant::Model> = variants.iter().map(|v| (v.id, v)).collect();
        let by_sku: HashMap<&str, &variant::Model> =
            variants.iter().map(|v| (v.sku.as_str(), v)).collect();
        let existing = self
            .lines_of(variants.iter().map(|v| v.id).collect())
            .await?;
        let existing: HashMap<Uuid, &line::Model> =
            existing.iter().map(|l| (l.variant_id, l)).collect();

        // Validate each item and merge duplicates per variant, in input order.
        let min = if add { 1 } else { 0 };
        let mut merged: Vec<(Uuid, i64, Vec<usize>)> = Vec::new();
        let mut slot: HashMap<Uuid, usize> = HashMap::new();
        for (i, (r, quantity)) in refs.iter().enumerate() {
            let variant = match r {
                None => {
                    self.error(
                        i,
                        code::VALIDATION,
                        "variantId",
                        "give exactly one of variantId and sku",
                    );
                    continue;
                }
                Some(VariantRef::Id(id)) => by_id.get(id).copied(),
                Some(VariantRef::Sku(sku)) => by_sku.get(sku).copied(),
            };
            let field = if matches!(r, Some(VariantRef::Sku(_))) {
                "sku"
            } else {
                "variantId"
            };
            let Some(variant) = variant else {
                let what = match r {
                    Some(VariantRef::Sku(s)) => format!("SKU `{s}` not found"),
                    Some(VariantRef::Id(id)) => format!("variant {id} not found"),
                    None => String::new(),
                };
                self.error(i, code::NOT_FOUND, field, what);
                continue;
            };
            if variant.status == ARCHIVED && *quantity > 0 {
                self.error(
                    i,
                    item_code::ARCHIVED,
                    field,
                    format!("SKU `{}` is archived", variant.sku),
                );
                continue;
            }
            if !(min..=MAX_LINE_QUANTITY).contains(quantity) {
                self.error(
                    i,
                    code::VALIDATION,
                    "quantity",
                    format!("must be between {min} and {MAX_LINE_QUANTITY}"),
                );
                continue;
            }
            match slot.get(&variant.id) {
                Some(&s) => {
                    let entry = &mut merged[s];
                    entry.1 = if add { entry.1 + quantity } else { *quantity };
                    entry.2.push(i);
                }
                None => {
                    slot.insert(variant.id, merged.len());
                    merged.push((variant.id, *quantity, vec![i]));
                }
            }
        }

        // Resulting quantities, the per-line maximum and the cart's line limit.
        let mut new_lines = 0_i64;
        let mut to_price: Vec<(&variant::Model, i64, Option<Uuid>, Vec<usize>)> = Vec::new();
        let mut changes = Vec::new();
        for (variant_id, quantity, indexes) in merged {
            let variant = by_id[&variant_id];
            let line = existing.get(&variant_id);
            let before = line.map(|l| l.quantity).unwrap_or(0);
            let after = if add { before + quantity } else { quantity };
            let last = *indexes.last().unwrap_or(&0);
            if after > MAX_LINE_QUANTITY {
                self.error(
                    last,
                    code::VALIDATION,
                    "quantity",
                    format!("the line would hold {after}, more than {MAX_LINE_QUANTITY}"),
                );
                continue;
            }
            if after == 0 {
                if let Some(l) = line {
                    self.deletes.push(l.id);
                    changes.push(
                        json!({ "sku": variant.sku, "quantity": 0, "previousQuantity": before }),
                    );
                }
                continue;
            }
            if line.is_none() {
                if self.cart.line_count + new_lines >= MAX_CART_LINES as i64 {
                    for i in indexes {
                        self.error(
                            i,
                            item_code::CART_FULL,
                            "lines",
                            format!("a cart holds at most {MAX_CART_LINES} lines"),
                        );
                    }
                    continue;
                }
                new_lines += 1;
            }
            changes
                .push(json!({ "sku": variant.sku, "quantity": after, "previousQuantity": before }));
            to_price.push((variant, after, line.map(|l| l.id), indexes));
        }
        let items: Vec<(&variant::Model, i64, Option<Uuid>)> =
            to_price.iter().map(|(v, q, l, _)| (*v, *q, *l)).collect();
        let priced = self
            .service
            .price(self.uow, self.buyer, self.cart, &items)
            .await?;
        for ((variant, _, _, indexes), row) in to_price.iter().zip(priced) {
            match row {
                Ok(row) => self.upserts.push(row),
                Err((c, message)) => {
                    for i in indexes {
                        let field = if c == item_code::NO_PRICE {
                            "sku"
                        } else {
                            "quantity"
                        };
                        self.error(*i, c, field, format!("{}: {message}", variant.sku));
                    }
                }
            }
        }
        self.event = json!({ "lines": changes });
        Ok(())
    }

    pub(super) async fn update(&mut self, updates: &[LineUpdate]) -> AppResult<()> {
        // Resolve line ids to their variants first (one statement).
        let line_ids: Vec<Uuid> = updates.iter().filter_map(|u| u.line_id).collect();
        let lines: HashMap<Uuid, line::Model> = if line_ids.is_empty() {
            HashMap::new()
        } else {
            let backend = self.service.core.db.backend();
            line::Entity::find()
                .filter(line::Column::TenantId.eq(self.uow.tenant().0))
                .filter(line::Column::OrderId.eq(self.cart.id))
                .filter(id_in(backend, (line::Entity, line::Column::Id), line_ids))
                .all(self.uow.tx())
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect()
        };
        let mut refs = Vec::with_capacity(updates.len());
        let mut missing = Vec::new();
        for (i, u) in updates.iter().enumerate() {
            let r = match (u.line_id, u.variant_id, u.sku.as_deref()) {
                (Some(id), None, None) => match lines.get(&id) {
                    Some(l) => Some(VariantRef::Id(l.variant_id)),
                    None => {
                        missing.push(i);
                        Some(VariantRef::Id(Uuid::nil()))
                    }
                },
                (None, id, sku) => Self::variant_ref(id, sku),
                _ => None,
            };
            refs.push((r, u.quantity));
        }
        let before = self.errors.len();
        self.set_quantities(&refs, false).await?;
        // A line id that is not in the cart reads better than "variant 000… not found".
        for e in self.errors.iter_mut().skip(before) {
            if missing.contains(&(e.index as usize)) {
                e.field = Some("lineId".into());
                e.message = format!(
                    "line {} is not in the cart",
                    updates[e.index as usize].line_id.unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    pub(super) async fn remove(&mut self, ids: &[Uuid]) -> AppResult<()> {
        let backend = self.service.core.db.backend();
        let found: HashSet<Uuid> = if ids.is_empty() {
            HashSet::new()
        } else {
            line::Entity::find()
                .select_only()
                .column(line::Column::Id)
                .filter(line::Column::TenantId.eq(self.uow.tenant().0))
                .filter(line::Column::OrderId.eq(self.cart.id))
                .filter(id_in(
                    backend,
                    (line::Entity, line::Column::Id),
                    ids.to_vec(),
                ))
                .into_tuple::<Uuid>()
                .all(self.uow.tx())
                .await?
                .into_iter()
                .collect()
        };
        for (i, id) in ids.iter().enumerate() {
            if found.contains(id) {
                self.deletes.push(*id);
            } else {
                self.error(
                    i,
                    code::NOT_FOUND,
                    "lineIds",
                    format!("line {id} is not in the cart"),
                );
            }
        }
        self.event = json!({ "lineIds": self.deletes });
        Ok(())
    }

    /// Re-prices every line of the cart (when what all lines depend on changed).
    pub(super) async fn reprice_all(&mut self) -> AppResult<()> {
        let tenant = self.uow.tenant();
        let lines = line::Entity::find()
            .filter(line::Column::TenantId.eq(tenant.0))
            .filter(line::Column::OrderId.eq(self.cart.id))
            .all(self.uow.tx())
            .await?;
        if lines.is_empty() {
            return Ok(());
        }
        let ids = lines.iter().map(|l| l.variant_id).collect();
        let variants: HashMap<Uuid, variant::Model> =
            catalog::variants_by_id(self.uow.tx(), tenant, ids, true)
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        let items: Vec<(&variant::Model, i64, Option<Uuid>)> = lines
            .iter()
            .filter_map(|l| {
                variants
                    .get(&l.variant_id)
                    .map(|v| (v, l.quantity, Some(l.id)))
            })
            .collect();
        let priced = self
            .service
            .price(self.uow, self.buyer, self.cart, &items)
            .await?;
        for ((v, _, line_id), row) in items.iter().zip(priced) {
            match row {
                Ok(row) => self.upserts.push(row),
                // A line that can no longer be priced leaves the cart (its price is gone).
                Err(_) => {
                    if let Some(id) = line_id {
                        self.deletes.push(*id);
                    }
                    let _ = v;
                }
            }
        }
        Ok(())
    }
}
