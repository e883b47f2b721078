//! Tax: the tax lines of every cart line, decided in one call per cart operation.
//!
//! **What it decides.** For each line amount (net or gross, per the channel's setting) and its
//! tax category: the net amount, the tax and the gross amount, with one or more tax lines that
//! say which rate applied and why.
//!
//! **When it is called.** Once per cart operation, after pricing and promotions, with all lines.
//!
//! **Performance budget.** Pure computation; a 10,000-line cart in a few milliseconds.
//!
//! **Default.** [`DefaultTax`]: the VAT rate of the destination (ship-to, else bill-to, else the
//! seller's country) from a rate table ([`EU_VAT_RATES`] for the demo), with
//! - tax exemption of the buyer: 0 %;
//! - **EU B2B reverse charge**: a buyer with a VAT id of another EU member state than the
//!   seller's, receiving goods in the EU, pays 0 % and the line carries a reverse-charge note;
//! - exports from the EU to outside the EU: 0 %.
//!
//! **Rounding.** Per line, half away from zero, in the currency's minor units: net prices give
//! `tax = round(net × rate)`; gross prices give `net = round(gross / (1 + rate))` and
//! `tax = gross − net`, so net + tax always equals the line amount.
//!
//! **Instead.** Implement [`TaxStrategy`] to call a tax service (Avalara, Vertex) or to model
//! US sales tax.

use std::collections::HashMap;

use crate::money::{CurrencyCode, Money, MoneyError};

/// VAT rates in basis points (19 % = 1900): `(country, standard, reduced)`.
/// The table shipped for the demo; real deployments configure their own.
#[rustfmt::skip]
pub const EU_VAT_RATES: &[(&str, u32, u32)] = &[
    ("AT", 2000, 1000), ("BE", 2100, 600), ("BG", 2000, 900), ("CY", 1900, 500), ("CZ", 2100, 1200),
    ("DE", 1900, 700), ("DK", 2500, 2500), ("EE", 2400, 900), ("ES", 2100, 1000), ("FI", 2550, 1400),
    ("FR", 2000, 550), ("GR", 2400, 1300), ("HR", 2500, 1300), ("HU", 2700, 500), ("IE", 2300, 1350),
    ("IT", 2200, 1000), ("LT", 2100, 900), ("LU", 1700, 800), ("LV", 2100, 1200), ("MT", 1800, 700),
    ("NL", 2100, 900), ("PL", 2300, 800), ("PT", 2300, 600), ("RO", 2100, 1100), ("SE", 2500, 1200),
    ("SI", 2200, 950), ("SK", 2300, 1900),
];

/// The note on reverse-charged lines.
pub const REVERSE_CHARGE_NOTE: &str =
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)";

/// Where and to whom the cart is sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxContext {
    /// Cart currency.
    pub currency: CurrencyCode,
    /// Whether line amounts include tax (gross) or not (net).
    pub prices_include_tax: bool,
    /// The seller's country (ISO 3166-1 alpha-2).
    pub seller_country: String,
    /// Shipping country.
    pub ship_to_country: Option<String>,
    /// Billing country.
    pub bill_to_country: Option<String>,
    /// The buyer's VAT id (normalised, e.g. `FR12345678901`; Greece uses `EL`).
    pub buyer_vat_id: Option<String>,
    /// The buyer is exempt from tax.
    pub buyer_tax_exempt: bool,
}

/// A line to tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxableLine {
    /// The line amount after discounts (net or gross per the context).
    pub amount: Money,
    /// The variant's tax category: `standard`, `reduced` or `zero`.
    pub category: String,
}

/// One applied rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxLine {
    /// Label, e.g. `VAT DE 19%`.
    pub label: String,
    /// Rate in basis points.
    pub rate_bp: u32,
    /// Tax amount.
    pub amount: Money,
    /// Whether the recipient accounts for the tax.
    pub reverse_charge: bool,
    /// A note to print on the invoice.
    pub note: Option<String>,
}

/// The taxed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTax {
    /// Net amount.
    pub net: Money,
    /// Tax.
    pub tax: Money,
    /// Gross amount.
    pub gross: Money,
    /// Applied rates.
    pub lines: Vec<TaxLine>,
}

