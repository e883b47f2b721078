//! Catalog GraphQL: types, queries, mutations. Resolvers stay thin: take the caller, convert
//! the input, call the service, map the result. Every relation goes through the loader.

use async_graphql::connection::Connection;
use std::collections::HashSet;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Lookahead, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vectis_strategies::{CurrencyCode, Money};

use super::entity::{collection, product, variant};
use super::loader::catalog_loader;
use super::loader::{
    self, ChildrenOfCollection, CollectionById, CollectionsOfProduct, GroupWithOptions,
    OptionGroupsOfProduct, OptionWithGroup, OptionsOfVariant, PricesOfVariant, ProductById,
    VariantsOfProduct,
};
use super::service::{
    self, NewCollection, NewOptionGroup, NewProduct, ProductPatch, ProductQuery, VariantUpsert,
};
use crate::auth::Permission;
use crate::error::{AppError, ItemError};
use crate::graphql::connection::{IdCursor, connection, node_selections, page_request};
use crate::graphql::context::{caller, require, services};
use crate::graphql::ids::parse_id;
use crate::graphql::scalars::{Int64, MoneyObject, PriceInput};

/// Loads, in one batch per relation, everything the selection `node` (a `Product` selection)
/// asks of `products`, so that the children read from the request cache instead of issuing
/// batches whose size depends on scheduling. The number of statements is then fixed by the
/// shape of the query, not by the number of rows.
pub async fn prefetch_products(
    ctx: &Context<'_>,
    node: Lookahead<'_>,
    products: &[product::Model],
) -> Result<()> {
    if products.is_empty() {
        return Ok(());
    }
    let loader = catalog_loader(ctx)?;
    let ids = || products.iter().map(|p| p.id);
    let variants = node.field("variants");
    if variants.exists() {
        let found = loader.load_many(ids().map(VariantsOfProduct)).await?;
        let all: Vec<variant::Model> = found.into_values().flatten().collect();
        if variants.field("product").exists() {
            loader
                .feed_many(products.iter().map(|p| (ProductById(p.id), p.clone())))
                .await;
        }
        prefetch_variants(ctx, variants, &all).await?;
    }
    if node.field("optionGroups").exists() {
        loader.load_many(ids().map(OptionGroupsOfProduct)).await?;
    }
    let collections = node.field("collections");
    if collections.exists() {
        let found = loader.load_many(ids().map(CollectionsOfProduct)).await?;
        if collections.field("parent").exists() {
            let parents: HashSet<Uuid> = found
                .values()
                .flatten()
                .filter_map(|c| c.parent_id)
                .collect();
            loader
                .load_many(parents.into_iter().map(CollectionById))
                .await?;
        }
    }
    Ok(())
}

/// For a page of lines that name variants (quote and requisition list lines): when the
/// selection (`nodes { variant }` or `edges { node { variant } }`) asks for the variant, loads
/// the page's variants in one query, feeds them to the request's catalog loader and
/// prefetches what the selection asks of them (prices, the buyer's own prices), so the page
/// costs the same statements whatever its size.
pub async fn preload_line_variants(ctx: &Context<'_>, ids: Vec<Uuid>) -> Result<()> {
    let selections: Vec<_> = node_selections(ctx)
        .into_iter()
        .map(|node| node.field("variant"))
        .filter(|v| v.exists())
        .collect();
    if selections.is_empty() || ids.is_empty() {
        return Ok(());
    }
    let caller = caller(ctx)?;
    let variants = services(ctx)
        .catalog
        .variants_by_ids(caller.tenant, ids, caller.has(Permission::CatalogRead))
        .await?;
    let loader = catalog_loader(ctx)?;
    loader
        .feed_many(
            variants
                .iter()
                .map(|v| (super::loader::VariantById(v.id), v.clone())),
        )
        .await;
    for selection in selections {
        prefetch_variants(ctx, selection, &variants).await?;
    }
    Ok(())
}

