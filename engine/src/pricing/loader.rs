//! The caller's own prices on catalog pages: every `ProductVariant.price` and `pricing` of a
//! request resolves through one loader, which works out the buyer once and prices a whole
//! page in one batch (per currency: the pricing data in three statements, one strategy call).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use tokio::sync::OnceCell;
use uuid::Uuid;
use vectis_strategies::CurrencyCode;

use super::PricingService;
use super::service::{Buyer, VariantPrice};
use crate::auth::Caller;

/// A variant's price in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PriceFor {
    /// The variant.
    pub variant: Uuid,
    /// The currency.
    pub currency: CurrencyCode,
}

/// Prices variants for one caller (a customer or company user).
pub struct BuyerPricesLoader {
    pricing: PricingService,
    caller: Caller,
    buyer: OnceCell<Buyer>,
}

impl BuyerPricesLoader {
    /// A loader for `caller`'s request.
    pub fn new(pricing: PricingService, caller: Caller) -> Self {
        BuyerPricesLoader {
            pricing,
            caller,
            buyer: OnceCell::new(),
        }
    }
}

/// The request's buyer-prices loader (cached: list resolvers prefetch a page's prices).
pub type BuyerPricesDataLoader = DataLoader<BuyerPricesLoader, HashMapCache>;

/// A loader for `caller`'s request.
pub fn request_loader(pricing: PricingService, caller: Caller) -> BuyerPricesDataLoader {
    DataLoader::with_cache(
        BuyerPricesLoader::new(pricing, caller),
        tokio::spawn,
        HashMapCache::default(),
    )
    .max_batch_size(crate::catalog::loader::MAX_BATCH)
}

impl Loader<PriceFor> for BuyerPricesLoader {
    type Value = VariantPrice;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[PriceFor],
    ) -> Result<HashMap<PriceFor, VariantPrice>, Self::Error> {
        let buyer = self
            .buyer
            .get_or_try_init(|| self.pricing.buyer(&self.caller))
            .await?;
        let mut by_currency: HashMap<CurrencyCode, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_currency.entry(k.currency).or_default().push(k.variant);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (currency, variants) in by_currency {
            for (variant, price) in self
                .pricing
                .variant_prices(buyer, self.caller.tenant, variants, currency)
                .await?
            {
                out.insert(PriceFor { variant, currency }, price);
            }
        }
        Ok(out)
    }
}
