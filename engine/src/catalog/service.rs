//! Catalog reads and writes.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use uuid::Uuid;
use vectis_strategies::CurrencyCode;

use super::entity::{
    collection, option, option_group, price, product, product_collection, variant, variant_option,
};
use crate::auth::{Caller, Permission};
use crate::db::page::{Page, PageRequest};
use crate::db::{Db, Scope, id_in, is_unique_violation};
use crate::error::{AppError, AppResult, ItemError, code};
use crate::events::{Core, DomainEvent, UnitOfWork};
use crate::kernel::TenantId;

/// Largest page of products.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Most variants in one `upsertVariants` call.
pub const MAX_UPSERT_VARIANTS: usize = 10_000;
/// Most SKUs in one `variantsBySku` call.
pub const MAX_SKUS_PER_LOOKUP: usize = 10_000;
/// Largest unit price accepted, in minor units (10^13, i.e. 100 billion in a 2-digit currency).
pub const MAX_PRICE_MINOR: i64 = 10_000_000_000_000;
/// Rows per multi-row insert.
const WRITE_CHUNK: usize = 1_000;

/// Product and variant status.
pub const ACTIVE: &str = "active";
/// Archived: hidden from storefronts, kept for history and orders.
pub const ARCHIVED: &str = "archived";

/// A page request over products.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    /// Words that must all occur in the name, description, slug or a SKU.
    pub search: Option<String>,
    /// Include archived products (staff with `CATALOG_READ` only).
    pub include_archived: bool,
    /// The page (at most [`MAX_PAGE_SIZE`] products).
    pub page: PageRequest,
}

/// An option group of a new product.
#[derive(Debug, Clone)]
pub struct NewOptionGroup {
    /// Code unique within the product, e.g. `size`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `(code, name)` of each option, in display order.
    pub options: Vec<(String, String)>,
}

/// Input of [`CatalogService::create_product`].
#[derive(Debug, Clone, Default)]
pub struct NewProduct {
    /// Name.
    pub name: String,
    /// URL slug; derived from the name when absent.
    pub slug: Option<String>,
    /// Description (plain text or HTML, stored as given).
    pub description: String,
    /// Collections the product belongs to.
    pub collection_ids: Vec<Uuid>,
    /// Option groups (e.g. size, finish).
    pub option_groups: Vec<NewOptionGroup>,
}

/// Input of [`CatalogService::update_product`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Replaces the product's collections.
    pub collection_ids: Option<Vec<Uuid>>,
}

/// One item of [`CatalogService::upsert_variants`]; it states the variant in full (prices and
/// options replace what was stored).
#[derive(Debug, Clone)]
pub struct VariantUpsert {
    /// The owning product.
    pub product_id: Uuid,
    /// Stock keeping unit, unique per tenant; the key of the upsert.
    pub sku: String,
    /// Name.
    pub name: String,
    /// `active` or `archived`.
    pub archived: bool,
    /// Base prices, one per currency: `(currency code as given, minor units)`.
    pub prices: Vec<(String, i64)>,
    /// `(option group code, option code)` pairs.
    pub options: Vec<(String, String)>,
    /// Tax category: `standard`, `reduced` or `zero`.
    pub tax_category: String,
    /// Weight of one unit in grams.
    pub weight_grams: i64,
}

/// The tax categories variants may have.
pub const TAX_CATEGORIES: [&str; 3] = ["standard", "reduced", "zero"];
/// Heaviest unit, in grams (100 t).
pub const MAX_WEIGHT_GRAMS: i64 = 100_000_000;

/// Result of a bulk upsert: either all variants were written, or none and `errors` says why.
#[derive(Debug, Clone, Default)]
pub struct UpsertOutcome {
    /// The written variants, in input order (empty when `errors` is not).
    pub variants: Vec<variant::Model>,
    /// The invalid items.
    pub errors: Vec<ItemError>,
}

/// Input of [`CatalogService::create_collection`].
#[derive(Debug, Clone, Default)]
pub struct NewCollection {
    /// Name.
    pub name: String,
    /// Slug; derived from the name when absent.
    pub slug: Option<String>,
    /// Parent collection for a tree.
    pub parent_id: Option<Uuid>,
    /// Position among siblings.
    pub position: i32,
}