/// Like [`prefetch_products`] for a `ProductVariant` selection.
pub async fn prefetch_variants(
    ctx: &Context<'_>,
    node: Lookahead<'_>,
    variants: &[variant::Model],
) -> Result<()> {
    if variants.is_empty() {
        return Ok(());
    }
    let loader = catalog_loader(ctx)?;
    let ids = || variants.iter().map(|v| v.id);
    if node.field("prices").exists() || node.field("price").exists() {
        loader.load_many(ids().map(PricesOfVariant)).await?;
    }
    if node.field("options").exists() {
        loader.load_many(ids().map(OptionsOfVariant)).await?;
    }
    // A buyer's own prices, in every currency the selection asks for, in one batch.
    if matches!(
        caller(ctx)?.principal,
        crate::auth::Principal::Customer { .. }
    ) {
        let mut currencies: HashSet<CurrencyCode> = HashSet::new();
        for name in ["price", "pricing"] {
            for field in node.field(name).selection_fields() {
                for (arg, value) in field.arguments()? {
                    if arg.as_str() == "currency"
                        && let async_graphql::Value::String(c) = value
                        && let Ok(c) = c.parse::<CurrencyCode>()
                    {
                        currencies.insert(c);
                    }
                }
            }
        }
        if !currencies.is_empty() {
            let mut keys = Vec::with_capacity(currencies.len() * variants.len());
            for currency in currencies {
                keys.extend(variants.iter().map(|v| crate::pricing::loader::PriceFor {
                    variant: v.id,
                    currency,
                }));
            }
            ctx.data::<crate::pricing::loader::BuyerPricesDataLoader>()?
                .load_many(keys)
                .await?;
        }
    }
    let product = node.field("product");
    if product.exists() {
        let product_ids: HashSet<Uuid> = variants.iter().map(|v| v.product_id).collect();
        let products = loader
            .load_many(product_ids.into_iter().map(ProductById))
            .await?;
        let products: Vec<product::Model> = products.into_values().collect();
        Box::pin(prefetch_products(ctx, product, &products)).await?;
    }
    Ok(())
}

/// Lifecycle status of products and variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CatalogStatus {
    /// Visible in storefronts.
    Active,
    /// Hidden from storefronts; kept for history.
    Archived,
}

impl CatalogStatus {
    fn from_db(s: &str) -> Self {
        if s == service::ARCHIVED {
            CatalogStatus::Archived
        } else {
            CatalogStatus::Active
        }
    }
}

/// A product: what a customer browses; it is sold as one or more variants.
pub struct Product(pub product::Model);

#[Object]
impl Product {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// URL slug, unique per tenant.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Status.
    async fn status(&self) -> CatalogStatus {
        CatalogStatus::from_db(&self.0.status)
    }
    /// Version, incremented by every change (the sequence of its events).
    async fn version(&self) -> Int64 {
        Int64(self.0.version)
    }
    /// Created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Variants, ordered by SKU (archived ones only for staff).
    async fn variants(&self, ctx: &Context<'_>) -> Result<Vec<Variant>> {
        let rows = catalog_loader(ctx)?
            .load_one(VariantsOfProduct(self.0.id))
            .await?;
        Ok(rows.unwrap_or_default().into_iter().map(Variant).collect())
    }
    /// Option groups with their options.
    async fn option_groups(&self, ctx: &Context<'_>) -> Result<Vec<OptionGroup>> {
        let rows = catalog_loader(ctx)?
            .load_one(OptionGroupsOfProduct(self.0.id))
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(OptionGroup)
            .collect())
    }
    /// Collections the product belongs to.
    async fn collections(&self, ctx: &Context<'_>) -> Result<Vec<Collection>> {
        let rows = catalog_loader(ctx)?
            .load_one(CollectionsOfProduct(self.0.id))
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Collection)
            .collect())
    }
}

/// A purchasable variant of a product, identified by its SKU.
pub struct Variant(pub variant::Model);

