//! Price lists and batch quotes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::pricing::{
    LinePrice, ListPrice, PriceLine, PriceList, PriceListScope, PricingContext, PricingData,
    PricingError, Tier,
};
use vectis_strategies::{CurrencyCode, Money, Strategies};

use super::entity::{price_list, price_list_price};
use crate::accounts::AccountsService;
use crate::auth::{Caller, Permission, Principal};
use crate::catalog::entity::variant;
use crate::catalog::read as catalog;
use crate::catalog::service::validate_amount;
use crate::companies::CompaniesService;
use crate::db::{Scope, id_in};
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, DomainEvent};
use crate::kernel::TenantId;

/// Most lines in one quote and most prices in one `setPriceListPrices` call.
pub const MAX_ITEMS: usize = 10_000;
/// Largest quantity of one line.
pub const MAX_LINE_QUANTITY: i64 = 1_000_000;
/// Most tiers per variant and list.
pub const MAX_TIERS: usize = 20;

/// Input of `createPriceList`.
#[derive(Debug, Clone)]
pub struct NewPriceList {
    /// Name.
    pub name: String,
    /// Higher wins.
    pub priority: i32,
    /// Who it applies to.
    pub scope: PriceListScope,
    /// Currency code as given.
    pub currency: String,
    /// Valid from.
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
}

/// The prices of one SKU in a price list.
#[derive(Debug, Clone)]
pub struct SkuTiers {
    /// The SKU.
    pub sku: String,
    /// `(min_quantity, unit_amount)` tiers; empty removes the SKU from the list.
    pub tiers: Vec<(i64, i64)>,
}

/// A line to quote.
#[derive(Debug, Clone)]
pub struct QuoteLine {
    /// The SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: i64,
}

/// A quoted line.
#[derive(Debug, Clone)]
pub struct QuotedLine {
    /// Index in the input.
    pub index: usize,
    /// Variant.
    pub variant: variant::Model,
    /// Quantity.
    pub quantity: i64,
    /// Unit price and its source.
    pub price: LinePrice,
    /// Unit price × quantity.
    pub line_price: Money,
}

/// A batch quote.
#[derive(Debug, Clone)]
pub struct Quote {
    /// Priced lines, in input order.
    pub lines: Vec<QuotedLine>,
    /// Lines that could not be priced.
    pub errors: Vec<ItemError>,
    /// Sum of the line prices.
    pub subtotal: Money,
}

/// Who is buying, as pricing and tax see it.
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    /// The customer (none for storefront guests).
    pub customer: Option<Uuid>,
    /// Customer group (the customer's, else the company's effective one).
    pub customer_group: Option<Uuid>,
    /// The company acted for.
    pub company: Option<Uuid>,
    /// The company and its ancestors, nearest first.
    pub companies: Vec<Uuid>,
    /// The company location acted in.
    pub location: Option<crate::companies::entity::location::Model>,
    /// The location's country (the default ship-to).
    pub location_country: Option<String>,
    /// VAT id (the location's, else the company's effective one).
    pub vat_id: Option<String>,
    /// Tax exemption (the location's, else the company's effective one).
    pub tax_exempt: bool,
    /// Payment terms code (the location's, else the company's effective one).
    pub payment_terms: Option<String>,
    /// The company whose credit limit applies (the nearest with one), its limit and exposure.
    pub credit: Option<(Uuid, Money, Money)>,
}

impl Buyer {
    /// The pricing context in `currency`, now.
    pub fn pricing(&self, currency: CurrencyCode) -> PricingContext {
        PricingContext {
            currency,
            customer_group: self.customer_group,
            companies: self.companies.clone(),
            location: self.location.as_ref().map(|l| l.id),
            at: Utc::now().timestamp(),
        }
    }
}

/// What a buyer pays for a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantPrice {
    /// The unit price at quantity 1 and its source; none without a price in the currency.
    pub unit: Option<LinePrice>,
    /// The base price.
    pub base: Option<Money>,
    /// From these quantities on, the buyer pays less (or more): the volume breaks that apply
    /// to this buyer, ascending.
    pub tiers: Vec<(i64, LinePrice)>,
}

impl VariantPrice {
    /// The base price as the buyer's price (anonymous visitors and staff).
    pub fn base_only(base: Option<Money>) -> Self {
        VariantPrice {
            unit: base.map(|unit| LinePrice {
                unit,
                source: vectis_strategies::pricing::PriceSource::Base,
            }),
            base,
            tiers: Vec::new(),
        }
    }
}

