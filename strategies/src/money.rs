//! Money as integer minor units plus an ISO 4217 currency code.
//!
//! Amounts are `i64` minor units (cents for EUR, yen for JPY): a B2B order can exceed
//! 2^31 minor units, and all arithmetic is checked, so an overflow is reported as
//! [`MoneyError::Overflow`], never wrapped.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of money parsing and arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not an active ISO 4217 alphabetic code.
    #[error("`{0}` is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(CurrencyCode, CurrencyCode),
    /// The result does not fit into 64-bit minor units.
    #[error("amount overflows 64-bit minor units")]
    Overflow,
}

/// Active ISO 4217 codes with the number of minor-unit digits.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3),
    ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0),
    ("USD", 2), ("UYU", 2), ("UZS", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2),
    ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2),
];

/// An active ISO 4217 alphabetic currency code, e.g. `EUR`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// Euro.
    pub const EUR: CurrencyCode = CurrencyCode(*b"EUR");
    /// US dollar.
    pub const USD: CurrencyCode = CurrencyCode(*b"USD");

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        // The bytes were checked against the ASCII table in `from_str`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of minor-unit digits (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn minor_digits(&self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(code, _)| code.as_bytes() == self.0)
            .map_or(2, |(_, digits)| *digits)
    }
}

impl FromStr for CurrencyCode {
    type Err = MoneyError;

    /// Parses an upper-case ISO 4217 code; lower case is accepted and normalised.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|(code, _)| {
                let b = code.as_bytes();
                CurrencyCode([b[0], b[1], b[2]])
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<CurrencyCode> for String {
    fn from(value: CurrencyCode) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrencyCode({})", self.as_str())
    }
}

/// An amount of money: integer minor units and a currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for EUR). May be negative for discounts and refunds.
    pub amount: i64,
    /// ISO 4217 currency.
    pub currency: CurrencyCode,
}

impl Money {
    /// Builds an amount from minor units.
    pub const fn new(amount: i64, currency: CurrencyCode) -> Self {
        Money { amount, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: CurrencyCode) -> Self {
        Money {
            amount: 0,
            currency,
        }
    }

    /// Sum of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_add(other.amount)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Difference of two amounts of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The amount times a quantity (a line price from a unit price).
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        self.amount
            .checked_mul(quantity)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The amount as a decimal string in major units, e.g. `1234.50` for 123450 EUR cents.
    pub fn to_decimal_string(&self) -> String {
        let digits = u32::from(self.currency.minor_digits());
        if digits == 0 {
            return self.amount.to_string();
        }
        let scale = 10_u64.pow(digits);
        let abs = self.amount.unsigned_abs();
        let sign = if self.amount < 0 { "-" } else { "" };
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_codes_and_rejects_others() {
        assert_eq!("eur".parse::<CurrencyCode>().unwrap(), CurrencyCode::EUR);
        assert_eq!("JPY".parse::<CurrencyCode>().unwrap().minor_digits(), 0);
        assert!(matches!(
            "EURO".parse::<CurrencyCode>(),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!("XYZ".parse::<CurrencyCode>().is_err());
        assert!("".parse::<CurrencyCode>().is_err());
    }

    #[test]
    fn arithmetic_is_checked_beyond_32_bits() {
        let big = Money::new(i64::from(i32::MAX), CurrencyCode::EUR);
        let sum = big.checked_add(big).unwrap();
        assert_eq!(sum.amount, 4_294_967_294);
        assert_eq!(
            Money::new(i64::MAX, CurrencyCode::EUR).checked_add(Money::new(1, CurrencyCode::EUR)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MAX / 2 + 1, CurrencyCode::EUR).checked_mul(2),
            Err(MoneyError::Overflow)
        );
        assert!(matches!(
            big.checked_add(Money::new(1, CurrencyCode::USD)),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
    }

    #[test]
    fn formats_decimals_per_currency() {
        assert_eq!(
            Money::new(123_450, CurrencyCode::EUR).to_decimal_string(),
            "1234.50"
        );
        assert_eq!(
            Money::new(-5, CurrencyCode::EUR).to_decimal_string(),
            "-0.05"
        );
        let jpy: CurrencyCode = "JPY".parse().unwrap();
        assert_eq!(Money::new(1200, jpy).to_decimal_string(), "1200");
        let kwd: CurrencyCode = "KWD".parse().unwrap();
        assert_eq!(Money::new(1, kwd).to_decimal_string(), "0.001");
    }

    #[test]
    fn serde_round_trip_validates() {
        let m: Money = serde_json::from_str(r#"{"amount":5000000000,"currency":"USD"}"#).unwrap();
        assert_eq!(m.amount, 5_000_000_000);
        assert!(serde_json::from_str::<Money>(r#"{"amount":1,"currency":"ABC"}"#).is_err());
    }
}
