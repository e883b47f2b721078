//! Order codes: the human-readable number of a placed order.
//!
//! **What it decides.** The code printed on confirmations and invoices, unique per tenant.
//!
//! **When it is called.** Once per placement, inside the placing transaction, with the next
//! value of the tenant's order sequence (the engine draws it atomically, so codes never repeat).
//!
//! **Default.** [`DefaultOrderCode`]: `VX-{year}-{sequence, six digits}`, e.g. `VX-2026-000123`,
//! with the prefix configurable.
//!
//! **Instead.** Implement [`OrderCodeStrategy`] for ERP-issued numbers or per-company prefixes.

/// What an order code is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCodeContext<'a> {
    /// The tenant's slug.
    pub tenant: &'a str,
    /// The year of placement (UTC).
    pub year: i32,
    /// The tenant's next order number (1, 2, …; never repeated).
    pub sequence: i64,
}

/// Makes order codes.
pub trait OrderCodeStrategy: Send + Sync {
    /// The code; it must be unique for distinct sequences of one tenant.
    fn code(&self, ctx: &OrderCodeContext<'_>) -> String;
}

/// `PREFIX-YEAR-000123`.
#[derive(Debug, Clone)]
pub struct DefaultOrderCode {
    /// The prefix, `VX` by default.
    pub prefix: String,
}

impl Default for DefaultOrderCode {
    fn default() -> Self {
        DefaultOrderCode {
            prefix: "VX".into(),
        }
    }
}

impl OrderCodeStrategy for DefaultOrderCode {
    fn code(&self, ctx: &OrderCodeContext<'_>) -> String {
        format!("{}-{}-{:06}", self.prefix, ctx.year, ctx.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_the_year_and_a_padded_sequence() {
        let c = DefaultOrderCode::default();
        let ctx = |sequence| OrderCodeContext {
            tenant: "demo",
            year: 2026,
            sequence,
        };
        assert_eq!(c.code(&ctx(123)), "VX-2026-000123");
        assert_eq!(c.code(&ctx(1_234_567)), "VX-2026-1234567");
    }
}
