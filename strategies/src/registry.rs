//! Strategies by name: every strategy an engine binary links registers itself in
//! [`STRATEGIES`]; configuration chooses among them by name.
//!
//! An extension crate adds a [`Registration`] to the slice; linking the crate into the binary
//! is all the engine needs to find it (no engine code changes):
//!
//! ```ignore
//! #[linkme::distributed_slice(vectis_strategies::registry::STRATEGIES)]
//! static VOLUME_DISCOUNT: Registration = Registration {
//!     name: "volume-discount",
//!     engine: "^0.1",
//!     build: Build::Pricing(|options| Ok(Arc::new(VolumeDiscount::new(options.parse()?)))),
//! };
//! ```
//!
//! [`resolve`] turns a [`Selection`] (what `vectis.toml` / `VECTIS_*` chose) into
//! [`Strategies`] at boot. It fails, naming the setting, the name and what is wrong, when a
//! chosen strategy is not linked, declares an engine range this engine is outside of, rejects
//! its options, or when the merged order process does not validate.
//!
//! **Options.** Each strategy reads its own settings from [`Options`] (the table
//! `[strategies.options.<slot>.<name>]` of the configuration, or null when absent).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::allocation::{DefaultAllocation, StockAllocationStrategy};
use crate::events::EventSink;
use crate::order_process::{ApprovalStrategy, DefaultProcessOptions, OrderProcess};
use crate::{
    ApproveAll, DefaultOrderCode, DefaultOrderProcess, DefaultPricing, DefaultPromotions,
    DefaultShipping, DefaultTax, InvoiceHandler, OrderCodeStrategy, PaymentMethodHandler,
    PricingStrategy, ProcessError, ProcessGraph, PromotionStrategy, ShippingStrategy, Strategies,
    TaxStrategy, TestCardHandler,
};

/// The engine version strategies are checked against: the version of this crate, which is
/// released together with the engine.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A strategy's settings from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a>(pub &'a serde_json::Value);

impl Options<'_> {
    /// The settings as `T`; absent settings give `T::default()`. The error names the field.
    pub fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        if self.0.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(self.0.clone()).map_err(|e| e.to_string())
    }

    /// The raw settings.
    pub fn value(&self) -> &serde_json::Value {
        self.0
    }
}