impl Variant {
    /// What the caller pays for it in `currency`.
    async fn priced(
        &self,
        ctx: &Context<'_>,
        currency: &str,
    ) -> Result<crate::pricing::service::VariantPrice> {
        let id = self.0.id;
        crate::pricing::graphql::variant_price(ctx, id, currency, async move {
            let rows = catalog_loader(ctx)?.load_one(PricesOfVariant(id)).await?;
            Ok(rows
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.currency == currency)
                .and_then(|p| Some(Money::new(p.amount, p.currency.parse().ok()?))))
        })
        .await
    }
}

#[Object(name = "ProductVariant")]
impl Variant {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Stock keeping unit, unique per tenant.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    /// Tax category.
    async fn tax_category(&self) -> TaxCategory {
        TaxCategory::from_code(&self.0.tax_category)
    }
    /// Weight of one unit in grams.
    async fn weight_grams(&self) -> Int64 {
        Int64(self.0.weight_grams)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Status.
    async fn status(&self) -> CatalogStatus {
        CatalogStatus::from_db(&self.0.status)
    }
    /// Version, incremented by every change.
    async fn version(&self) -> Int64 {
        Int64(self.0.version)
    }
    /// The product (null if it is archived and the caller is a storefront).
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        Ok(catalog_loader(ctx)?
            .load_one(ProductById(self.0.product_id))
            .await?
            .map(Product))
    }
    /// Base prices, one per currency.
    async fn prices(&self, ctx: &Context<'_>) -> Result<Vec<MoneyObject>> {
        let rows = catalog_loader(ctx)?
            .load_one(PricesOfVariant(self.0.id))
            .await?;
        rows.unwrap_or_default()
            .into_iter()
            .map(|p| {
                let currency: CurrencyCode = p
                    .currency
                    .parse()
                    .map_err(|e: vectis_strategies::MoneyError| AppError::Internal(e.into()))?;
                Ok(Money::new(p.amount, currency).into())
            })
            .collect()
    }
    /// The caller's unit price in one currency: for a logged-in customer or company user what
    /// their price lists give at quantity 1 (as in the cart), the base price for anonymous
    /// visitors and staff; null without a price. Batch-priced for the whole page.
    async fn price(&self, ctx: &Context<'_>, currency: String) -> Result<Option<MoneyObject>> {
        Ok(self
            .priced(ctx, &currency)
            .await?
            .unit
            .map(|u| u.unit.into()))
    }
    /// What the caller pays in one currency: the unit price with its source, the base price
    /// and the volume tiers that apply to them.
    async fn pricing(
        &self,
        ctx: &Context<'_>,
        currency: String,
    ) -> Result<crate::pricing::graphql::VariantPricing> {
        Ok(self.priced(ctx, &currency).await?.into())
    }
    /// Whether it is in stock, low or out (quantities for staff, or when the tenant shows
    /// them), and its backorder policy.
    async fn availability(
        &self,
        ctx: &Context<'_>,
    ) -> Result<crate::inventory::graphql::StockAvailability> {
        crate::inventory::graphql::variant_availability(ctx, self.0.id).await
    }
    /// Stock per location (`INVENTORY_READ`).
    async fn stock_levels(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::inventory::graphql::StockLevelObject>> {
        crate::inventory::graphql::variant_levels(ctx, self.0.id).await
    }
    /// Selected options, e.g. size M and finish zinc.
    async fn options(&self, ctx: &Context<'_>) -> Result<Vec<ProductOption>> {
        let rows = catalog_loader(ctx)?
            .load_one(OptionsOfVariant(self.0.id))
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(|OptionWithGroup { option, group }| ProductOption {
                id: ID(option.id.to_string()),
                code: option.code,
                name: option.name,
                group_code: group.code,
                group_name: group.name,
            })
            .collect())
    }
}

/// An option group of a product, e.g. `size`.
pub struct OptionGroup(GroupWithOptions);

#[Object(name = "ProductOptionGroup")]
impl OptionGroup {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.group.id.to_string())
    }
    /// Code, unique within the product.
    async fn code(&self) -> &str {
        &self.0.group.code
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.group.name
    }
    /// Options in display order.
    async fn options(&self) -> Vec<ProductOption> {
        self.0
            .options
            .iter()
            .map(|o| ProductOption {
                id: ID(o.id.to_string()),
                code: o.code.clone(),
                name: o.name.clone(),
                group_code: self.0.group.code.clone(),
                group_name: self.0.group.name.clone(),
            })
            .collect()
    }
}

