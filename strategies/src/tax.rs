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
//! **Default.** [`DefaultTax`], the rules of the EU VAT directive (2006/112/EC) for goods
//! dispatched from the seller's country (the dispatch country), with VAT rates from a table
//! ([`EU_VAT_RATES`] for the demo):
//!
//! | buyer | goods go to | VAT |
//! |---|---|---|
//! | tax exempt | anywhere | 0 % |
//! | anyone | outside the EU (export, Art. 146) | 0 %, export note |
//! | anyone | the dispatch country (domestic supply) | the dispatch country's |
//! | VAT id of another member state than the dispatch country | another member state | 0 %: exempt intra-Community supply (Art. 138), the buyer accounts for the acquisition; note on the line |
//! | VAT id of the dispatch country | another member state | the dispatch country's: no exempt supply without an id from another state |
//! | no VAT id (consumers, unregistered businesses) | another member state | the destination's: distance sale (Art. 33, One-Stop Shop), as for sellers above the EU-wide €10,000 threshold |
//!
//! The destination is the ship-to country, else the bill-to country, else the dispatch
//! country. A seller outside the EU charges the destination's rate from the table, if any.
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

/// The note on lines of an exempt intra-Community supply of goods (the buyer accounts for the
/// VAT on the acquisition: a "reverse charge").
pub const REVERSE_CHARGE_NOTE: &str = "Exempt intra-Community supply (Art. 138 Directive 2006/112/EC): VAT to be accounted for by the recipient";

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
        let dispatch = ctx.seller_country.as_str();
        let destination = ctx
            .ship_to_country
            .as_deref()
            .or(ctx.bill_to_country.as_deref())
            .unwrap_or(dispatch);
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
        let taxed_in = if !self.in_eu(dispatch) || destination == dispatch {
            destination
        } else if !self.in_eu(destination) {
            return (
                0,
                "Export".into(),
                false,
                Some("Export outside the EU, VAT exempt (Art. 146 Directive 2006/112/EC)".into()),
            );
        } else {
            // Goods move between two member states.
            match vat_country {
                Some(id) if id != dispatch && self.in_eu(id) => {
                    return (
                        0,
                        "VAT reverse charge".into(),
                        true,
                        Some(REVERSE_CHARGE_NOTE.into()),
                    );
                }
                // A VAT id of the dispatch country: taxed where the transport begins.
                Some(id) if id == dispatch => dispatch,
                // Distance sale to a consumer: taxed at the destination.
                _ => destination,
            }
        };
        let Some((standard, reduced)) = self.rates.get(taxed_in).copied() else {
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
        (rate, format!("VAT {taxed_in} {percent}"), false, None)
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

    /// The rate label of a line shipped from DE to `to` for a buyer with `vat_id`.
    fn case(to: &str, vat_id: Option<&str>) -> (i64, String, bool) {
        let mut c = ctx();
        c.ship_to_country = Some(to.into());
        c.buyer_vat_id = vat_id.map(Into::into);
        let t = one(&c, line(10_000, "standard"));
        (
            t.tax.amount,
            t.lines[0].label.clone(),
            t.lines[0].reverse_charge,
        )
    }

    #[test]
    fn eu_vat_rules_for_goods_dispatched_from_germany() {
        // Domestic supplies are taxed in Germany, whatever VAT id the buyer has.
        assert_eq!(case("DE", None), (1900, "VAT DE 19%".into(), false));
        assert_eq!(
            case("DE", Some("DE123456789")),
            (1900, "VAT DE 19%".into(), false)
        );
        assert_eq!(
            case("DE", Some("FR12345678901")),
            (1900, "VAT DE 19%".into(), false),
            "goods that stay in Germany are no intra-Community supply"
        );
        // Another member state's VAT id, goods leaving Germany: exempt, reverse charge.
        assert_eq!(
            case("FR", Some("FR12345678901")),
            (0, "VAT reverse charge".into(), true)
        );
        assert_eq!(
            case("AT", Some("FR12345678901")),
            (0, "VAT reverse charge".into(), true),
            "any member state but the dispatch country"
        );
        let mut c = ctx();
        c.ship_to_country = Some("GR".into());
        c.buyer_vat_id = Some("EL123456789".into());
        let t = one(&c, line(100, "standard"));
        assert!(t.lines[0].reverse_charge, "Greek VAT ids use EL");
        assert_eq!(t.lines[0].note.as_deref(), Some(REVERSE_CHARGE_NOTE));
        // A German VAT id with goods going to Austria: German VAT, not Austrian.
        assert_eq!(
            case("AT", Some("DE123456789")),
            (1900, "VAT DE 19%".into(), false)
        );
        // Consumers (no VAT id) in another member state: the destination's VAT.
        assert_eq!(case("AT", None), (2000, "VAT AT 20%".into(), false));
        assert_eq!(case("FR", None), (2000, "VAT FR 20%".into(), false));
        // A VAT id from outside the EU counts as none.
        assert_eq!(
            case("AT", Some("CHE123456789")),
            (2000, "VAT AT 20%".into(), false)
        );
        // Exports leave the EU zero-rated, whoever buys.
        assert_eq!(case("US", None), (0, "Export".into(), false));
        assert_eq!(case("CH", Some("DE123456789")), (0, "Export".into(), false));
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