/// A builder of one kind of strategy.
pub type Builder<T> = fn(Options<'_>) -> Result<Arc<T>, String>;

/// A builder of an order process contribution: it gets the configured approval strategy.
pub type ProcessBuilder =
    fn(Options<'_>, Arc<dyn ApprovalStrategy>) -> Result<Arc<dyn OrderProcess>, String>;

/// A sink built by [`sinks`], with its name.
pub type NamedSink = (String, Arc<dyn EventSink>);

/// What a registration builds; the variant is the slot it fills.
#[derive(Clone, Copy)]
pub enum Build {
    /// `strategies.pricing`.
    Pricing(Builder<dyn PricingStrategy>),
    /// `strategies.tax`.
    Tax(Builder<dyn TaxStrategy>),
    /// `strategies.shipping`.
    Shipping(Builder<dyn ShippingStrategy>),
    /// `strategies.promotions`.
    Promotions(Builder<dyn PromotionStrategy>),
    /// `strategies.approval`: asked by the order process before an order is placed.
    Approval(Builder<dyn ApprovalStrategy>),
    /// `strategies.order_process` (a list, merged in order); gets the approval strategy.
    OrderProcess(ProcessBuilder),
    /// `strategies.order_code`.
    OrderCode(Builder<dyn OrderCodeStrategy>),
    /// `strategies.stock_allocation`.
    StockAllocation(Builder<dyn StockAllocationStrategy>),
    /// `payments.methods` (a list, in the order shown to buyers).
    PaymentMethod(Builder<dyn PaymentMethodHandler>),
    /// `consumer.sinks` (a list): destinations for domain events.
    EventSink(Builder<dyn EventSink>),
}

impl Build {
    /// The slot's name, as in the configuration.
    pub fn slot(&self) -> Slot {
        match self {
            Build::Pricing(_) => Slot::Pricing,
            Build::Tax(_) => Slot::Tax,
            Build::Shipping(_) => Slot::Shipping,
            Build::Promotions(_) => Slot::Promotions,
            Build::Approval(_) => Slot::Approval,
            Build::OrderProcess(_) => Slot::OrderProcess,
            Build::OrderCode(_) => Slot::OrderCode,
            Build::StockAllocation(_) => Slot::StockAllocation,
            Build::PaymentMethod(_) => Slot::PaymentMethod,
            Build::EventSink(_) => Slot::EventSink,
        }
    }
}

/// The kinds of strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// Unit prices.
    Pricing,
    /// Tax lines.
    Tax,
    /// Shipping methods.
    Shipping,
    /// Coupons.
    Promotions,
    /// Order approval.
    Approval,
    /// Order process contributions.
    OrderProcess,
    /// Order codes.
    OrderCode,
    /// Stock allocation.
    StockAllocation,
    /// Payment methods.
    PaymentMethod,
    /// Event sinks.
    EventSink,
}

impl Slot {
    /// The configuration key that chooses it (also the key of its options table).
    pub fn key(self) -> &'static str {
        match self {
            Slot::Pricing => "strategies.pricing",
            Slot::Tax => "strategies.tax",
            Slot::Shipping => "strategies.shipping",
            Slot::Promotions => "strategies.promotions",
            Slot::Approval => "strategies.approval",
            Slot::OrderProcess => "strategies.order_process",
            Slot::OrderCode => "strategies.order_code",
            Slot::StockAllocation => "strategies.stock_allocation",
            Slot::PaymentMethod => "payments.methods",
            Slot::EventSink => "consumer.sinks",
        }
    }

    /// What one is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Slot::Pricing => "pricing strategy",
            Slot::Tax => "tax strategy",
            Slot::Shipping => "shipping strategy",
            Slot::Promotions => "promotion strategy",
            Slot::Approval => "approval strategy",
            Slot::OrderProcess => "order process",
            Slot::OrderCode => "order code strategy",
            Slot::StockAllocation => "stock allocation strategy",
            Slot::PaymentMethod => "payment method",
            Slot::EventSink => "event sink",
        }
    }

    /// The name of its table under `[strategies.options]`.
    pub fn options_key(self) -> &'static str {
        match self {
            Slot::Pricing => "pricing",
            Slot::Tax => "tax",
            Slot::Shipping => "shipping",
            Slot::Promotions => "promotions",
            Slot::Approval => "approval",
            Slot::OrderProcess => "order_process",
            Slot::OrderCode => "order_code",
            Slot::StockAllocation => "stock_allocation",
            Slot::PaymentMethod => "payments",
            Slot::EventSink => "sinks",
        }
    }
}

/// A strategy linked into the binary.
pub struct Registration {
    /// The name configuration chooses it by (unique within its slot).
    pub name: &'static str,
    /// The engine versions it works with, as a semver requirement, e.g. `"^0.1"`.
    pub engine: &'static str,
    /// How to build it.
    pub build: Build,
}

/// Every strategy extensions linked into the binary register (the engine's defaults are
/// found with them).
#[linkme::distributed_slice]
pub static STRATEGIES: [Registration];

/// Every registration: the defaults, then the extensions'.
pub fn all() -> impl Iterator<Item = &'static Registration> {
    DEFAULTS.iter().chain(STRATEGIES.iter())
}

/// The registration of `name` in `slot`.
pub fn find(slot: Slot, name: &str) -> Option<&'static Registration> {
    all().find(|r| r.build.slot() == slot && r.name == name)
}

/// The names registered in `slot`, sorted.
pub fn names(slot: Slot) -> Vec<&'static str> {
    let mut names: Vec<_> = all()
        .filter(|r| r.build.slot() == slot)
        .map(|r| r.name)
        .collect();
    names.sort_unstable();
    names
}

/// What the configuration chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// `strategies.pricing`.
    pub pricing: String,
    /// `strategies.tax`.
    pub tax: String,
    /// `strategies.shipping`.
    pub shipping: String,
    /// `strategies.promotions`.
    pub promotions: String,
    /// `strategies.approval`.
    pub approval: String,
    /// `strategies.order_process`, merged in order.
    pub order_process: Vec<String>,
    /// `strategies.order_code`.
    pub order_code: String,
    /// `strategies.stock_allocation`.
    pub stock_allocation: String,
    /// `payments.methods`.
    pub payment_methods: Vec<String>,
    /// Settings by slot ([`Slot::options_key`]) and name.
    pub options: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            pricing: "default".into(),
            tax: "default".into(),
            shipping: "default".into(),
            promotions: "default".into(),
            approval: "rules".into(),
            order_process: vec!["default".into()],
            order_code: "default".into(),
            stock_allocation: "default".into(),
            payment_methods: vec!["invoice".into(), "test-card".into()],
            options: BTreeMap::new(),
        }
    }
}