/// The scope of a stored price list.
pub fn scope_of(m: &price_list::Model) -> PriceListScope {
    match (m.scope_kind.as_str(), m.scope_id) {
        ("customer_group", Some(id)) => PriceListScope::CustomerGroup(id),
        ("company", Some(id)) => PriceListScope::Company(id),
        ("location", Some(id)) => PriceListScope::Location(id),
        _ => PriceListScope::Everyone,
    }
}

/// Price lists and batch quotes.
#[derive(Clone)]
pub struct PricingService {
    core: Core,
    accounts: AccountsService,
    companies: CompaniesService,
    strategies: Strategies,
}

impl PricingService {
    /// A service over `core` deciding prices with `strategies.pricing`.
    pub fn new(
        core: Core,
        accounts: AccountsService,
        companies: CompaniesService,
        strategies: Strategies,
    ) -> Self {
        PricingService {
            core,
            accounts,
            companies,
            strategies,
        }
    }

    /// Creates a price list (`CATALOG_WRITE`).
    pub async fn create(
        &self,
        caller: &Caller,
        input: NewPriceList,
    ) -> AppResult<price_list::Model> {
        caller.require(Permission::CatalogWrite)?;
        let name = crate::kernel::text::name("name", &input.name, 200)?;
        let currency: CurrencyCode =
            input
                .currency
                .parse()
                .map_err(|e: vectis_strategies::MoneyError| {
                    AppError::validation("currency", e.to_string())
                })?;
        if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
            && from >= until
        {
            return Err(AppError::validation(
                "validUntil",
                "must be after validFrom",
            ));
        }
        let mut uow = self.core.begin_for(caller).await?;
        let (kind, scope_id) = match input.scope {
            PriceListScope::Everyone => ("everyone", None),
            PriceListScope::CustomerGroup(id) => {
                self.accounts.ensure_group_in(&uow, id).await?;
                ("customer_group", Some(id))
            }
            PriceListScope::Company(id) => {
                self.companies.ensure_company_in(&uow, id).await?;
                ("company", Some(id))
            }
            PriceListScope::Location(id) => {
                self.companies.ensure_location_in(&uow, id).await?;
                ("location", Some(id))
            }
        };
        let now = Utc::now();
        let id = Uuid::now_v7();
        let created = price_list::Entity::insert(price_list::ActiveModel {
            id: Set(id),
            tenant_id: Set(caller.tenant.0),
            name: Set(name),
            priority: Set(input.priority),
            scope_kind: Set(kind.into()),
            scope_id: Set(scope_id),
            currency: Set(currency.to_string()),
            valid_from: Set(input.valid_from),
            valid_until: Set(input.valid_until),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(uow.tx())
        .await?;
        uow.record(DomainEvent::new(
            caller.tenant,
            "price_list",
            id,
            1,
            "vectis.price_list.created",
            json!({ "id": id, "name": created.name, "priority": created.priority, "scope": kind, "scopeId": scope_id,
                    "currency": created.currency, "validFrom": created.valid_from, "validUntil": created.valid_until }),
        ));
        uow.commit().await?;
        Ok(created)
    }

    /// The tenant's price lists by priority (`CATALOG_READ`).
    pub async fn lists(&self, caller: &Caller) -> AppResult<Vec<price_list::Model>> {
        caller.require(Permission::CatalogRead)?;
        let tenant = caller.tenant;
        self.core
            .read(tenant, |tx| {
                Box::pin(async move {
                    Ok(price_list::Entity::find()
                        .filter(price_list::Column::TenantId.eq(tenant.0))
                        .order_by_desc(price_list::Column::Priority)
                        .order_by_asc(price_list::Column::Id)
                        .all(tx)
                        .await?)
                })
            })
            .await
    }

    /// Sets the tiers of up to 10,000 SKUs in a price list, replacing their previous tiers.
    /// All-or-nothing: any bad item leaves the list unchanged and is reported with its index.
    pub async fn set_prices(
        &self,
        caller: &Caller,
        list_id: Uuid,
        items: Vec<SkuTiers>,
    ) -> AppResult<Vec<ItemError>> {
        caller.require(Permission::CatalogWrite)?;
        if items.len() > MAX_ITEMS {
            return Err(AppError::validation(
                "prices",
                format!("at most {MAX_ITEMS} items per call"),
            ));
        }
        let mut errors = Vec::new();
        let mut seen = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(first) = seen.insert(item.sku.as_str(), i) {
                errors.push(ItemError::new(
                    i,
                    code::DUPLICATE_SKU,
                    Some("sku"),
                    format!("SKU `{}` appears twice (first at index {first})", item.sku),
                ));
            }
            if item.tiers.len() > MAX_TIERS {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("tiers"),
                    format!("at most {MAX_TIERS} tiers"),
                ));
            }
            let mut quantities = HashSet::new();
            for (min, amount) in &item.tiers {
                if *min < 1 || *min > MAX_LINE_QUANTITY {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("tiers"),
                        format!("minQuantity must be between 1 and {MAX_LINE_QUANTITY}"),
                    ));
                } else if !quantities.insert(*min) {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("tiers"),
                        format!("minQuantity {min} given twice"),
                    ));
                }
                if let Err(message) = validate_amount(*amount) {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("tiers"),
                        format!("amount {message}"),
                    ));
                }
            }
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        price_list::Entity::find_by_id(list_id)
            .filter(price_list::Column::TenantId.eq(tenant.0))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("PriceList", list_id))?;
        let skus = items.iter().map(|i| i.sku.clone()).collect();
        let variants: HashMap<String, Uuid> =
            catalog::variants_by_sku(uow.tx(), tenant, skus, true)
                .await?
                .into_iter()
                .map(|v| (v.sku, v.id))
                .collect();
        for (i, item) in items.iter().enumerate() {
            if !variants.contains_key(&item.sku) {
                errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("sku"),
                    format!("SKU `{}` not found", item.sku),
                ));
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.index);
            return Ok(errors);
        }
        let ids: Vec<Uuid> = items
            .iter()
            .filter_map(|i| variants.get(&i.sku).copied())
            .collect();
        price_list_price::Entity::delete_many()
            .filter(price_list_price::Column::TenantId.eq(tenant.0))
            .filter(price_list_price::Column::PriceListId.eq(list_id))
            .filter(id_in(
                self.core.db.backend(),
                (
                    price_list_price::Entity,
                    price_list_price::Column::VariantId,
                ),
                ids,
            ))
            .exec(uow.tx())
            .await?;
        let now = Utc::now();
        let rows: Vec<price_list_price::ActiveModel> = items
            .iter()
            .flat_map(|item| {
                let variant = variants[&item.sku];
                item.tiers
                    .iter()
                    .map(move |(min, amount)| price_list_price::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        tenant_id: Set(tenant.0),
                        price_list_id: Set(list_id),
                        variant_id: Set(variant),
                        min_quantity: Set(*min),
                        unit_amount: Set(*amount),
                        created_at: Set(now),
                        updated_at: Set(now),
                    })
            })
            .collect();
        for chunk in rows.chunks(2_000) {
            price_list_price::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(uow.tx())
                .await?;
        }
        uow
            .change::<price_list::Entity>(list_id, Vec::<(price_list::Column, Expr)>::new(), "vectis.price_list.prices_set", |_| json!({ "id": list_id, "prices": items.iter().map(|i| json!({
                "sku": i.sku,
                "tiers": i.tiers.iter().map(|(m, a)| json!({ "minQuantity": m, "amount": a })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>() }))
            .await?;
        uow.commit().await?;
        Ok(Vec::new())
    }

    /// Who is buying: customer group, company chain, location and tax status, read in a
    /// constant number of statements.
    pub async fn buyer(&self, caller: &Caller) -> AppResult<Buyer> {
        let mut buyer = Buyer::default();
        if let Principal::Customer { id, membership, .. } = &caller.principal {
            buyer.customer = Some(*id);
            buyer.customer_group = self
                .accounts
                .customer(caller.tenant, *id)
                .await?
                .and_then(|c| c.customer_group_id);
            if let Some(m) = membership {
                let view = self.companies.company(caller, m.company_id).await?;
                let effective = view.effective();
                buyer.company = Some(m.company_id);
                buyer.companies = view.ancestry().iter().map(|c| c.id).collect();
                buyer.customer_group = buyer.customer_group.or(effective.customer_group_id);
                buyer.vat_id = effective.vat_id;
                buyer.tax_exempt = effective.tax_exempt;
                buyer.payment_terms = Some(effective.payment_terms.code().to_owned());
                buyer.credit = effective
                    .credit_holder
                    .zip(effective.credit)
                    .map(|(holder, (limit, exposure))| (holder, limit, exposure));
                if let Some(location_id) = m.location_id {
                    let location = self
                        .companies
                        .locations(caller.tenant, vec![m.company_id])
                        .await?
                        .into_iter()
                        .find(|l| l.id == location_id);
                    if let Some(l) = location {
                        if l.vat_id.is_some() {
                            buyer.vat_id = l.vat_id.clone();
                        }
                        if let Some(exempt) = l.tax_exempt {
                            buyer.tax_exempt = exempt;
                        }
                        if let Some(terms) = &l.payment_terms {
                            buyer.payment_terms = Some(terms.clone());
                        }
                        buyer.location_country = Some(l.country_code.clone());
                        buyer.location = Some(l);
                    }
                }
            }
        }
        Ok(buyer)
    }

    /// The pricing context of a caller: customer group, company chain and location.
    async fn context(&self, caller: &Caller, currency: CurrencyCode) -> AppResult<PricingContext> {
        Ok(self.buyer(caller).await?.pricing(currency))
    }

    /// Loads what pricing needs for `variants` in three statements.
    pub async fn data(
        &self,
        tenant: TenantId,
        variants: Vec<Uuid>,
        currency: CurrencyCode,
    ) -> AppResult<PricingData> {
        let tx = self.core.db.read(Scope::Tenant(tenant)).await?;
        let data = self.data_in(&tx, tenant, variants, currency).await?;
        tx.commit().await?;
        Ok(data)
    }

    /// Like [`PricingService::data`], inside the caller's transaction.
    pub async fn data_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        tenant: TenantId,
        variants: Vec<Uuid>,
        currency: CurrencyCode,
    ) -> AppResult<PricingData> {
        let backend = self.core.db.backend();
        let bases =
            catalog::base_prices(tx, tenant, variants.clone(), &currency.to_string()).await?;
        let lists = price_list::Entity::find()
            .filter(price_list::Column::TenantId.eq(tenant.0))
            .filter(price_list::Column::Currency.eq(currency.to_string()))
            .all(tx)
            .await?;
        let list_ids: Vec<Uuid> = lists.iter().map(|l| l.id).collect();
        let tiers = if list_ids.is_empty() {
            Vec::new()
        } else {
            price_list_price::Entity::find()
                .filter(price_list_price::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    backend,
                    (
                        price_list_price::Entity,
                        price_list_price::Column::VariantId,
                    ),
                    variants,
                ))
                .filter(id_in(
                    backend,
                    (
                        price_list_price::Entity,
                        price_list_price::Column::PriceListId,
                    ),
                    list_ids,
                ))
                .all(tx)
                .await?
        };
        let mut data = PricingData::default();
        for b in bases {
            data.base_prices
                .entry(b.variant_id)
                .or_default()
                .push(Money::new(b.amount, currency));
        }
        data.price_lists = lists
            .iter()
            .map(|l| PriceList {
                id: l.id,
                priority: l.priority,
                scope: scope_of(l),
                currency,
                valid_from: l.valid_from.map(|t| t.timestamp()),
                valid_until: l.valid_until.map(|t| t.timestamp()),
            })
            .collect();
        let mut grouped: HashMap<(Uuid, Uuid), Vec<Tier>> = HashMap::new();
        for t in tiers {
            grouped
                .entry((t.variant_id, t.price_list_id))
                .or_default()
                .push(Tier {
                    min_quantity: t.min_quantity,
                    unit_amount: t.unit_amount,
                });
        }
        for ((variant, list), tiers) in grouped {
            data.list_prices
                .entry(variant)
                .or_default()
                .push(ListPrice {
                    price_list: list,
                    tiers,
                });
        }
        Ok(data)
    }

    /// What `buyer` pays for each of `variants` in `currency`: the unit price at quantity 1
    /// and its source, the base price, and the volume breaks where the buyer's unit price
    /// changes. One pricing-data load (three statements) and one strategy call for all of them.
    pub async fn variant_prices(
        &self,
        buyer: &Buyer,
        tenant: TenantId,
        variants: Vec<Uuid>,
        currency: CurrencyCode,
    ) -> AppResult<HashMap<Uuid, VariantPrice>> {
        let data = self.data(tenant, variants.clone(), currency).await?;
        let ctx = buyer.pricing(currency);
        let mut lines = Vec::new();
        for v in &variants {
            // Quantity 1, then every tier minimum a price list has for the variant.
            let mut quantities: std::collections::BTreeSet<i64> = [1].into();
            for lp in data.list_prices.get(v).into_iter().flatten() {
                quantities.extend(lp.tiers.iter().map(|t| t.min_quantity).filter(|q| *q > 1));
            }
            lines.extend(quantities.into_iter().map(|quantity| PriceLine {
                variant: *v,
                quantity,
            }));
        }
        let prices = self.strategies.pricing.price(&ctx, &lines, &data);
        let mut out: HashMap<Uuid, VariantPrice> = HashMap::new();
        for (line, price) in lines.iter().zip(prices) {
            let entry = out.entry(line.variant).or_insert_with(|| VariantPrice {
                unit: None,
                base: data
                    .base_prices
                    .get(&line.variant)
                    .and_then(|p| p.iter().find(|m| m.currency == currency))
                    .copied(),
                tiers: Vec::new(),
            });
            let Ok(price) = price else {
                continue;
            };
            if line.quantity == 1 {
                entry.unit = Some(price);
                continue;
            }
            let previous = entry
                .tiers
                .last()
                .map(|t| t.1.unit)
                .or(entry.unit.map(|u| u.unit));
            if previous != Some(price.unit) {
                entry.tiers.push((line.quantity, price));
            }
        }
        Ok(out)
    }

    /// Prices many lines at once for the caller (their company, location and group), with a
    /// constant number of statements. Lines that cannot be priced are reported, not fatal.
    pub async fn quote(
        &self,
        caller: &Caller,
        currency: &str,
        lines: Vec<QuoteLine>,
    ) -> AppResult<Quote> {
        if lines.len() > MAX_ITEMS {
            return Err(AppError::validation(
                "lines",
                format!("at most {MAX_ITEMS} lines per quote"),
            ));
        }
        let currency: CurrencyCode =
            currency
                .parse()
                .map_err(|e: vectis_strategies::MoneyError| {
                    AppError::validation("currency", e.to_string())
                })?;
        let ctx = self.context(caller, currency).await?;
        let tenant = caller.tenant;
        let skus: Vec<String> = lines
            .iter()
            .map(|l| l.sku.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let variants: HashMap<String, variant::Model> = self
            .core
            .read(tenant, |tx| {
                Box::pin(catalog::variants_by_sku(tx, tenant, skus, false))
            })
            .await?
            .into_iter()
            .map(|v| (v.sku.clone(), v))
            .collect();
        let mut errors = Vec::new();
        let mut priced_input = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match variants.get(&line.sku) {
                None => errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("sku"),
                    format!("SKU `{}` not found", line.sku),
                )),
                Some(_) if !(1..=MAX_LINE_QUANTITY).contains(&line.quantity) => {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("quantity"),
                        format!("must be between 1 and {MAX_LINE_QUANTITY}"),
                    ))
                }
                Some(v) => priced_input.push((i, v.clone(), line.quantity)),
            }
        }
        let ids: Vec<Uuid> = priced_input
            .iter()
            .map(|(_, v, _)| v.id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let data = self.data(tenant, ids, currency).await?;
        let price_lines: Vec<PriceLine> = priced_input
            .iter()
            .map(|(_, v, q)| PriceLine {
                variant: v.id,
                quantity: *q,
            })
            .collect();
        let prices = self.strategies.pricing.price(&ctx, &price_lines, &data);
        let mut out = Vec::with_capacity(prices.len());
        let mut subtotal = Money::zero(currency);
        for ((index, variant, quantity), price) in priced_input.into_iter().zip(prices) {
            match price {
                Ok(price) => {
                    let line_price = price.unit.checked_mul(quantity).map_err(|_| {
                        AppError::validation("quantity", "the line price overflows")
                    })?;
                    subtotal = subtotal
                        .checked_add(line_price)
                        .map_err(|_| AppError::validation("lines", "the subtotal overflows"))?;
                    out.push(QuotedLine {
                        index,
                        variant,
                        quantity,
                        price,
                        line_price,
                    });
                }
                Err(PricingError::NoPrice(c)) => errors.push(ItemError::new(
                    index,
                    "NO_PRICE",
                    Some("sku"),
                    format!("no price in {c}"),
                )),
                Err(PricingError::InvalidQuantity) => errors.push(ItemError::new(
                    index,
                    code::VALIDATION,
                    Some("quantity"),
                    "must be positive",
                )),
            }
        }
        errors.sort_by_key(|e| e.index);
        Ok(Quote {
            lines: out,
            errors,
            subtotal,
        })
    }
}
