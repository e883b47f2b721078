//! The orders service.

use std::sync::Arc;

use vectis_strategies::{ProcessError, ProcessGraph, Strategies};

use crate::events::Core;

/// Orders and their process.
#[derive(Clone)]
pub struct OrdersService {
    #[allow(dead_code)]
    core: Core,
    process: Arc<ProcessGraph>,
}

impl OrdersService {
    /// The service over the merged order process of `strategies`; a process graph that does
    /// not validate is an error naming the process and the state (the engine does not boot).
    pub fn new(core: Core, strategies: &Strategies) -> Result<Self, ProcessError> {
        Ok(OrdersService {
            core,
            process: Arc::new(ProcessGraph::merge(&strategies.order_process)?),
        })
    }

    /// The merged order process.
    pub fn process(&self) -> &ProcessGraph {
        &self.process
    }
}
