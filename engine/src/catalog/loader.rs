//! Batch loaders for every catalog relation. One loader instance lives per request and is
//! scoped to the caller's tenant; each batch is one tenant-scoped transaction with one query,
//! whatever the number of keys.

use std::collections::HashMap;
use std::hash::Hash;

use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::entity::{
    collection, option, option_group, price, product, product_collection, variant, variant_option,
};
use super::service::ACTIVE;
use crate::db::{Db, MAX_IDS_PER_STATEMENT, Scope, id_in};
use crate::error::AppError;
use crate::kernel::TenantId;

/// Loads catalog relations for one tenant.
pub struct CatalogLoader {
    db: Db,
    tenant: TenantId,
    include_archived: bool,
}

impl CatalogLoader {
    /// A loader for `tenant`; `include_archived` shows archived products and variants (staff).
    pub fn new(db: Db, tenant: TenantId, include_archived: bool) -> Self {
        CatalogLoader {
            db,
            tenant,
            include_archived,
        }
    }

    async fn with_tx<T, F>(&self, f: F) -> Result<T, async_graphql::Error>
    where
        F: for<'c> FnOnce(
            &'c DatabaseTransaction,
        ) -> futures::future::BoxFuture<'c, Result<T, sea_orm::DbErr>>,
    {
        let run = async {
            let tx = self.db.read(Scope::Tenant(self.tenant)).await?;
            let out = f(&tx).await?;
            tx.commit().await?;
            Ok::<T, sea_orm::DbErr>(out)
        };
        run.await.map_err(|e| AppError::from(e).into())
    }
}

/// Groups rows by a key, keeping their order.
/// (With an entry, maybe empty, for every asked key, so that empty relations are cached too.)
fn group<K: Hash + Eq + Clone, V>(
    keys: &[K],
    rows: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map
}

/// Product by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProductById(pub Uuid);
/// Variant by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VariantById(pub Uuid);
/// Variants of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VariantsOfProduct(pub Uuid);
/// Base prices of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PricesOfVariant(pub Uuid);
/// Options selected by a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptionsOfVariant(pub Uuid);
/// Option groups (with options) of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptionGroupsOfProduct(pub Uuid);
/// Collections a product belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollectionsOfProduct(pub Uuid);
/// Collection by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollectionById(pub Uuid);
/// Child collections of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildrenOfCollection(pub Uuid);

/// An option group with its options.
#[derive(Debug, Clone)]
pub struct GroupWithOptions {
    /// The group.
    pub group: option_group::Model,
    /// Its options in display order.
    pub options: Vec<option::Model>,
}

/// An option with the code of its group.
#[derive(Debug, Clone)]
pub struct OptionWithGroup {
    /// The option.
    pub option: option::Model,
    /// Its group.
    pub group: option_group::Model,
}

type LoadResult<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

macro_rules! keys_to_ids {
    ($keys:expr) => {
        $keys.iter().map(|k| k.0).collect::<Vec<Uuid>>()
    };
}

impl async_graphql::dataloader::Loader<ProductById> for CatalogLoader {
    type Value = product::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ProductById]) -> LoadResult<ProductById, product::Model> {
        let ids = keys_to_ids!(keys);
        let (tenant, include_archived, backend) =
            (self.tenant, self.include_archived, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let mut q = product::Entity::find()
                        .filter(product::Column::TenantId.eq(tenant.0))
                        .filter(id_in(backend, (product::Entity, product::Column::Id), ids));
                    if !include_archived {
                        q = q.filter(product::Column::Status.eq(ACTIVE));
                    }
                    q.all(tx).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(|p| (ProductById(p.id), p)).collect())
    }
}

impl async_graphql::dataloader::Loader<VariantById> for CatalogLoader {
    type Value = variant::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[VariantById]) -> LoadResult<VariantById, variant::Model> {
        let ids = keys_to_ids!(keys);
        let (tenant, include_archived, backend) =
            (self.tenant, self.include_archived, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let mut q = variant::Entity::find()
                        .filter(variant::Column::TenantId.eq(tenant.0))
                        .filter(id_in(backend, (variant::Entity, variant::Column::Id), ids));
                    if !include_archived {
                        q = q.filter(variant::Column::Status.eq(ACTIVE));
                    }
                    q.all(tx).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(|v| (VariantById(v.id), v)).collect())
    }
}

