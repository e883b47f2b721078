//! # vectis-strategies
//!
//! The data types and strategy traits through which the Vectis engine makes business decisions.
//! This crate has no database and no GraphQL dependency: extension authors depend on it alone.
//!
//! What lives here today:
//! - [`money`]: [`Money`], [`CurrencyCode`] and checked arithmetic on integer minor units. Every
//!   amount in Vectis is an `i64` of minor units plus an ISO 4217 currency; nothing overflows
//!   silently (overflow is an error).
//!
//! - [`pricing`]: [`PricingStrategy`] and [`DefaultPricing`] (base prices, price lists with
//!   scopes, priorities, validity windows and volume tiers).
//! - [`tax`]: [`TaxStrategy`] and [`DefaultTax`] (destination VAT, exemptions, EU B2B reverse
//!   charge, exports; per-line rounding).
//! - [`shipping`]: [`ShippingStrategy`] and [`DefaultShipping`] (flat, quantity and weight
//!   rates, free above a threshold).
//! - [`promotions`]: [`PromotionStrategy`] and [`DefaultPromotions`] (percentage and fixed
//!   coupons with minimum order values).
//! - [`events`]: [`events::EventSink`], custom destinations for domain events.
//! - [`order_process`]: [`OrderProcess`], the order states as data, merged and validated into
//!   a [`ProcessGraph`] at boot, and [`DefaultOrderProcess`] (the B2B process with an approval
//!   slot asking an [`ApprovalStrategy`]).
//! - [`order_code`]: [`OrderCodeStrategy`] and [`DefaultOrderCode`] (`VX-2026-000123`).
//! - [`payments`]: [`PaymentMethodHandler`], [`InvoiceHandler`] (on account, within the credit
//!   limit) and [`TestCardHandler`].
//! - [`approval`]: the approval rules' types and [`RuleApprovals`] (the company's rules in
//!   tiers, and the buyer's spending limits).
//! - [`allocation`]: [`StockAllocationStrategy`] and [`DefaultAllocation`] (the buyer's
//!   preferred warehouse, then the one with most stock; optional splitting; backorders).
//! - [`registry`]: every strategy by name in [`registry::STRATEGIES`] (the defaults and any
//!   linked extension's), and [`registry::resolve`], which builds what the configuration
//!   chose and checks names, engine-version ranges, options and the merged order process.
//! - [`Strategies`]: the configured strategies in one place; [`Strategies::defaults`] lists
//!   the defaults.
//!
//! Every strategy is batch-shaped: the engine calls it once per cart operation with all lines
//! and the data it loaded for them, never once per line. Each trait sits next to its default
//! implementation, and its documentation says what it decides, when it is called and its
//! performance budget.

pub mod allocation;
pub mod approval;
pub mod events;
pub mod money;
pub mod order_code;
pub mod order_process;
pub mod payments;
pub mod pricing;
pub mod promotions;
pub mod registry;
pub mod shipping;
pub mod tax;

use std::sync::Arc;

pub use allocation::{DefaultAllocation, StockAllocationStrategy};
pub use approval::RuleApprovals;
pub use money::{CurrencyCode, Money, MoneyError};
pub use order_code::{DefaultOrderCode, OrderCodeStrategy};
pub use order_process::{
    ApprovalStrategy, ApproveAll, DefaultOrderProcess, OrderProcess, ProcessError, ProcessGraph,
};
pub use payments::{InvoiceHandler, PaymentMethodHandler, TestCardHandler};
pub use pricing::{DefaultPricing, PricingStrategy};
pub use promotions::{DefaultPromotions, PromotionStrategy};
pub use shipping::{DefaultShipping, ShippingStrategy};
pub use tax::{DefaultTax, TaxStrategy};

/// The strategies the engine uses, in one place. The engine holds one `Strategies` and calls
/// each strategy once per cart operation with all lines.
#[derive(Clone)]
pub struct Strategies {
    /// Unit prices.
    pub pricing: Arc<dyn PricingStrategy>,
    /// Tax lines.
    pub tax: Arc<dyn TaxStrategy>,
    /// Shipping methods and prices.
    pub shipping: Arc<dyn ShippingStrategy>,
    /// Coupons and order adjustments.
    pub promotions: Arc<dyn PromotionStrategy>,
    /// The order process, merged in order (the first sets the initial state).
    pub order_process: Vec<Arc<dyn OrderProcess>>,
    /// Order codes.
    pub order_code: Arc<dyn OrderCodeStrategy>,
    /// The payment methods offered, in the order shown to buyers.
    pub payments: Vec<Arc<dyn PaymentMethodHandler>>,
    /// Which stock locations serve which lines.
    pub stock_allocation: Arc<dyn StockAllocationStrategy>,
    /// Which orders need whose approval (the order process's guard asks it too).
    pub approval: Arc<dyn ApprovalStrategy>,
}

impl Strategies {
    /// The default of every strategy.
    pub fn defaults() -> Self {
        Strategies {
            pricing: Arc::new(DefaultPricing),
            tax: Arc::new(DefaultTax::default()),
            shipping: Arc::new(DefaultShipping::default()),
            promotions: Arc::new(DefaultPromotions),
            order_process: vec![Arc::new(DefaultOrderProcess::default())],
            order_code: Arc::new(DefaultOrderCode::default()),
            payments: vec![Arc::new(InvoiceHandler), Arc::new(TestCardHandler)],
            stock_allocation: Arc::new(DefaultAllocation::default()),
            approval: Arc::new(RuleApprovals::default()),
        }
    }
}

impl std::fmt::Debug for Strategies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strategies").finish_non_exhaustive()
    }
}
