//! Stock allocation: which stock locations (warehouses) serve which lines of an order.
//!
//! **What it decides.** For every stock-tracked line of an order being placed (or a cart being
//! reserved at checkout), the locations it is reserved at and how much at each, or that the
//! line cannot be served. The engine then reserves exactly that, atomically, under row locks
//! taken in a fixed order (variant, location), so allocations never oversell.
//!
//! **When it is called.** Once per placement (and per checkout reservation), inside the
//! placing transaction, with every line and every stock level of the lines' variants, as they
//! are under the locks. Lines of variants without any stock level are not stock-tracked and
//! are not passed.
//!
//! **Performance budget.** Pure computation over the given levels; a 10,000-line order must
//! allocate in a few milliseconds.
//!
//! **Default.** [`DefaultAllocation`]: the buyer location's preferred warehouse when it can
//! serve the whole line, else the location with the most available stock; with `split = true`
//! a line that no single location can serve is split, preferred warehouse first, then by most
//! stock. Backorders (per variant: deny, allow, allow up to N) go to the same first location.
//!
//! **Instead.** Implement [`StockAllocationStrategy`] for distance- or cost-based routing,
//! drop-shipping locations or per-company warehouses.

use uuid::Uuid;

/// Whether a variant may be ordered beyond its available stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backorder {
    /// Never (the default).
    #[default]
    Deny,
    /// Without limit.
    Allow,
    /// Up to this many units beyond what is available, across all locations.
    UpTo(i64),
}

/// One line to allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationLine {
    /// The order line.
    pub line_id: Uuid,
    /// Its variant.
    pub variant_id: Uuid,
    /// Its SKU (for messages).
    pub sku: String,
    /// Units to allocate (positive).
    pub quantity: i64,
    /// The variant's backorder policy.
    pub backorder: Backorder,
}

/// The stock of one variant at one location, as it is under the engine's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationStock {
    /// Variant.
    pub variant_id: Uuid,
    /// Location.
    pub location_id: Uuid,
    /// On hand minus reserved (may be negative where backorders were taken).
    pub available: i64,
}

/// What an allocation strategy sees.
#[derive(Debug, Clone, Copy)]
pub struct AllocationContext<'a> {
    /// The lines, in order-line order.
    pub lines: &'a [AllocationLine],
    /// Every stock level of the lines' variants at active locations, sorted by (variant,
    /// location).
    pub stock: &'a [LocationStock],
    /// The buyer company location's preferred warehouse, if it has one.
    pub preferred_location: Option<Uuid>,
}

/// Units of a line reserved at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The order line.
    pub line_id: Uuid,
    /// Where.
    pub location_id: Uuid,
    /// Units (positive).
    pub quantity: i64,
}

/// A line that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// The order line.
    pub line_id: Uuid,
    /// Its SKU.
    pub sku: String,
    /// Units asked for.
    pub requested: i64,
    /// Units that could be served (available stock plus any backorder allowance).
    pub available: i64,
}

/// Decides where each line's stock comes from.
pub trait StockAllocationStrategy: Send + Sync {
    /// Allocations for every line (their quantities per line summing to the line's), or the
    /// lines that cannot be served. The engine checks the result: allocations of unknown lines
    /// or locations, quantities that do not add up, or more than a location may give under
    /// the variant's backorder policy are refused as shortages.
    fn allocate(&self, ctx: &AllocationContext<'_>) -> Result<Vec<Allocation>, Vec<Shortage>>;
}

/// The default allocation (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultAllocation {
    /// Split a line across locations when no single location can serve it.
    pub split: bool,
}

/// How many units beyond the available stock a policy allows in all, given the variant's
/// total available stock (negative once backorders were taken).
pub fn backorder_room(policy: Backorder, total_available: i64) -> i64 {
    match policy {
        Backorder::Deny => 0,
        Backorder::Allow => i64::MAX / 4,
        // What is left of the allowance after earlier backorders.
        Backorder::UpTo(n) => n.saturating_add(total_available.min(0)).max(0),
    }
}