/// One option of a group, e.g. `M` of `size`.
#[derive(SimpleObject)]
pub struct ProductOption {
    /// Id.
    pub id: ID,
    /// Code, unique within the group.
    pub code: String,
    /// Name.
    pub name: String,
    /// Code of the group.
    pub group_code: String,
    /// Name of the group.
    pub group_name: String,
}

/// A collection: a node in the category tree.
pub struct Collection(pub collection::Model);

#[Object]
impl Collection {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// URL slug, unique per tenant.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Position among its siblings.
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Id of the parent collection, null for a root.
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.map(|p| ID(p.to_string()))
    }
    /// The parent collection.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Collection>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(catalog_loader(ctx)?
            .load_one(CollectionById(parent))
            .await?
            .map(Collection))
    }
    /// Child collections.
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Collection>> {
        let rows = catalog_loader(ctx)?
            .load_one(ChildrenOfCollection(self.0.id))
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Collection)
            .collect())
    }
}

/// Fields of a product page beyond edges and page info.
#[derive(SimpleObject)]
pub struct ProductConnectionFields {
    /// Products matching the filter on all pages.
    pub total_count: u64,
}

/// Catalog queries.
#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Products, newest last, as a Relay connection. `search` matches words in name, slug and
    /// description. Archived products appear only for staff with `CATALOG_READ` who ask for them.
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 0-100.")] first: i32,
        after: Option<String>,
        search: Option<String>,
        #[graphql(default = false)] include_archived: bool,
    ) -> Result<Connection<IdCursor, Product, ProductConnectionFields>> {
        let caller = caller(ctx)?;
        if include_archived {
            caller.require(Permission::CatalogRead)?;
        }
        let request = page_request(first, after.as_deref(), service::MAX_PAGE_SIZE)?;
        let page = services(ctx)
            .catalog
            .list_products(
                caller.tenant,
                ProductQuery {
                    search,
                    include_archived,
                    page: request,
                },
            )
            .await?;
        for node in node_selections(ctx) {
            prefetch_products(ctx, node, &page.rows).await?;
        }
        let total_count = page.total;
        Ok(connection(
            &request,
            page,
            |p| p.id,
            Product,
            ProductConnectionFields { total_count },
        ))
    }

    /// A product by id; null when unknown, archived (for storefronts) or another tenant's.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let id = parse_id("id", &id)?;
        let found = catalog_loader(ctx)?.load_one(ProductById(id)).await?;
        if let Some(p) = &found {
            prefetch_products(ctx, ctx.look_ahead(), std::slice::from_ref(p)).await?;
        }
        Ok(found.map(Product))
    }

    /// Variants by SKU, in the order asked; null for an unknown SKU. Up to 10,000 SKUs.
    async fn variants_by_sku(
        &self,
        ctx: &Context<'_>,
        skus: Vec<String>,
    ) -> Result<Vec<Option<Variant>>> {
        let caller = caller(ctx)?;
        let found = services(ctx)
            .catalog
            .variants_by_sku(caller.tenant, &skus, caller.has(Permission::CatalogRead))
            .await?;
        let present: Vec<variant::Model> = found.iter().flatten().cloned().collect();
        prefetch_variants(ctx, ctx.look_ahead(), &present).await?;
        Ok(found.into_iter().map(|v| v.map(Variant)).collect())
    }

    /// All collections, ordered by position and name; build the tree from `parentId`, or ask
    /// for `rootsOnly` and follow `children`.
    async fn collections(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] roots_only: bool,
    ) -> Result<Vec<Collection>> {
        let caller = caller(ctx)?;
        let all = services(ctx).catalog.collections(caller.tenant).await?;
        Ok(all
            .into_iter()
            .filter(|c| !roots_only || c.parent_id.is_none())
            .map(Collection)
            .collect())
    }
}

