//! A short-lived cache of anonymous catalog responses.
//!
//! Storefront pages ask the same catalog questions for every visitor. A response is cached when
//! the caller is an anonymous storefront (storefront key only: no bearer token, no cart token),
//! the request is a single query whose root fields are all catalog reads (`products`,
//! `product`, `collections`, `variantsBySku`), and it succeeded. Entries live at most
//! `http.catalog_cache_ttl_secs` and are dropped as soon as this process commits a catalog
//! change (products, variants, collections, price lists); other replicas' changes show within
//! the TTL. `0` disables the cache.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{OperationType, Selection};

use crate::kernel::TenantId;

/// Root fields whose answers depend only on the tenant and the arguments.
const CACHEABLE_ROOTS: &[&str] = &[
    "products",
    "product",
    "collections",
    "variantsBySku",
    "__typename",
];

struct Entry {
    generation: u64,
    stored: Instant,
    body: String,
}

/// The cache; cheap to share.
pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<u64, Entry>>,
}

impl ResponseCache {
    /// A cache keeping entries for `ttl` (zero disables it), at most `max_entries` of them.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ResponseCache {
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether caching is on.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The cache key of `request` for `tenant`, if the request may be cached: one query
    /// operation whose root selections are all catalog reads.
    pub fn key(
        &self,
        tenant: TenantId,
        variant: &str,
        request: &mut async_graphql::Request,
    ) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let document = request.parsed_query().ok()?;
        let mut operations = document.operations.iter();
        let (_, operation) = operations.next()?;
        if operations.next().is_some() || operation.node.ty != OperationType::Query {
            return None;
        }
        let cacheable = operation.node.selection_set.node.items.iter().all(|s| {
            matches!(&s.node, Selection::Field(f) if CACHEABLE_ROOTS.contains(&f.node.name.node.as_str()))
        });
        if !cacheable {
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        tenant.0.hash(&mut hasher);
        variant.hash(&mut hasher);
        request.query.hash(&mut hasher);
        request.operation_name.hash(&mut hasher);
        serde_json::to_string(&request.variables)
            .unwrap_or_default()
            .hash(&mut hasher);
        Some(hasher.finish())
    }

    /// The cached body, if fresh and no catalog change happened since it was stored.
    pub fn get(&self, key: u64, generation: u64) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&key)?;
        (entry.generation == generation && entry.stored.elapsed() < self.ttl)
            .then(|| entry.body.clone())
    }

    /// Stores a body computed at catalog `generation`.
    pub fn put(&self, key: u64, generation: u64, body: String) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, e| e.generation == generation && e.stored.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                generation,
                stored: Instant::now(),
                body,
            },
        );
    }
}