impl StockAllocationStrategy for DefaultAllocation {
    fn allocate(&self, ctx: &AllocationContext<'_>) -> Result<Vec<Allocation>, Vec<Shortage>> {
        let mut allocations = Vec::with_capacity(ctx.lines.len());
        let mut shortages = Vec::new();
        // Levels of one variant are contiguous (sorted by variant, then location).
        let levels_of = |variant: Uuid| {
            let start = ctx.stock.partition_point(|s| s.variant_id < variant);
            let end = ctx.stock.partition_point(|s| s.variant_id <= variant);
            &ctx.stock[start..end]
        };
        for line in ctx.lines {
            let levels = levels_of(line.variant_id);
            // Preferred warehouse first, then by most available, then by id (deterministic).
            let mut order: Vec<&LocationStock> = levels.iter().collect();
            order.sort_by_key(|s| {
                (
                    Some(s.location_id) != ctx.preferred_location,
                    std::cmp::Reverse(s.available),
                    s.location_id,
                )
            });
            let Some(first) = order.first() else {
                shortages.push(Shortage {
                    line_id: line.line_id,
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: 0,
                });
                continue;
            };
            let total: i64 = levels.iter().map(|s| s.available.max(0)).sum();
            let net: i64 = levels.iter().map(|s| s.available).sum();
            let room = backorder_room(line.backorder, net);
            if let Some(whole) = order.iter().find(|s| s.available >= line.quantity) {
                allocations.push(Allocation {
                    line_id: line.line_id,
                    location_id: whole.location_id,
                    quantity: line.quantity,
                });
            } else if total.saturating_add(room) < line.quantity {
                shortages.push(Shortage {
                    line_id: line.line_id,
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: total.saturating_add(room).min(line.quantity),
                });
            } else if self.split {
                let mut left = line.quantity;
                for s in &order {
                    let take = s.available.max(0).min(left);
                    if take > 0 {
                        allocations.push(Allocation {
                            line_id: line.line_id,
                            location_id: s.location_id,
                            quantity: take,
                        });
                        left -= take;
                    }
                }
                if left > 0 {
                    // The backordered rest waits at the first location.
                    match allocations
                        .iter_mut()
                        .rev()
                        .take_while(|a| a.line_id == line.line_id)
                        .find(|a| a.location_id == first.location_id)
                    {
                        Some(a) => a.quantity += left,
                        None => allocations.push(Allocation {
                            line_id: line.line_id,
                            location_id: first.location_id,
                            quantity: left,
                        }),
                    }
                }
            } else {
                // No single location has it all: backorder at the first one, if allowed.
                let at_first = first.available.max(0);
                if at_first.saturating_add(room) >= line.quantity {
                    allocations.push(Allocation {
                        line_id: line.line_id,
                        location_id: first.location_id,
                        quantity: line.quantity,
                    });
                } else {
                    shortages.push(Shortage {
                        line_id: line.line_id,
                        sku: line.sku.clone(),
                        requested: line.quantity,
                        available: order
                            .iter()
                            .map(|s| s.available.max(0))
                            .max()
                            .unwrap_or(0)
                            .saturating_add(room)
                            .min(line.quantity),
                    });
                }
            }
        }
        if shortages.is_empty() {
            Ok(allocations)
        } else {
            Err(shortages)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn line(n: u128, variant: u128, quantity: i64, backorder: Backorder) -> AllocationLine {
        AllocationLine {
            line_id: id(1000 + n),
            variant_id: id(variant),
            sku: format!("SKU-{variant}"),
            quantity,
            backorder,
        }
    }

    fn stock(variant: u128, location: u128, available: i64) -> LocationStock {
        LocationStock {
            variant_id: id(variant),
            location_id: id(location),
            available,
        }
    }

    /// (line, location, quantity) per allocation, or (sku, available) per shortage.
    type Outcome = Result<Vec<(u128, u128, i64)>, Vec<(String, i64)>>;

    fn run(
        strategy: DefaultAllocation,
        lines: &[AllocationLine],
        stock: &mut Vec<LocationStock>,
        preferred: Option<u128>,
    ) -> Outcome {
        stock.sort_by_key(|s| (s.variant_id, s.location_id));
        strategy
            .allocate(&AllocationContext {
                lines,
                stock,
                preferred_location: preferred.map(id),
            })
            .map(|a| {
                a.into_iter()
                    .map(|a| {
                        (
                            a.line_id.as_u128() - 1000,
                            a.location_id.as_u128(),
                            a.quantity,
                        )
                    })
                    .collect()
            })
            .map_err(|s| s.into_iter().map(|s| (s.sku, s.available)).collect())
    }

    #[test]
    fn the_preferred_warehouse_serves_first_then_the_one_with_most_stock() {
        let lines = [
            line(1, 1, 5, Backorder::Deny),
            line(2, 2, 5, Backorder::Deny),
        ];
        let mut s = vec![
            stock(1, 10, 5),
            stock(1, 20, 50),
            stock(2, 10, 4),
            stock(2, 20, 9),
            stock(2, 30, 30),
        ];
        let got = run(DefaultAllocation::default(), &lines, &mut s, Some(10));
        assert_eq!(got, Ok(vec![(1, 10, 5), (2, 30, 5)]));
        let got = run(DefaultAllocation::default(), &lines, &mut s, None);
        assert_eq!(got, Ok(vec![(1, 20, 5), (2, 30, 5)]));
    }

    #[test]
    fn without_split_a_line_no_location_can_serve_alone_is_short() {
        let lines = [line(1, 1, 10, Backorder::Deny)];
        let mut s = vec![stock(1, 10, 6), stock(1, 20, 6)];
        let got = run(DefaultAllocation::default(), &lines, &mut s, None);
        assert_eq!(got, Err(vec![("SKU-1".into(), 6)]));
        let got = run(DefaultAllocation { split: true }, &lines, &mut s, Some(20));
        assert_eq!(got, Ok(vec![(1, 20, 6), (1, 10, 4)]));
    }

    #[test]
    fn backorders_follow_the_variant_policy() {
        let mut s = vec![stock(1, 10, 3)];
        let deny = [line(1, 1, 5, Backorder::Deny)];
        assert_eq!(
            run(DefaultAllocation::default(), &deny, &mut s, None),
            Err(vec![("SKU-1".into(), 3)])
        );
        let allow = [line(1, 1, 500, Backorder::Allow)];
        assert_eq!(
            run(DefaultAllocation::default(), &allow, &mut s, None),
            Ok(vec![(1, 10, 500)])
        );
        let up_to = [line(1, 1, 5, Backorder::UpTo(2))];
        assert_eq!(
            run(DefaultAllocation::default(), &up_to, &mut s, None),
            Ok(vec![(1, 10, 5)])
        );
        let over = [line(1, 1, 6, Backorder::UpTo(2))];
        assert_eq!(
            run(DefaultAllocation::default(), &over, &mut s, None),
            Err(vec![("SKU-1".into(), 5)])
        );
        // Earlier backorders use up the allowance: 2 already backordered, 1 more allowed.
        let mut s = vec![stock(1, 10, -2)];
        let more = [line(1, 1, 2, Backorder::UpTo(3))];
        assert_eq!(
            run(DefaultAllocation::default(), &more, &mut s, None),
            Err(vec![("SKU-1".into(), 1)])
        );
    }

    #[test]
    fn lines_without_levels_are_short() {
        let lines = [line(1, 7, 1, Backorder::Allow)];
        assert_eq!(
            run(DefaultAllocation::default(), &lines, &mut Vec::new(), None),
            Err(vec![("SKU-7".into(), 0)])
        );
    }
}