/// Catalog reads and writes.
#[derive(Clone)]
pub struct CatalogService {
    core: Core,
}

/// Turns a name into a URL slug: lower-case ASCII letters and digits separated by `-`.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug.truncate(200);
    slug
}

fn validate_name(field: &str, name: &str, max: usize) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(AppError::validation(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    Ok(name.to_owned())
}

fn validate_product_slug(field: &str, slug: &str) -> AppResult<String> {
    let ok = !slug.is_empty()
        && slug.len() <= 200
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(AppError::validation(
            field,
            "must be 1-200 characters of lower-case letters, digits and '-'",
        ))
    }
}

/// Checks a SKU: 1–128 characters of letters, digits and `-_./`.
pub fn validate_sku(sku: &str) -> Result<(), String> {
    if sku.is_empty() || sku.len() > 128 {
        return Err("must be 1-128 characters".into());
    }
    if !sku
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    {
        return Err("may contain only letters, digits and - _ . /".into());
    }
    Ok(())
}

/// Checks a code (option groups, customer groups, roles): 1–64 characters of letters, digits,
/// `-` and `_`; returns it trimmed.
pub fn validate_code(field: &str, code: &str) -> AppResult<String> {
    let code = code.trim();
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(code.to_owned())
    } else {
        Err(AppError::validation(
            field,
            "must be 1-64 characters of letters, digits, '-' and '_'",
        ))
    }
}

/// Checks a base price amount.
pub fn validate_amount(amount: i64) -> Result<(), String> {
    if amount < 0 {
        return Err("must not be negative".into());
    }
    if amount > MAX_PRICE_MINOR {
        return Err(format!("must not exceed {MAX_PRICE_MINOR} minor units"));
    }
    Ok(())
}