/// An option group of a new product.
#[derive(InputObject)]
pub struct OptionGroupInput {
    /// Code unique within the product, e.g. `size`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Options in display order.
    pub options: Vec<OptionInput>,
}

/// An option of a new option group.
#[derive(InputObject)]
pub struct OptionInput {
    /// Code unique within the group, e.g. `m8`.
    pub code: String,
    /// Name.
    pub name: String,
}

/// Input of `createProduct`.
#[derive(InputObject)]
pub struct CreateProductInput {
    /// Name.
    pub name: String,
    /// URL slug; derived from the name when omitted.
    pub slug: Option<String>,
    /// Description.
    #[graphql(default)]
    pub description: String,
    /// Collections to place the product in.
    #[graphql(default)]
    pub collection_ids: Vec<ID>,
    /// Option groups, e.g. size and finish.
    #[graphql(default)]
    pub option_groups: Vec<OptionGroupInput>,
}

/// Input of `updateProduct`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProductInput {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Replaces the product's collections.
    pub collection_ids: Option<Vec<ID>>,
}

/// An option selection by codes.
#[derive(InputObject)]
pub struct VariantOptionInput {
    /// Option group code.
    pub group: String,
    /// Option code within the group.
    pub option: String,
}

/// One variant of `upsertVariants`: the full state of the variant with this SKU (prices and
/// options replace what was stored).
#[derive(InputObject)]
pub struct UpsertVariantInput {
    /// Owning product.
    pub product_id: ID,
    /// SKU, the key of the upsert.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Base prices, one per currency.
    #[graphql(default)]
    pub prices: Vec<PriceInput>,
    /// Option selections.
    #[graphql(default)]
    pub options: Vec<VariantOptionInput>,
    /// Archive the variant (hide it from storefronts).
    #[graphql(default = false)]
    pub archived: bool,
    /// Tax category.
    #[graphql(default_with = "TaxCategory::Standard")]
    pub tax_category: TaxCategory,
    /// Weight of one unit in grams (shipping rates by weight).
    #[graphql(default)]
    pub weight_grams: Int64,
}

/// Which tax rate of the destination applies to a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TaxCategory {
    /// The standard rate.
    Standard,
    /// The reduced rate.
    Reduced,
    /// Zero-rated.
    Zero,
}

impl TaxCategory {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            TaxCategory::Standard => "standard",
            TaxCategory::Reduced => "reduced",
            TaxCategory::Zero => "zero",
        }
    }

    /// From the stored code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "reduced" => TaxCategory::Reduced,
            "zero" => TaxCategory::Zero,
            _ => TaxCategory::Standard,
        }
    }
}

/// Result of `upsertVariants`: either every variant was written (`errors` empty) or none was
/// and `errors` lists each bad item.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UpsertVariantsPayload {
    /// Whether the variants were written.
    pub applied: bool,
    /// Invalid items with their index in the input.
    pub errors: Vec<ItemError>,
    #[graphql(skip)]
    pub variants: Vec<variant::Model>,
}

#[ComplexObject]
impl UpsertVariantsPayload {
    /// The written variants in input order.
    async fn variants(&self) -> Vec<Variant> {
        self.variants.iter().cloned().map(Variant).collect()
    }
}

/// Input of `createCollection`.
#[derive(InputObject)]
pub struct CreateCollectionInput {
    /// Name.
    pub name: String,
    /// Slug; derived from the name when omitted.
    pub slug: Option<String>,
    /// Parent collection.
    pub parent_id: Option<ID>,
    /// Position among siblings.
    #[graphql(default = 0)]
    pub position: i32,
}

fn parse_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>, AppError> {
    ids.iter().map(|id| parse_id(field, id)).collect()
}

