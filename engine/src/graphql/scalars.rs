//! Shared GraphQL scalars and value types.

use async_graphql::{
    InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, Value,
};
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
/// Fields are computed when selected (a 10,000-line cart holds tens of thousands of amounts).
#[derive(Debug, Clone, Copy)]
pub struct MoneyObject(pub Money);

/// An amount of money in integer minor units (e.g. cents) with its ISO 4217 currency.
#[Object(name = "Money")]
impl MoneyObject {
    /// Amount in minor units (cents for EUR). 64-bit: does not overflow at 2^31.
    async fn amount(&self) -> Int64 {
        Int64(self.0.amount)
    }
    /// ISO 4217 currency code.
    async fn currency(&self) -> String {
        self.0.currency.to_string()
    }
    /// The amount in major units as an exact decimal string, e.g. `"1234.50"`.
    async fn decimal(&self) -> String {
        self.0.to_decimal_string()
    }
}

impl From<Money> for MoneyObject {
    fn from(m: Money) -> Self {
        MoneyObject(m)
    }
}

/// A price in one currency.
#[derive(InputObject)]
pub struct PriceInput {
    /// ISO 4217 currency code.
    pub currency: String,
    /// Amount in minor units, 0 to 10^13.
    pub amount: Int64,
}