fn search_text(name: &str, slug: &str, description: &str) -> String {
    format!("{name} {slug} {description}").to_lowercase()
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn slug_conflict(err: sea_orm::DbErr, what: &str, slug: &str) -> AppError {
    if is_unique_violation(
        &err,
        &format!("uq_{what}_tenant_slug"),
        &format!("{what}.slug"),
    ) {
        AppError::Conflict {
            code: code::CONFLICT,
            message: format!("slug `{slug}` is taken"),
        }
    } else {
        err.into()
    }
}

impl CatalogService {
    /// A service over `core`.
    pub fn new(core: Core) -> Self {
        CatalogService { core }
    }

    fn db(&self) -> &Db {
        &self.core.db
    }

    /// A page of products matching `query`, with the total count.
    pub async fn list_products(
        &self,
        tenant: TenantId,
        query: ProductQuery,
    ) -> AppResult<Page<product::Model>> {
        if query.page.first > MAX_PAGE_SIZE {
            return Err(AppError::validation(
                "first",
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            ));
        }
        let mut filter = product::Entity::find().filter(product::Column::TenantId.eq(tenant.0));
        if !query.include_archived {
            filter = filter.filter(product::Column::Status.eq(ACTIVE));
        }
        if let Some(search) = &query.search {
            crate::db::contains_pattern("search", search)?;
            for word in search.split_whitespace().take(8) {
                let Some(pattern) = crate::db::contains_pattern("search", word)? else {
                    continue;
                };
                filter = filter.filter(
                    Expr::col((product::Entity, product::Column::SearchText))
                        .like(LikeExpr::new(pattern).escape('\\')),
                );
            }
        }
        let tx = self.db().read(Scope::Tenant(tenant)).await?;
        let total = filter.clone().count(&tx).await?;
        let rows = query
            .page
            .apply(filter, product::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(query.page.page(rows, total))
    }

    /// Variants by id (one query); archived ones only with `include_archived`.
    pub async fn variants_by_ids(
        &self,
        tenant: TenantId,
        ids: Vec<Uuid>,
        include_archived: bool,
    ) -> AppResult<Vec<variant::Model>> {
        let tx = self.db().read(Scope::Tenant(tenant)).await?;
        let rows = super::read::variants_by_id(&tx, tenant, ids, include_archived).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Variants by SKU, aligned with `skus` (`None` where unknown or not visible).
    pub async fn variants_by_sku(
        &self,
        tenant: TenantId,
        skus: &[String],
        include_archived: bool,
    ) -> AppResult<Vec<Option<variant::Model>>> {
        if skus.len() > MAX_SKUS_PER_LOOKUP {
            return Err(AppError::validation(
                "skus",
                format!("at most {MAX_SKUS_PER_LOOKUP} SKUs per call"),
            ));
        }
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.db().read(Scope::Tenant(tenant)).await?;
        let mut q = variant::Entity::find()
            .filter(variant::Column::TenantId.eq(tenant.0))
            .filter(variant::Column::Sku.is_in(skus.iter().cloned()));
        if !include_archived {
            q = q.filter(variant::Column::Status.eq(ACTIVE)).filter(
                variant::Column::ProductId.in_subquery(
                    Query::select()
                        .column(product::Column::Id)
                        .from(product::Entity)
                        .and_where(product::Column::TenantId.eq(tenant.0))
                        .and_where(product::Column::Status.eq(ACTIVE))
                        .to_owned(),
                ),
            );
        }
        let found = q.all(&tx).await?;
        tx.commit().await?;
        let by_sku: HashMap<String, variant::Model> =
            found.into_iter().map(|v| (v.sku.clone(), v)).collect();
        Ok(skus.iter().map(|sku| by_sku.get(sku).cloned()).collect())
    }

    /// Products by slug (any status).
    pub async fn products_by_slug(
        &self,
        tenant: TenantId,
        slugs: &[String],
    ) -> AppResult<HashMap<String, product::Model>> {
        if slugs.is_empty() {
            return Ok(HashMap::new());
        }
        let tx = self.db().read(Scope::Tenant(tenant)).await?;
        let found = product::Entity::find()
            .filter(product::Column::TenantId.eq(tenant.0))
            .filter(product::Column::Slug.is_in(slugs.iter().cloned()))
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(found.into_iter().map(|p| (p.slug.clone(), p)).collect())
    }

    /// All collections of the tenant, ordered by position and name.
    pub async fn collections(&self, tenant: TenantId) -> AppResult<Vec<collection::Model>> {
        let tx = self.db().read(Scope::Tenant(tenant)).await?;
        let all = collection::Entity::find()
            .filter(collection::Column::TenantId.eq(tenant.0))
            .order_by_asc(collection::Column::Position)
            .order_by_asc(collection::Column::Name)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(all)
    }

    /// Creates a collection.
    pub async fn create_collection(
        &self,
        caller: &Caller,
        input: NewCollection,
    ) -> AppResult<collection::Model> {
        caller.require(Permission::CatalogWrite)?;
        let name = validate_name("name", &input.name, 200)?;
        let slug = validate_product_slug(
            "slug",
            &input.slug.clone().unwrap_or_else(|| slugify(&name)),
        )?;
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        if let Some(parent) = input.parent_id {
            let exists = collection::Entity::find_by_id(parent)
                .filter(collection::Column::TenantId.eq(tenant.0))
                .one(uow.tx())
                .await?;
            if exists.is_none() {
                return Err(AppError::not_found("Collection", parent));
            }
        }
        let now = Utc::now();
        let id = Uuid::now_v7();
        let model = collection::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            parent_id: Set(input.parent_id),
            slug: Set(slug.clone()),
            name: Set(name),
            position: Set(input.position),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let created = collection::Entity::insert(model)
            .exec_with_returning(uow.tx())
            .await
            .map_err(|e| slug_conflict(e, "collections", &slug))?;
        uow.record(DomainEvent::new(
            tenant,
            "collection",
            id,
            1,
            "vectis.collection.created",
            json!({ "id": id, "slug": created.slug, "name": created.name, "parentId": created.parent_id }),
        ));
        uow.commit().await?;
        Ok(created)
    }

    async fn check_collections(uow: &UnitOfWork, ids: &[Uuid]) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        let found: HashSet<Uuid> = collection::Entity::find()
            .select_only()
            .column(collection::Column::Id)
            .filter(collection::Column::TenantId.eq(uow.tenant().0))
            .filter(collection::Column::Id.is_in(unique.iter().copied()))
            .into_tuple::<Uuid>()
            .all(uow.tx())
            .await?
            .into_iter()
            .collect();
        if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
            return Err(AppError::not_found("Collection", missing));
        }
        Ok(())
    }

    async fn replace_collections(uow: &UnitOfWork, product: Uuid, ids: &[Uuid]) -> AppResult<()> {
        let tenant = uow.tenant();
        product_collection::Entity::delete_many()
            .filter(product_collection::Column::TenantId.eq(tenant.0))
            .filter(product_collection::Column::ProductId.eq(product))
            .exec(uow.tx())
            .await?;
        let unique: Vec<Uuid> = ids
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unique.is_empty() {
            product_collection::Entity::insert_many(unique.into_iter().map(|c| {
                product_collection::ActiveModel {
                    tenant_id: Set(tenant.0),
                    product_id: Set(product),
                    collection_id: Set(c),
                }
            }))
            .exec_without_returning(uow.tx())
            .await?;
        }
        Ok(())
    }

    /// Creates a product with its option groups and collection memberships.
    pub async fn create_product(
        &self,
        caller: &Caller,
        input: NewProduct,
    ) -> AppResult<product::Model> {
        caller.require(Permission::CatalogWrite)?;
        let name = validate_name("name", &input.name, 500)?;
        let slug = match &input.slug {
            Some(slug) => validate_product_slug("slug", slug)?,
            None => validate_product_slug("name", &slugify(&name))?,
        };
        if input.description.len() > 100_000 {
            return Err(AppError::validation(
                "description",
                "must be at most 100000 bytes",
            ));
        }
        let mut group_codes = HashSet::new();
        let mut groups = Vec::with_capacity(input.option_groups.len());
        for (i, group) in input.option_groups.iter().enumerate() {
            let field = format!("optionGroups[{i}]");
            let code = validate_code(&format!("{field}.code"), &group.code)?;
            if !group_codes.insert(code.clone()) {
                return Err(AppError::validation(
                    &field,
                    format!("duplicate option group code `{code}`"),
                ));
            }
            let gname = validate_name(&format!("{field}.name"), &group.name, 200)?;
            let mut option_codes = HashSet::new();
            let mut options = Vec::new();
            for (j, (ocode, oname)) in group.options.iter().enumerate() {
                let ofield = format!("{field}.options[{j}]");
                let ocode = validate_code(&format!("{ofield}.code"), ocode)?;
                if !option_codes.insert(ocode.clone()) {
                    return Err(AppError::validation(
                        &ofield,
                        format!("duplicate option code `{ocode}`"),
                    ));
                }
                options.push((ocode, validate_name(&format!("{ofield}.name"), oname, 200)?));
            }
            groups.push((code, gname, options));
        }

        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        Self::check_collections(&uow, &input.collection_ids).await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let model = product::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            slug: Set(slug.clone()),
            name: Set(name.clone()),
            description: Set(input.description.clone()),
            status: Set(ACTIVE.into()),
            search_text: Set(search_text(&name, &slug, &input.description)),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let created = product::Entity::insert(model)
            .exec_with_returning(uow.tx())
            .await
            .map_err(|e| slug_conflict(e, "products", &slug))?;

        let mut group_rows = Vec::new();
        let mut option_rows = Vec::new();
        for (position, (code, gname, options)) in groups.iter().enumerate() {
            let group_id = Uuid::now_v7();
            group_rows.push(option_group::ActiveModel {
                id: Set(group_id),
                tenant_id: Set(tenant.0),
                product_id: Set(id),
                code: Set(code.clone()),
                name: Set(gname.clone()),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                created_at: Set(now),
                updated_at: Set(now),
            });
            for (opos, (ocode, oname)) in options.iter().enumerate() {
                option_rows.push(option::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    tenant_id: Set(tenant.0),
                    group_id: Set(group_id),
                    code: Set(ocode.clone()),
                    name: Set(oname.clone()),
                    position: Set(i32::try_from(opos).unwrap_or(i32::MAX)),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
            }
        }
        if !group_rows.is_empty() {
            option_group::Entity::insert_many(group_rows)
                .exec_without_returning(uow.tx())
                .await?;
        }
        for chunk in option_rows.chunks(WRITE_CHUNK) {
            option::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(uow.tx())
                .await?;
        }
        Self::replace_collections(&uow, id, &input.collection_ids).await?;
        uow.record(DomainEvent::new(
            tenant,
            "product",
            id,
            created.version,
            "vectis.product.created",
            json!({
                "id": id,
                "slug": created.slug,
                "name": created.name,
                "status": created.status,
                "collectionIds": input.collection_ids,
                "optionGroups": groups.iter().map(|(code, name, options)| json!({
                    "code": code,
                    "name": name,
                    "options": options.iter().map(|(c, n)| json!({"code": c, "name": n})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
        ));
        uow.commit().await?;
        Ok(created)
    }

    async fn bump_product(
        uow: &UnitOfWork,
        id: Uuid,
        sets: Vec<(product::Column, Expr)>,
    ) -> AppResult<product::Model> {
        uow.bump::<product::Entity>(id, sets, "Product").await
    }

    /// Changes a product's name, slug, description or collections.
    pub async fn update_product(
        &self,
        caller: &Caller,
        id: Uuid,
        patch: ProductPatch,
    ) -> AppResult<product::Model> {
        caller.require(Permission::CatalogWrite)?;
        let name = patch
            .name
            .as_deref()
            .map(|n| validate_name("name", n, 500))
            .transpose()?;
        let slug = patch
            .slug
            .as_deref()
            .map(|s| validate_product_slug("slug", s))
            .transpose()?;
        if patch
            .description
            .as_ref()
            .is_some_and(|d| d.len() > 100_000)
        {
            return Err(AppError::validation(
                "description",
                "must be at most 100000 bytes",
            ));
        }
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let current = product::Entity::find_by_id(id)
            .filter(product::Column::TenantId.eq(tenant.0))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Product", id))?;
        if let Some(ids) = &patch.collection_ids {
            Self::check_collections(&uow, ids).await?;
        }
        let new_name = name.clone().unwrap_or_else(|| current.name.clone());
        let new_slug = slug.clone().unwrap_or_else(|| current.slug.clone());
        let new_description = patch
            .description
            .clone()
            .unwrap_or_else(|| current.description.clone());
        let mut sets = vec![(
            product::Column::SearchText,
            Expr::value(search_text(&new_name, &new_slug, &new_description)),
        )];
        if let Some(name) = &name {
            sets.push((product::Column::Name, Expr::value(name.clone())));
        }
        if let Some(slug) = &slug {
            sets.push((product::Column::Slug, Expr::value(slug.clone())));
        }
        if let Some(description) = &patch.description {
            sets.push((
                product::Column::Description,
                Expr::value(description.clone()),
            ));
        }
        let updated = Self::bump_product(&uow, id, sets)
            .await
            .map_err(|e| match e {
                AppError::Internal(cause) => match cause.downcast::<sea_orm::DbErr>() {
                    Ok(db) => slug_conflict(db, "products", &new_slug),
                    Err(other) => AppError::Internal(other),
                },
                other => other,
            })?;
        if let Some(ids) = &patch.collection_ids {
            Self::replace_collections(&uow, id, ids).await?;
        }
        let mut changes = serde_json::Map::new();
        if name.is_some() {
            changes.insert("name".into(), json!(updated.name));
        }
        if slug.is_some() {
            changes.insert("slug".into(), json!(updated.slug));
        }
        if patch.description.is_some() {
            changes.insert("description".into(), json!(updated.description));
        }
        if let Some(ids) = &patch.collection_ids {
            changes.insert("collectionIds".into(), json!(ids));
        }
        uow.record(DomainEvent::new(
            tenant,
            "product",
            id,
            updated.version,
            "vectis.product.updated",
            json!({ "id": id, "changes": changes }),
        ));
        uow.commit().await?;
        Ok(updated)
    }

    /// Archives a product: storefronts stop seeing it and its variants; staff still do.
    pub async fn archive_product(&self, caller: &Caller, id: Uuid) -> AppResult<product::Model> {
        caller.require(Permission::CatalogWrite)?;
        let tenant = caller.tenant;
        let mut uow = self.core.begin_for(caller).await?;
        let current = product::Entity::find_by_id(id)
            .filter(product::Column::TenantId.eq(tenant.0))
            .one(uow.tx())
            .await?
            .ok_or_else(|| AppError::not_found("Product", id))?;
        if current.status == ARCHIVED {
            return Ok(current);
        }
        let updated = Self::bump_product(
            &uow,
            id,
            vec![(product::Column::Status, Expr::value(ARCHIVED))],
        )
        .await?;
        uow.record(DomainEvent::new(
            tenant,
            "product",
            id,
            updated.version,
            "vectis.product.archived",
            json!({ "id": id }),
        ));
        uow.commit().await?;
        Ok(updated)
    }

    /// Creates or updates many variants by SKU in one transaction.
    ///
    /// All-or-nothing: when any item is invalid, nothing is written and every invalid item is
    /// reported with its index. The number of SQL statements does not depend on the number of
    /// items (up to [`MAX_UPSERT_VARIANTS`]).
    pub async fn upsert_variants(
        &self,
        caller: &Caller,
        items: Vec<VariantUpsert>,
    ) -> AppResult<UpsertOutcome> {
        caller.require(Permission::CatalogWrite)?;
        if items.len() > MAX_UPSERT_VARIANTS {
            return Err(AppError::validation(
                "input",
                format!("at most {MAX_UPSERT_VARIANTS} variants per call"),
            ));
        }
        let tenant = caller.tenant;
        let mut errors = Vec::new();

        // 1. Shape of each item.
        let mut parsed_prices: Vec<Vec<(CurrencyCode, i64)>> = Vec::with_capacity(items.len());
        let mut seen_skus: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Err(msg) = validate_sku(&item.sku) {
                errors.push(ItemError::new(i, code::VALIDATION, Some("sku"), msg));
            } else if let Some(first) = seen_skus.insert(item.sku.as_str(), i) {
                errors.push(ItemError::new(
                    i,
                    code::DUPLICATE_SKU,
                    Some("sku"),
                    format!(
                        "SKU `{}` appears twice in the input (first at index {first})",
                        item.sku
                    ),
                ));
            }
            if let Err(AppError::Validation { message, .. }) =
                validate_name("name", &item.name, 500)
            {
                errors.push(ItemError::new(i, code::VALIDATION, Some("name"), message));
            }
            if !TAX_CATEGORIES.contains(&item.tax_category.as_str()) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("taxCategory"),
                    format!("must be one of {}", TAX_CATEGORIES.join(", ")),
                ));
            }
            if !(0..=MAX_WEIGHT_GRAMS).contains(&item.weight_grams) {
                errors.push(ItemError::new(
                    i,
                    code::VALIDATION,
                    Some("weightGrams"),
                    format!("must be between 0 and {MAX_WEIGHT_GRAMS}"),
                ));
            }
            let mut prices = Vec::with_capacity(item.prices.len());
            let mut currencies = HashSet::new();
            for (currency, amount) in &item.prices {
                match currency.parse::<CurrencyCode>() {
                    Err(e) => errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("prices"),
                        e.to_string(),
                    )),
                    Ok(c) if !currencies.insert(c) => errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("prices"),
                        format!("currency {c} given twice"),
                    )),
                    Ok(c) => match validate_amount(*amount) {
                        Ok(()) => prices.push((c, *amount)),
                        Err(msg) => errors.push(ItemError::new(
                            i,
                            code::VALIDATION,
                            Some("prices"),
                            format!("{c} amount {msg}"),
                        )),
                    },
                }
            }
            parsed_prices.push(prices);
        }

        let mut uow = self.core.begin_for(caller).await?;
        let backend = self.db().backend();

        // 2. Referenced products must exist in this tenant.
        let product_ids: Vec<Uuid> = items
            .iter()
            .map(|i| i.product_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let known_products: HashSet<Uuid> = product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(product::Column::TenantId.eq(tenant.0))
            .filter(id_in(
                backend,
                (product::Entity, product::Column::Id),
                product_ids.clone(),
            ))
            .into_tuple::<Uuid>()
            .all(uow.tx())
            .await?
            .into_iter()
            .collect();
        for (i, item) in items.iter().enumerate() {
            if !known_products.contains(&item.product_id) {
                errors.push(ItemError::new(
                    i,
                    code::NOT_FOUND,
                    Some("productId"),
                    format!("product {} not found", item.product_id),
                ));
            }
        }

        // 3. A SKU may not move between products.
        let existing: HashMap<String, Uuid> = if items.is_empty() {
            HashMap::new()
        } else {
            variant::Entity::find()
                .select_only()
                .column(variant::Column::Sku)
                .column(variant::Column::ProductId)
                .filter(variant::Column::TenantId.eq(tenant.0))
                .filter(variant::Column::Sku.is_in(items.iter().map(|i| i.sku.clone())))
                .into_tuple::<(String, Uuid)>()
                .all(uow.tx())
                .await?
                .into_iter()
                .collect()
        };
        for (i, item) in items.iter().enumerate() {
            if existing
                .get(&item.sku)
                .is_some_and(|p| *p != item.product_id)
            {
                errors.push(ItemError::new(
                    i,
                    code::DUPLICATE_SKU,
                    Some("sku"),
                    format!("SKU `{}` belongs to another product", item.sku),
                ));
            }
        }

        // 4. Options resolve within the variant's product.
        let groups = if product_ids.is_empty() {
            Vec::new()
        } else {
            option_group::Entity::find()
                .filter(option_group::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    backend,
                    (option_group::Entity, option_group::Column::ProductId),
                    product_ids,
                ))
                .all(uow.tx())
                .await?
        };
        let options = if groups.is_empty() {
            Vec::new()
        } else {
            option::Entity::find()
                .filter(option::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    backend,
                    (option::Entity, option::Column::GroupId),
                    groups.iter().map(|g| g.id).collect(),
                ))
                .all(uow.tx())
                .await?
        };
        let group_by_id: HashMap<Uuid, &option_group::Model> =
            groups.iter().map(|g| (g.id, g)).collect();
        let mut option_index: HashMap<(Uuid, &str, &str), Uuid> = HashMap::new();
        for o in &options {
            if let Some(g) = group_by_id.get(&o.group_id) {
                option_index.insert((g.product_id, g.code.as_str(), o.code.as_str()), o.id);
            }
        }
        let mut resolved_options: Vec<Vec<Uuid>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut ids = Vec::new();
            let mut used_groups = HashSet::new();
            for (group, opt) in &item.options {
                if !used_groups.insert(group.as_str()) {
                    errors.push(ItemError::new(
                        i,
                        code::VALIDATION,
                        Some("options"),
                        format!("option group `{group}` given twice"),
                    ));
                    continue;
                }
                match option_index.get(&(item.product_id, group.as_str(), opt.as_str())) {
                    Some(id) => ids.push(*id),
                    None if known_products.contains(&item.product_id) => {
                        errors.push(ItemError::new(
                            i,
                            code::VALIDATION,
                            Some("options"),
                            format!("the product has no option `{group}:{opt}`"),
                        ))
                    }
                    None => {}
                }
            }
            resolved_options.push(ids);
        }

        if !errors.is_empty() {
            errors.sort_by_key(|e| e.index);
            // Dropping the unit of work rolls the transaction back.
            return Ok(UpsertOutcome {
                variants: Vec::new(),
                errors,
            });
        }

        // 5. Write variants, prices and options with multi-row statements.
        let now = Utc::now();
        let mut written: Vec<variant::Model> = Vec::with_capacity(items.len());
        for chunk in items.chunks(WRITE_CHUNK) {
            let rows = chunk.iter().map(|item| variant::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant.0),
                product_id: Set(item.product_id),
                sku: Set(item.sku.clone()),
                name: Set(item.name.trim().to_owned()),
                status: Set(if item.archived { ARCHIVED } else { ACTIVE }.to_owned()),
                version: Set(1),
                tax_category: Set(item.tax_category.clone()),
                weight_grams: Set(item.weight_grams),
                created_at: Set(now),
                updated_at: Set(now),
            });
            let mut on_conflict =
                OnConflict::columns([variant::Column::TenantId, variant::Column::Sku]);
            on_conflict
                .update_columns([
                    variant::Column::Name,
                    variant::Column::Status,
                    variant::Column::TaxCategory,
                    variant::Column::WeightGrams,
                    variant::Column::UpdatedAt,
                ])
                .value(
                    variant::Column::Version,
                    Expr::col((variant::Entity, variant::Column::Version)).add(1),
                );
            let mut rows_written = variant::Entity::insert_many(rows)
                .on_conflict(on_conflict)
                .exec_with_returning(uow.tx())
                .await?;
            written.append(&mut rows_written);
        }
        let by_sku: HashMap<&str, &variant::Model> =
            written.iter().map(|v| (v.sku.as_str(), v)).collect();
        let mut ordered = Vec::with_capacity(items.len());
        for item in &items {
            let v = by_sku.get(item.sku.as_str()).ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("upsert returned no row for a SKU"))
            })?;
            ordered.push((*v).clone());
        }
        let variant_ids: Vec<Uuid> = ordered.iter().map(|v| v.id).collect();

        for ids in variant_ids.chunks(crate::db::MAX_IDS_PER_STATEMENT) {
            price::Entity::delete_many()
                .filter(price::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    backend,
                    (price::Entity, price::Column::VariantId),
                    ids.to_vec(),
                ))
                .exec(uow.tx())
                .await?;
            variant_option::Entity::delete_many()
                .filter(variant_option::Column::TenantId.eq(tenant.0))
                .filter(id_in(
                    backend,
                    (variant_option::Entity, variant_option::Column::VariantId),
                    ids.to_vec(),
                ))
                .exec(uow.tx())
                .await?;
        }
        let price_rows: Vec<price::ActiveModel> = ordered
            .iter()
            .zip(&parsed_prices)
            .flat_map(|(v, prices)| {
                prices
                    .iter()
                    .map(move |(currency, amount)| price::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        tenant_id: Set(tenant.0),
                        variant_id: Set(v.id),
                        currency: Set(currency.to_string()),
                        amount: Set(*amount),
                        created_at: Set(now),
                        updated_at: Set(now),
                    })
            })
            .collect();
        for chunk in price_rows.chunks(WRITE_CHUNK * 2) {
            price::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(uow.tx())
                .await?;
        }
        let option_rows: Vec<variant_option::ActiveModel> = ordered
            .iter()
            .zip(&resolved_options)
            .flat_map(|(v, ids)| {
                ids.iter()
                    .map(move |option_id| variant_option::ActiveModel {
                        tenant_id: Set(tenant.0),
                        variant_id: Set(v.id),
                        option_id: Set(*option_id),
                    })
            })
            .collect();
        for chunk in option_rows.chunks(WRITE_CHUNK * 3) {
            variant_option::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(uow.tx())
                .await?;
        }

        // 6. One event per variant, sequenced by the variant's version.
        for ((v, item), prices) in ordered.iter().zip(&items).zip(&parsed_prices) {
            uow.record(DomainEvent::new(
                tenant,
                "variant",
                v.id,
                v.version,
                if v.version == 1 {
                    "vectis.variant.created"
                } else {
                    "vectis.variant.updated"
                },
                json!({
                    "id": v.id,
                    "productId": v.product_id,
                    "sku": v.sku,
                    "name": v.name,
                    "status": v.status,
                    "prices": prices.iter().map(|(c, a)| json!({"currency": c, "amount": a})).collect::<Vec<_>>(),
                    "options": item.options.iter().map(|(g, o)| json!({"group": g, "option": o})).collect::<Vec<_>>(),
                }),
            ));
        }
        uow.commit().await?;
        Ok(UpsertOutcome {
            variants: ordered,
            errors: Vec::new(),
        })
    }
}