/// Catalog mutations (staff with `CATALOG_WRITE`).
#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Creates a product with its option groups. Variants are added with `upsertVariants`.
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> Result<Product> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let input = NewProduct {
            name: input.name,
            slug: input.slug,
            description: input.description,
            collection_ids: parse_ids("collectionIds", &input.collection_ids)?,
            option_groups: input
                .option_groups
                .into_iter()
                .map(|g| NewOptionGroup {
                    code: g.code,
                    name: g.name,
                    options: g.options.into_iter().map(|o| (o.code, o.name)).collect(),
                })
                .collect(),
        };
        let created = services(ctx).catalog.create_product(caller, input).await?;
        loader::clear(catalog_loader(ctx)?);
        Ok(Product(created))
    }

    /// Changes a product; omitted fields stay as they are.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> Result<Product> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let id = parse_id("id", &id)?;
        let patch = ProductPatch {
            name: input.name,
            slug: input.slug,
            description: input.description,
            collection_ids: input
                .collection_ids
                .as_deref()
                .map(|ids| parse_ids("collectionIds", ids))
                .transpose()?,
        };
        let updated = services(ctx)
            .catalog
            .update_product(caller, id, patch)
            .await?;
        loader::clear(catalog_loader(ctx)?);
        Ok(Product(updated))
    }

    /// Archives a product: storefronts no longer see it or its variants.
    async fn archive_product(&self, ctx: &Context<'_>, id: ID) -> Result<Product> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let id = parse_id("id", &id)?;
        let archived = services(ctx).catalog.archive_product(caller, id).await?;
        loader::clear(catalog_loader(ctx)?);
        Ok(Product(archived))
    }

    /// Creates or updates up to 10,000 variants by SKU in one transaction. All-or-nothing:
    /// when any item is invalid nothing is written and `errors` lists each bad item.
    async fn upsert_variants(
        &self,
        ctx: &Context<'_>,
        input: Vec<UpsertVariantInput>,
    ) -> Result<UpsertVariantsPayload> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let mut errors = Vec::new();
        let items: Vec<VariantUpsert> = input
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let product_id = Uuid::try_parse(v.product_id.as_str()).unwrap_or_else(|_| {
                    errors.push(ItemError::new(
                        i,
                        "VALIDATION",
                        Some("productId"),
                        "is not a valid id",
                    ));
                    Uuid::nil()
                });
                VariantUpsert {
                    product_id,
                    sku: v.sku,
                    name: v.name,
                    archived: v.archived,
                    prices: v
                        .prices
                        .into_iter()
                        .map(|p| (p.currency, p.amount.0))
                        .collect(),
                    options: v.options.into_iter().map(|o| (o.group, o.option)).collect(),
                    tax_category: v.tax_category.code().to_owned(),
                    weight_grams: v.weight_grams.0,
                }
            })
            .collect();
        let mut outcome = services(ctx).catalog.upsert_variants(caller, items).await?;
        if !errors.is_empty() {
            // A malformed id was passed to the service as the nil id, which no product has:
            // report it as malformed rather than unknown. Nothing was applied.
            outcome.errors.retain(|e| {
                !(e.field.as_deref() == Some("productId")
                    && errors.iter().any(|m| m.index == e.index))
            });
            outcome.errors.extend(errors);
            outcome.errors.sort_by_key(|e| e.index);
            outcome.variants.clear();
        }
        loader::clear(catalog_loader(ctx)?);
        prefetch_variants(ctx, ctx.look_ahead().field("variants"), &outcome.variants).await?;
        Ok(UpsertVariantsPayload {
            applied: outcome.errors.is_empty(),
            errors: outcome.errors,
            variants: outcome.variants,
        })
    }

    /// Creates a collection, optionally under a parent.
    async fn create_collection(
        &self,
        ctx: &Context<'_>,
        input: CreateCollectionInput,
    ) -> Result<Collection> {
        let caller = require(ctx, Permission::CatalogWrite)?;
        let input = NewCollection {
            name: input.name,
            slug: input.slug,
            parent_id: input
                .parent_id
                .as_ref()
                .map(|p| parse_id("parentId", p))
                .transpose()?,
            position: input.position,
        };
        let created = services(ctx)
            .catalog
            .create_collection(caller, input)
            .await?;
        loader::clear(catalog_loader(ctx)?);
        Ok(Collection(created))
    }
}