/// Why a line cannot be taxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    /// The amount overflows.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Decides tax for all lines of a cart at once.
pub trait TaxStrategy: Send + Sync {
    /// One result per line, in the order of `lines`.
    fn tax(&self, ctx: &TaxContext, lines: &[TaxableLine]) -> Vec<Result<LineTax, TaxError>>;
}

/// Destination VAT from a rate table, tax exemption, EU reverse charge and exports.
#[derive(Debug, Clone)]
pub struct DefaultTax {
    rates: HashMap<String, (u32, u32)>,
}

impl Default for DefaultTax {
    fn default() -> Self {
        DefaultTax::new(EU_VAT_RATES)
    }
}

/// Rounds `numerator / denominator` half away from zero.
fn div_round(numerator: i128, denominator: i128) -> i128 {
    let q = numerator / denominator;
    let r = numerator % denominator;
    if r.abs() * 2 >= denominator.abs() {
        q + numerator.signum() * denominator.signum()
    } else {
        q
    }
}

fn to_i64(v: i128) -> Result<i64, MoneyError> {
    i64::try_from(v).map_err(|_| MoneyError::Overflow)
}

impl DefaultTax {
    /// A strategy over a rate table `(country, standard, reduced)` in basis points.
    pub fn new(rates: &[(&str, u32, u32)]) -> Self {
        DefaultTax {
            rates: rates
                .iter()
                .map(|(c, s, r)| ((*c).to_owned(), (*s, *r)))
                .collect(),
        }
    }

    fn in_eu(&self, country: &str) -> bool {
        self.rates.contains_key(country)
    }

    /// The rate and the reason for a line in this context.
    fn rule(&self, ctx: &TaxContext, category: &str) -> (u32, String, bool, Option<String>) {
        let destination = ctx
            .ship_to_country
            .as_deref()
            .or(ctx.bill_to_country.as_deref())
            .unwrap_or(&ctx.seller_country);
        if ctx.buyer_tax_exempt {
            return (
                0,
                "Tax exempt".into(),
                false,
                Some("Tax-exempt buyer".into()),
            );
        }
        let vat_country = ctx
            .buyer_vat_id
            .as_deref()
            .and_then(|v| v.get(..2))
            .map(|c| if c == "EL" { "GR" } else { c });
        if let Some(buyer_country) = vat_country
            && buyer_country != ctx.seller_country
            && self.in_eu(buyer_country)
            && self.in_eu(&ctx.seller_country)
            && self.in_eu(destination)
        {
            return (
                0,
                "VAT reverse charge".into(),
                true,
                Some(REVERSE_CHARGE_NOTE.into()),
            );
        }
        if self.in_eu(&ctx.seller_country) && !self.in_eu(destination) {
            return (
                0,
                "Export".into(),
                false,
                Some("Export outside the EU, VAT exempt".into()),
            );
        }
        let Some((standard, reduced)) = self.rates.get(destination).copied() else {
            return (0, "No tax".into(), false, None);
        };
        let rate = match category {
            "reduced" => reduced,
            "zero" => 0,
            _ => standard,
        };
        let percent = if rate % 100 == 0 {
            format!("{}%", rate / 100)
        } else {
            format!("{}.{}%", rate / 100, (rate % 100) / 10)
        };
        (rate, format!("VAT {destination} {percent}"), false, None)
    }
}