impl async_graphql::dataloader::Loader<VariantsOfProduct> for CatalogLoader {
    type Value = Vec<variant::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[VariantsOfProduct],
    ) -> LoadResult<VariantsOfProduct, Vec<variant::Model>> {
        let ids = keys_to_ids!(keys);
        let (tenant, include_archived, backend) =
            (self.tenant, self.include_archived, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let mut q = variant::Entity::find()
                        .filter(variant::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (variant::Entity, variant::Column::ProductId),
                            ids,
                        ))
                        .order_by_asc(variant::Column::Sku);
                    if !include_archived {
                        q = q.filter(variant::Column::Status.eq(ACTIVE));
                    }
                    q.all(tx).await
                })
            })
            .await?;
        Ok(group(keys, rows, |v| VariantsOfProduct(v.product_id)))
    }
}

impl async_graphql::dataloader::Loader<PricesOfVariant> for CatalogLoader {
    type Value = Vec<price::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[PricesOfVariant],
    ) -> LoadResult<PricesOfVariant, Vec<price::Model>> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    price::Entity::find()
                        .filter(price::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (price::Entity, price::Column::VariantId),
                            ids,
                        ))
                        .order_by_asc(price::Column::Currency)
                        .all(tx)
                        .await
                })
            })
            .await?;
        Ok(group(keys, rows, |p| PricesOfVariant(p.variant_id)))
    }
}

impl async_graphql::dataloader::Loader<OptionGroupsOfProduct> for CatalogLoader {
    type Value = Vec<GroupWithOptions>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[OptionGroupsOfProduct],
    ) -> LoadResult<OptionGroupsOfProduct, Vec<GroupWithOptions>> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let (groups, options) = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let groups = option_group::Entity::find()
                        .filter(option_group::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (option_group::Entity, option_group::Column::ProductId),
                            ids,
                        ))
                        .order_by_asc(option_group::Column::Position)
                        .all(tx)
                        .await?;
                    let options = option::Entity::find()
                        .filter(option::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (option::Entity, option::Column::GroupId),
                            groups.iter().map(|g| g.id).collect(),
                        ))
                        .order_by_asc(option::Column::Position)
                        .all(tx)
                        .await?;
                    Ok((groups, options))
                })
            })
            .await?;
        let mut options = group(&[], options, |o| o.group_id);
        let with_options = groups.into_iter().map(|g| GroupWithOptions {
            options: options.remove(&g.id).unwrap_or_default(),
            group: g,
        });
        Ok(group(keys, with_options, |g| {
            OptionGroupsOfProduct(g.group.product_id)
        }))
    }
}

impl async_graphql::dataloader::Loader<OptionsOfVariant> for CatalogLoader {
    type Value = Vec<OptionWithGroup>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[OptionsOfVariant],
    ) -> LoadResult<OptionsOfVariant, Vec<OptionWithGroup>> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let (links, options, groups) = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let links = variant_option::Entity::find()
                        .filter(variant_option::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (variant_option::Entity, variant_option::Column::VariantId),
                            ids,
                        ))
                        .all(tx)
                        .await?;
                    let mut option_ids: Vec<Uuid> = links.iter().map(|l| l.option_id).collect();
                    option_ids.sort_unstable();
                    option_ids.dedup();
                    let options = option::Entity::find()
                        .filter(option::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (option::Entity, option::Column::Id),
                            option_ids,
                        ))
                        .all(tx)
                        .await?;
                    let mut group_ids: Vec<Uuid> = options.iter().map(|o| o.group_id).collect();
                    group_ids.sort_unstable();
                    group_ids.dedup();
                    let groups = option_group::Entity::find()
                        .filter(option_group::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (option_group::Entity, option_group::Column::Id),
                            group_ids,
                        ))
                        .all(tx)
                        .await?;
                    Ok((links, options, groups))
                })
            })
            .await?;
        let options: HashMap<Uuid, option::Model> =
            options.into_iter().map(|o| (o.id, o)).collect();
        let groups: HashMap<Uuid, option_group::Model> =
            groups.into_iter().map(|g| (g.id, g)).collect();
        let mut out: HashMap<OptionsOfVariant, Vec<OptionWithGroup>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            let Some(option) = options.get(&link.option_id) else {
                continue;
            };
            let Some(group) = groups.get(&option.group_id) else {
                continue;
            };
            out.entry(OptionsOfVariant(link.variant_id))
                .or_default()
                .push(OptionWithGroup {
                    option: option.clone(),
                    group: group.clone(),
                });
        }
        for list in out.values_mut() {
            list.sort_by_key(|o| o.group.position);
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<CollectionsOfProduct> for CatalogLoader {
    type Value = Vec<collection::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[CollectionsOfProduct],
    ) -> LoadResult<CollectionsOfProduct, Vec<collection::Model>> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let (links, collections) = self
            .with_tx(|tx| {
                Box::pin(async move {
                    let links = product_collection::Entity::find()
                        .filter(product_collection::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (
                                product_collection::Entity,
                                product_collection::Column::ProductId,
                            ),
                            ids,
                        ))
                        .all(tx)
                        .await?;
                    let mut collection_ids: Vec<Uuid> =
                        links.iter().map(|l| l.collection_id).collect();
                    collection_ids.sort_unstable();
                    collection_ids.dedup();
                    let collections = collection::Entity::find()
                        .filter(collection::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (collection::Entity, collection::Column::Id),
                            collection_ids,
                        ))
                        .all(tx)
                        .await?;
                    Ok((links, collections))
                })
            })
            .await?;
        let collections: HashMap<Uuid, collection::Model> =
            collections.into_iter().map(|c| (c.id, c)).collect();
        let mut out: HashMap<CollectionsOfProduct, Vec<collection::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            if let Some(c) = collections.get(&link.collection_id) {
                out.entry(CollectionsOfProduct(link.product_id))
                    .or_default()
                    .push(c.clone());
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| (a.position, &a.name).cmp(&(b.position, &b.name)));
        }
        Ok(out)
    }
}