/// Why the configured strategies cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No strategy of that name is linked.
    #[error("{key}: no {noun} named `{name}` is linked into this binary (available: {available})")]
    Unknown {
        /// The configuration key.
        key: &'static str,
        /// What was looked for.
        noun: &'static str,
        /// The name asked for.
        name: String,
        /// The names that are linked.
        available: String,
    },
    /// The strategy does not support this engine version.
    #[error("{key}: `{name}` supports engine versions `{requirement}`, this engine is {engine}")]
    Incompatible {
        /// The configuration key.
        key: &'static str,
        /// The strategy.
        name: String,
        /// Its declared range.
        requirement: String,
        /// This engine's version.
        engine: String,
    },
    /// The strategy could not be built (bad options, …).
    #[error("{key}: `{name}`: {message}")]
    Build {
        /// The configuration key.
        key: &'static str,
        /// The strategy.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// Two strategies registered the same name in one slot.
    #[error("{key}: `{name}` is registered twice; rename one of the extensions' strategies")]
    Duplicate {
        /// The configuration key.
        key: &'static str,
        /// The name.
        name: String,
    },
    /// A list names the same strategy twice.
    #[error("{key}: `{name}` is listed twice")]
    Repeated {
        /// The configuration key.
        key: &'static str,
        /// The name.
        name: String,
    },
    /// The merged order process does not validate.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// Checks that `name` in `slot` exists and supports `engine`, and returns it.
pub fn lookup(
    slot: Slot,
    name: &str,
    engine: &str,
) -> Result<&'static Registration, RegistryError> {
    let key = slot.key();
    let mut found = all().filter(|r| r.build.slot() == slot && r.name == name);
    let registration = found.next().ok_or_else(|| RegistryError::Unknown {
        key,
        noun: slot.noun(),
        name: name.to_owned(),
        available: names(slot).join(", "),
    })?;
    if found.next().is_some() {
        return Err(RegistryError::Duplicate {
            key,
            name: name.to_owned(),
        });
    }
    let incompatible = |why: Option<String>| RegistryError::Incompatible {
        key,
        name: name.to_owned(),
        requirement: match why {
            Some(why) => format!("{} ({why})", registration.engine),
            None => registration.engine.to_owned(),
        },
        engine: engine.to_owned(),
    };
    let requirement = semver::VersionReq::parse(registration.engine)
        .map_err(|e| incompatible(Some(format!("not a version range: {e}"))))?;
    let version = semver::Version::parse(engine).map_err(|e| RegistryError::Build {
        key,
        name: name.to_owned(),
        message: format!("engine version `{engine}`: {e}"),
    })?;
    if !requirement.matches(&version) {
        return Err(incompatible(None));
    }
    Ok(registration)
}

fn built<T: ?Sized>(
    slot: Slot,
    name: &str,
    result: Result<Arc<T>, String>,
) -> Result<Arc<T>, RegistryError> {
    result.map_err(|message| RegistryError::Build {
        key: slot.key(),
        name: name.to_owned(),
        message,
    })
}

