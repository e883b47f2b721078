//! Orders GraphQL: the order process.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::graphql::context::{caller, services};

/// A state of the order process.
#[derive(SimpleObject)]
pub struct OrderStateInfo {
    /// Name, e.g. `Placed`.
    pub name: String,
    /// Whether an order in this state moves no further.
    pub terminal: bool,
    /// What the state means.
    pub description: String,
    /// The states an order can move to from here.
    pub next: Vec<String>,
}

/// The merged order process the engine runs with.
#[derive(SimpleObject)]
pub struct OrderProcessInfo {
    /// Where every order starts.
    pub initial: String,
    /// Every state, by name.
    pub states: Vec<OrderStateInfo>,
}

/// Orders queries.
#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// The order process: states, whether they are terminal, and where each can lead (as
    /// merged from the configured `OrderProcess` strategies and validated at boot).
    async fn order_process(&self, ctx: &Context<'_>) -> Result<OrderProcessInfo> {
        caller(ctx)?;
        let graph = services(ctx).orders.process();
        Ok(OrderProcessInfo {
            initial: graph.initial().to_owned(),
            states: graph
                .states()
                .map(|(name, terminal, description)| OrderStateInfo {
                    name: name.to_owned(),
                    terminal,
                    description: description.to_owned(),
                    next: graph.next(name),
                })
                .collect(),
        })
    }
}
