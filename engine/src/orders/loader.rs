//! Batch loaders for what an order carries (payments, history, shipments, stock allocations,
//! returns, refunds): one query per kind for every order of a page, one loader per request and
//! tenant.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use super::OrdersService;
use super::entity::{payment, refund, transition};
use crate::inventory::InventoryService;
use crate::inventory::entity::{allocation, order_return, return_line, shipment, shipment_line};
use crate::kernel::TenantId;

/// Loads the collections of orders of one tenant.
pub struct OrdersLoader {
    orders: OrdersService,
    inventory: InventoryService,
    tenant: TenantId,
}

impl OrdersLoader {
    /// A loader for `tenant`.
    pub fn new(orders: OrdersService, inventory: InventoryService, tenant: TenantId) -> Self {
        OrdersLoader {
            orders,
            inventory,
            tenant,
        }
    }
}

/// The request's orders loader.
pub type OrdersDataLoader = DataLoader<OrdersLoader>;

/// `rows` (oldest first) grouped by their order under `key`, every key present.
fn by_order<K: Copy + Eq + Hash, T>(
    keys: &[K],
    rows: Vec<T>,
    key: impl Fn(Uuid) -> K,
    order_of: impl Fn(&T) -> Uuid,
) -> HashMap<K, Vec<T>> {
    let mut out: HashMap<K, Vec<T>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for row in rows {
        out.entry(key(order_of(&row))).or_default().push(row);
    }
    out
}

macro_rules! collection {
    ($(#[$doc:meta])* $key:ident, $value:ty, |$l:ident, $ids:ident| $fetch:expr, |$row:ident| $order:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for OrdersLoader {
            type Value = Vec<$value>;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Vec<$value>>, Self::Error> {
                let $l = self;
                let $ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                let rows = $fetch.await?;
                Ok(by_order(keys, rows, $key, |$row: &$value| $order))
            }
        }
    };
}

collection!(
    /// Payments of an order.
    PaymentsOf,
    payment::Model,
    |l, ids| l.orders.payments(l.tenant, ids),
    |p| p.order_id
);
collection!(
    /// Transitions of an order.
    HistoryOf,
    transition::Model,
    |l, ids| l.orders.history(l.tenant, ids),
    |t| t.order_id
);
collection!(
    /// Shipments of an order with their lines.
    ShipmentsOf,
    (shipment::Model, Vec<shipment_line::Model>),
    |l, ids| l.inventory.shipments_of(l.tenant, ids),
    |s| s.0.order_id
);
collection!(
    /// Stock allocations of an order.
    AllocationsOf,
    allocation::Model,
    |l, ids| l.inventory.allocations_of(l.tenant, ids),
    |a| a.order_id
);
collection!(
    /// Returns of an order with their lines.
    ReturnsOf,
    (order_return::Model, Vec<return_line::Model>),
    |l, ids| l.orders.returns(l.tenant, ids),
    |r| r.0.order_id
);
collection!(
    /// Refunds of an order.
    RefundsOf,
    refund::Model,
    |l, ids| l.orders.refunds(l.tenant, ids),
    |r| r.order_id
);

/// Loads one collection of `order` through the request's loader.
pub(crate) async fn load<K>(
    ctx: &async_graphql::Context<'_>,
    key: K,
) -> async_graphql::Result<<OrdersLoader as Loader<K>>::Value>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    OrdersLoader: Loader<K, Error = async_graphql::Error>,
    <OrdersLoader as Loader<K>>::Value: Default,
{
    crate::graphql::context::caller(ctx)?;
    Ok(ctx
        .data::<OrdersDataLoader>()?
        .load_one(key)
        .await?
        .unwrap_or_default())
}
collection!(
    /// The approval flow of an order (at most one).
    FlowsOf,
    crate::approvals::entity::flow::Model,
    |l, ids| l.orders.approvals.flows_of(l.tenant, ids),
    |f| f.order_id
);
collection!(
    /// Approval decisions on an order.
    DecisionsOf,
    crate::approvals::entity::decision::Model,
    |l, ids| l.orders.approvals.decisions_of(l.tenant, ids),
    |d| d.order_id
);
