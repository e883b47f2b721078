//! Shared GraphQL scalars and value types.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use vectis_strategies::Money;

/// A 64-bit signed integer. Serialised as a JSON number; accepted as a number or a string of
/// digits (for clients whose numbers are doubles). Used for money in minor units, which
/// exceeds GraphQL's 32-bit `Int` in large B2B orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Int64(pub i64);

#[Scalar(name = "Int64")]
impl ScalarType for Int64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Int64)
                .ok_or_else(|| InputValueError::custom("expected a 64-bit integer")),
            Value::String(s) => s
                .parse::<i64>()
                .map(Int64)
                .map_err(|_| InputValueError::custom("expected a 64-bit integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// An amount of money in integer minor units (e.g. cents) with its ISO 4217 currency.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Money")]
pub struct MoneyObject {
    /// Amount in minor units (cents for EUR). 64-bit: does not overflow at 2^31.
    pub amount: Int64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The amount in major units as an exact decimal string, e.g. `"1234.50"`.
    pub decimal: String,
}

impl From<Money> for MoneyObject {
    fn from(m: Money) -> Self {
        MoneyObject {
            amount: Int64(m.amount),
            currency: m.currency.to_string(),
            decimal: m.to_decimal_string(),
        }
    }
}