fn no_repeats(slot: Slot, names: &[String]) -> Result<(), RegistryError> {
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(RegistryError::Repeated {
                key: slot.key(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

const NULL: serde_json::Value = serde_json::Value::Null;

impl Selection {
    fn options(&self, slot: Slot, name: &str) -> Options<'_> {
        Options(
            self.options
                .get(slot.options_key())
                .and_then(|o| o.get(name))
                .unwrap_or(&NULL),
        )
    }

    fn entry(&self, slot: Slot, name: &str) -> Result<(Build, Options<'_>), RegistryError> {
        let registration = lookup(slot, name, ENGINE_VERSION)?;
        Ok((registration.build, self.options(slot, name)))
    }
}

macro_rules! single {
    ($selection:expr, $slot:ident, $field:ident) => {{
        let name = &$selection.$field;
        match $selection.entry(Slot::$slot, name)? {
            (Build::$slot(build), options) => built(Slot::$slot, name, build(options))?,
            _ => unreachable!("lookup filters by slot"),
        }
    }};
}

/// Builds the chosen strategies and validates the merged order process.
pub fn resolve(selection: &Selection) -> Result<Strategies, RegistryError> {
    no_repeats(Slot::OrderProcess, &selection.order_process)?;
    no_repeats(Slot::PaymentMethod, &selection.payment_methods)?;
    let approval = single!(selection, Approval, approval);
    let mut order_process = Vec::new();
    for name in &selection.order_process {
        let Build::OrderProcess(build) = selection.entry(Slot::OrderProcess, name)?.0 else {
            unreachable!("lookup filters by slot")
        };
        let options = selection.options(Slot::OrderProcess, name);
        let process = built(Slot::OrderProcess, name, build(options, approval.clone()))?;
        order_process.push(process);
    }
    let mut payments = Vec::new();
    for name in &selection.payment_methods {
        let Build::PaymentMethod(build) = selection.entry(Slot::PaymentMethod, name)?.0 else {
            unreachable!("lookup filters by slot")
        };
        let handler = built(
            Slot::PaymentMethod,
            name,
            build(selection.options(Slot::PaymentMethod, name)),
        )?;
        if handler.code() != name {
            return Err(RegistryError::Build {
                key: Slot::PaymentMethod.key(),
                name: name.clone(),
                message: format!("the handler reports the code `{}`", handler.code()),
            });
        }
        payments.push(handler);
    }
    let strategies = Strategies {
        pricing: single!(selection, Pricing, pricing),
        tax: single!(selection, Tax, tax),
        shipping: single!(selection, Shipping, shipping),
        promotions: single!(selection, Promotions, promotions),
        order_process,
        order_code: single!(selection, OrderCode, order_code),
        stock_allocation: single!(selection, StockAllocation, stock_allocation),
        payments,
        approval,
    };
    ProcessGraph::merge(&strategies.order_process)?;
    Ok(strategies)
}

/// Builds the event sinks named in `names` (`consumer.sinks`).
pub fn sinks(
    names: &[String],
    options: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<NamedSink>, RegistryError> {
    no_repeats(Slot::EventSink, names)?;
    names
        .iter()
        .map(|name| {
            let Build::EventSink(build) = lookup(Slot::EventSink, name, ENGINE_VERSION)?.build
            else {
                unreachable!("lookup filters by slot")
            };
            let options = Options(options.get(name).unwrap_or(&NULL));
            Ok((name.clone(), built(Slot::EventSink, name, build(options))?))
        })
        .collect()
}

/// Options of the default order process (`[strategies.options.order_process.default]`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DefaultProcessSettings {
    approval: bool,
    ship_before_settlement: bool,
}

impl Default for DefaultProcessSettings {
    fn default() -> Self {
        let d = DefaultProcessOptions::default();
        DefaultProcessSettings {
            approval: d.approval,
            ship_before_settlement: d.ship_before_settlement,
        }
    }
}

/// Options of the default order codes (`[strategies.options.order_code.default]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OrderCodeSettings {
    prefix: String,
}

impl Default for OrderCodeSettings {
    fn default() -> Self {
        OrderCodeSettings {
            prefix: DefaultOrderCode::default().prefix,
        }
    }
}

/// Options of the default shipping (`[strategies.options.shipping.default]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ShippingSettings {
    methods: Vec<crate::shipping::FlatRateMethod>,
}

impl Default for ShippingSettings {
    fn default() -> Self {
        ShippingSettings {
            methods: DefaultShipping::default().methods,
        }
    }
}

/// The range the engine's own strategies declare.
const THIS_ENGINE: &str = concat!("=", env!("CARGO_PKG_VERSION"));

/// The engine's own strategies, found like any extension's.
static DEFAULTS: &[Registration] = &[
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::Pricing(|_| Ok(Arc::new(DefaultPricing))),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::Tax(|_| Ok(Arc::new(DefaultTax::default()))),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::Shipping(|options| {
            let settings: ShippingSettings = options.parse()?;
            Ok(Arc::new(DefaultShipping {
                methods: settings.methods,
            }))
        }),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::Promotions(|_| Ok(Arc::new(DefaultPromotions))),
    },
    Registration {
        name: "approve-all",
        engine: THIS_ENGINE,
        build: Build::Approval(|_| Ok(Arc::new(ApproveAll))),
    },
    Registration {
        name: "rules",
        engine: THIS_ENGINE,
        build: Build::Approval(|_| Ok(Arc::new(crate::approval::RuleApprovals::default()))),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::OrderProcess(|options, approval| {
            let s: DefaultProcessSettings = options.parse()?;
            let options = DefaultProcessOptions {
                approval: s.approval,
                ship_before_settlement: s.ship_before_settlement,
            };
            Ok(Arc::new(DefaultOrderProcess::new(options, approval)))
        }),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::OrderCode(|options| {
            let s: OrderCodeSettings = options.parse()?;
            let prefix = s.prefix.trim();
            if prefix.is_empty()
                || prefix.len() > 12
                || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err("prefix: use 1 to 12 letters or digits".into());
            }
            Ok(Arc::new(DefaultOrderCode {
                prefix: prefix.to_owned(),
            }))
        }),
    },
    Registration {
        name: "default",
        engine: THIS_ENGINE,
        build: Build::StockAllocation(|options| {
            let settings: DefaultAllocation = options.parse()?;
            Ok(Arc::new(settings))
        }),
    },
    Registration {
        name: "invoice",
        engine: THIS_ENGINE,
        build: Build::PaymentMethod(|_| Ok(Arc::new(InvoiceHandler))),
    },
    Registration {
        name: "test-card",
        engine: THIS_ENGINE,
        build: Build::PaymentMethod(|_| Ok(Arc::new(TestCardHandler))),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_selection_builds_the_defaults() {
        let s = resolve(&Selection::default()).unwrap();
        assert_eq!(s.order_process.len(), 1);
        assert_eq!(s.order_process[0].name(), "default");
        let codes: Vec<_> = s.payments.iter().map(|p| p.code().to_owned()).collect();
        assert_eq!(codes, ["invoice", "test-card"]);
    }

    #[test]
    fn an_unknown_name_is_named_with_what_is_available() {
        let selection = Selection {
            pricing: "cost-plus".into(),
            ..Selection::default()
        };
        let err = resolve(&selection).err().unwrap().to_string();
        assert_eq!(
            err,
            "strategies.pricing: no pricing strategy named `cost-plus` is linked into this binary (available: default)"
        );
        let selection = Selection {
            payment_methods: vec!["invoice".into(), "paypal".into()],
            ..Selection::default()
        };
        let err = resolve(&selection).err().unwrap().to_string();
        assert!(
            err.starts_with("payments.methods: no payment method named `paypal`"),
            "{err}"
        );
        assert!(err.contains("invoice, test-card"), "{err}");
    }

    #[test]
    fn options_reach_the_strategy_and_bad_options_fail_naming_the_field() {
        let mut selection = Selection::default();
        selection.options.insert(
            "order_code".into(),
            BTreeMap::from([("default".into(), serde_json::json!({ "prefix": "ACME" }))]),
        );
        let s = resolve(&selection).unwrap();
        let code = s.order_code.code(&crate::order_code::OrderCodeContext {
            tenant: "t",
            year: 2026,
            sequence: 7,
        });
        assert_eq!(code, "ACME-2026-000007");

        selection.options.insert(
            "order_process".into(),
            BTreeMap::from([("default".into(), serde_json::json!({ "aproval": false }))]),
        );
        let err = resolve(&selection).err().unwrap().to_string();
        assert!(
            err.starts_with("strategies.order_process: `default`: unknown field `aproval`"),
            "{err}"
        );
    }

    #[test]
    fn listing_a_process_twice_is_refused() {
        let selection = Selection {
            order_process: vec!["default".into(), "default".into()],
            ..Selection::default()
        };
        assert_eq!(
            resolve(&selection).err().unwrap(),
            RegistryError::Repeated {
                key: "strategies.order_process",
                name: "default".into()
            }
        );
    }

    #[test]
    fn engine_ranges_are_checked() {
        // The defaults declare exactly this version.
        assert!(lookup(Slot::Pricing, "default", ENGINE_VERSION).is_ok());
        let err = lookup(Slot::Pricing, "default", "99.0.0").err().unwrap();
        assert!(
            matches!(&err, RegistryError::Incompatible { requirement, engine, .. }
                if requirement == THIS_ENGINE && engine == "99.0.0"),
            "{err}"
        );
    }
}