impl TaxStrategy for DefaultTax {
    fn tax(&self, ctx: &TaxContext, lines: &[TaxableLine]) -> Vec<Result<LineTax, TaxError>> {
        let mut rules: HashMap<&str, (u32, String, bool, Option<String>)> = HashMap::new();
        lines
            .iter()
            .map(|line| {
                let (rate, label, reverse_charge, note) = rules
                    .entry(line.category.as_str())
                    .or_insert_with(|| self.rule(ctx, &line.category))
                    .clone();
                let amount = i128::from(line.amount.amount);
                let bp = i128::from(rate);
                let (net, tax) = if ctx.prices_include_tax {
                    let net = div_round(amount * 10_000, 10_000 + bp);
                    (net, amount - net)
                } else {
                    (amount, div_round(amount * bp, 10_000))
                };
                let currency = line.amount.currency;
                let net = Money::new(to_i64(net)?, currency);
                let tax = Money::new(to_i64(tax)?, currency);
                Ok(LineTax {
                    net,
                    tax,
                    gross: net.checked_add(tax)?,
                    lines: vec![TaxLine {
                        label,
                        rate_bp: rate,
                        amount: tax,
                        reverse_charge,
                        note,
                    }],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TaxContext {
        TaxContext {
            currency: CurrencyCode::EUR,
            prices_include_tax: false,
            seller_country: "DE".into(),
            ship_to_country: Some("DE".into()),
            bill_to_country: None,
            buyer_vat_id: None,
            buyer_tax_exempt: false,
        }
    }

    fn line(amount: i64, category: &str) -> TaxableLine {
        TaxableLine {
            amount: Money::new(amount, CurrencyCode::EUR),
            category: category.into(),
        }
    }

    fn one(ctx: &TaxContext, l: TaxableLine) -> LineTax {
        DefaultTax::default().tax(ctx, &[l]).remove(0).unwrap()
    }

    #[test]
    fn domestic_net_prices_round_half_away_from_zero_per_line() {
        let t = one(&ctx(), line(1050, "standard"));
        assert_eq!(
            (t.net.amount, t.tax.amount, t.gross.amount),
            (1050, 200, 1250)
        ); // 199.5 -> 200
        assert_eq!(t.lines[0].label, "VAT DE 19%");
        let t = one(&ctx(), line(1049, "standard"));
        assert_eq!(t.tax.amount, 199); // 199.31
        let t = one(&ctx(), line(1000, "reduced"));
        assert_eq!(t.tax.amount, 70);
        let t = one(&ctx(), line(-1050, "standard"));
        assert_eq!(t.tax.amount, -200, "refund lines round symmetrically");
    }

    #[test]
    fn gross_prices_split_into_net_and_tax_that_add_up() {
        let mut c = ctx();
        c.prices_include_tax = true;
        for gross in [119, 1190, 1, 99_999, 5_000_000_001] {
            let t = one(&c, line(gross, "standard"));
            assert_eq!(t.net.amount + t.tax.amount, gross);
            assert_eq!(t.gross.amount, gross);
        }
        let t = one(&c, line(1190, "standard"));
        assert_eq!((t.net.amount, t.tax.amount), (1000, 190));
    }

    #[test]
    fn eu_b2b_reverse_charge_and_its_limits() {
        let mut c = ctx();
        c.ship_to_country = Some("FR".into());
        c.buyer_vat_id = Some("FR12345678901".into());
        let t = one(&c, line(10_000, "standard"));
        assert_eq!(t.tax.amount, 0);
        assert!(t.lines[0].reverse_charge);
        assert_eq!(t.lines[0].note.as_deref(), Some(REVERSE_CHARGE_NOTE));
        // Greek VAT ids use EL.
        c.buyer_vat_id = Some("EL123456789".into());
        c.ship_to_country = Some("GR".into());
        assert!(one(&c, line(100, "standard")).lines[0].reverse_charge);
        // A domestic VAT id pays domestic VAT.
        c.buyer_vat_id = Some("DE123456789".into());
        c.ship_to_country = Some("DE".into());
        let t = one(&c, line(10_000, "standard"));
        assert_eq!(t.tax.amount, 1900);
        assert!(!t.lines[0].reverse_charge);
        // A consumer in France pays French VAT.
        c.buyer_vat_id = None;
        c.ship_to_country = Some("FR".into());
        assert_eq!(one(&c, line(10_000, "standard")).tax.amount, 2000);
    }

    #[test]
    fn exports_and_exemptions_are_zero_rated() {
        let mut c = ctx();
        c.ship_to_country = Some("US".into());
        let t = one(&c, line(10_000, "standard"));
        assert_eq!(t.tax.amount, 0);
        assert_eq!(t.lines[0].label, "Export");
        let mut c = ctx();
        c.buyer_tax_exempt = true;
        assert_eq!(one(&c, line(10_000, "standard")).tax.amount, 0);
        assert_eq!(one(&ctx(), line(10_000, "zero")).tax.amount, 0);
    }

    #[test]
    fn huge_amounts_do_not_overflow() {
        let t = one(&ctx(), line(i64::MAX / 2, "standard"));
        assert!(t.gross.amount > t.net.amount);
        let err = DefaultTax::default()
            .tax(&ctx(), &[line(i64::MAX, "standard")])
            .remove(0);
        assert!(err.is_err(), "a gross above i64 is an error, not a wrap");
    }
}