impl async_graphql::dataloader::Loader<CollectionById> for CatalogLoader {
    type Value = collection::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[CollectionById]) -> LoadResult<CollectionById, collection::Model> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    collection::Entity::find()
                        .filter(collection::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (collection::Entity, collection::Column::Id),
                            ids,
                        ))
                        .all(tx)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| (CollectionById(c.id), c))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<ChildrenOfCollection> for CatalogLoader {
    type Value = Vec<collection::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ChildrenOfCollection],
    ) -> LoadResult<ChildrenOfCollection, Vec<collection::Model>> {
        let ids = keys_to_ids!(keys);
        let (tenant, backend) = (self.tenant, self.db.backend());
        let rows = self
            .with_tx(|tx| {
                Box::pin(async move {
                    collection::Entity::find()
                        .filter(collection::Column::TenantId.eq(tenant.0))
                        .filter(id_in(
                            backend,
                            (collection::Entity, collection::Column::ParentId),
                            ids,
                        ))
                        .order_by_asc(collection::Column::Position)
                        .order_by_asc(collection::Column::Name)
                        .all(tx)
                        .await
                })
            })
            .await?;
        Ok(group(
            keys,
            rows.into_iter().filter(|c| c.parent_id.is_some()),
            |c| ChildrenOfCollection(c.parent_id.unwrap_or_default()),
        ))
    }
}

/// The largest batch a loader takes in one statement.
pub const MAX_BATCH: usize = MAX_IDS_PER_STATEMENT;

/// The request's catalog loader: batching plus a per-request cache, so that resolvers can
/// prefetch whole levels with `load_many` (see `catalog::graphql`) and children read from it.
pub type CatalogDataLoader =
    async_graphql::dataloader::DataLoader<CatalogLoader, async_graphql::dataloader::HashMapCache>;

/// The request's catalog loader (`UNAUTHENTICATED` without a caller).
pub fn catalog_loader<'a>(
    ctx: &'a async_graphql::Context<'_>,
) -> async_graphql::Result<&'a CatalogDataLoader> {
    crate::graphql::context::caller(ctx)?;
    ctx.data::<CatalogDataLoader>()
}

/// A loader for one request.
pub fn request_loader(loader: CatalogLoader) -> CatalogDataLoader {
    async_graphql::dataloader::DataLoader::with_cache(
        loader,
        tokio::spawn,
        async_graphql::dataloader::HashMapCache::default(),
    )
    .delay(std::time::Duration::from_millis(1))
    .max_batch_size(MAX_BATCH)
}

/// Forgets everything cached: called after each catalog mutation so later selections in the
/// same request read fresh rows.
pub fn clear(loader: &CatalogDataLoader) {
    loader.clear::<ProductById>();
    loader.clear::<VariantById>();
    loader.clear::<VariantsOfProduct>();
    loader.clear::<PricesOfVariant>();
    loader.clear::<OptionsOfVariant>();
    loader.clear::<OptionGroupsOfProduct>();
    loader.clear::<CollectionsOfProduct>();
    loader.clear::<CollectionById>();
    loader.clear::<ChildrenOfCollection>();
}
