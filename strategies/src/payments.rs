//! Payment methods: who may pay how, and the calls to whatever takes the money.
//!
//! **What it decides.** Whether a method is offered for a buyer and an order
//! ([`PaymentMethodHandler::eligible`]), and the outcome of authorising, settling, cancelling
//! and refunding a payment.
//!
//! **When it is called.** `eligible` inside checkout, with what the engine knows of the buyer
//! (payment terms, credit). The money operations are called **outside** any database
//! transaction: the engine records the intent (a payment row with an idempotency key), commits,
//! calls the handler, then records the result; an interrupted call is found again by its
//! intent and repeated with the same key. Handlers must therefore be idempotent on
//! [`PaymentRequest::idempotency_key`].
//!
//! **On account.** A handler of kind [`PaymentKind::OnAccount`] (an invoice under the company's
//! payment terms) takes no money: the engine reserves the amount against the company's credit
//! limit atomically (concurrent orders cannot exceed it together) and the handler only states
//! the terms. Staff record the settlement when the invoice is paid.
//!
//! **Shipped.** [`InvoiceHandler`] (`invoice`) and [`TestCardHandler`] (`test-card`, for tests
//! and the demo). Amounts are never more than the order's: the engine checks before calling.

use async_trait::async_trait;
use uuid::Uuid;

use crate::money::Money;

/// How a method takes money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    /// Through a provider the handler calls.
    Provider,
    /// On the company's account: an invoice, reserved against its credit limit.
    OnAccount,
}

/// What eligibility is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentContext {
    /// The order's total.
    pub amount: Money,
    /// The buyer's company, for company users.
    pub company_id: Option<Uuid>,
    /// The company's effective payment terms (`prepaid`, `net15`, `net30`, `net60`).
    pub payment_terms: Option<String>,
    /// The company's credit limit and current exposure, where it has a limit.
    pub credit: Option<(Money, Money)>,
}

/// One money operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRequest {
    /// The idempotency key: the payment's id for authorising and settling it, the refund's
    /// (or release's) id for paying back or releasing part of it.
    pub idempotency_key: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// The order's code.
    pub order_code: Option<String>,
    /// The amount of this operation.
    pub amount: Money,
    /// What the buyer gave at checkout (a card token, …) and what earlier calls returned.
    pub metadata: serde_json::Value,
    /// The provider's reference from the authorisation, for later operations.
    pub transaction_id: Option<String>,
}

/// What a money operation did.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentOutcome {
    /// Authorised (or, on account, the invoice issued).
    Authorized {
        /// The provider's reference.
        transaction_id: Option<String>,
        /// Days until an invoice is due (on account).
        due_in_days: Option<i64>,
    },
    /// Taken.
    Settled {
        /// The provider's reference.
        transaction_id: Option<String>,
    },
    /// Refused by the provider; the message is for the buyer.
    Declined {
        /// Why.
        message: String,
    },
    /// Cancelled or refunded as asked.
    Done,
}

/// A failure to reach or understand the provider (retried with the same key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PaymentError(pub String);

/// A payment method.
#[async_trait]
pub trait PaymentMethodHandler: Send + Sync {
    /// The code buyers choose it by, e.g. `invoice`.
    fn code(&self) -> &str;
    /// What it is, for buyers.
    fn description(&self) -> &str;
    /// How it takes money.
    fn kind(&self) -> PaymentKind;
    /// `Err(reason)` when not offered for this buyer and order.
    fn eligible(&self, ctx: &PaymentContext) -> Result<(), String>;
    /// Authorises the order's amount.
    async fn authorize(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError>;
    /// Takes an authorised amount.
    async fn settle(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError>;
    /// Releases `req.amount` of an authorisation: all of it when the order is cancelled, part
    /// of it when lines are. The key is the release's own id (one per release).
    async fn cancel(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError>;
    /// Pays back `req.amount` of a settled amount. The key is the refund's own id: a repeated
    /// call with it (after an interruption) must not pay back twice. `Declined` leaves the
    /// amount refundable again.
    async fn refund(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError>;
}

/// Days of payment terms, from their code.
pub fn term_days(terms: &str) -> Option<i64> {
    Some(match terms {
        "net15" => 15,
        "net30" => 30,
        "net60" => 60,
        _ => return None,
    })
}

/// Pay on account: an invoice under the company's payment terms, within its credit limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvoiceHandler;

#[async_trait]
impl PaymentMethodHandler for InvoiceHandler {
    fn code(&self) -> &str {
        "invoice"
    }

    fn description(&self) -> &str {
        "Invoice on account, under the company's payment terms"
    }

    fn kind(&self) -> PaymentKind {
        PaymentKind::OnAccount
    }

    fn eligible(&self, ctx: &PaymentContext) -> Result<(), String> {
        if ctx.company_id.is_none() {
            return Err("invoices are for company accounts".into());
        }
        let terms = ctx.payment_terms.as_deref().unwrap_or("prepaid");
        if term_days(terms).is_none() {
            return Err("the company pays in advance (no payment terms)".into());
        }
        if let Some((limit, exposure)) = ctx.credit {
            let after = exposure
                .checked_add(ctx.amount)
                .map_err(|_| "the amount overflows".to_owned())?;
            if after.amount > limit.amount {
                return Err(format!(
                    "the order exceeds the available credit of {}",
                    Money::new(limit.amount - exposure.amount, limit.currency)
                ));
            }
        }
        Ok(())
    }

    async fn authorize(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Authorized {
            transaction_id: req.order_code.clone(),
            due_in_days: req.metadata.get("termDays").and_then(|d| d.as_i64()),
        })
    }

    async fn settle(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Settled {
            transaction_id: req.transaction_id.clone(),
        })
    }

    async fn cancel(&self, _: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Done)
    }

    async fn refund(&self, _: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Done)
    }
}

/// A card number [`TestCardHandler`] declines (any number ending in `0002`).
pub const DECLINED_CARD: &str = "4000000000000002";
/// A card number whose provider is unreachable (any number ending in `0119`; every call
/// fails).
pub const UNREACHABLE_CARD: &str = "4000000000000119";

/// A deterministic card provider for tests and the demo: card `4242 4242 4242 4242` (and any
/// other) authorises, [`DECLINED_CARD`] is declined, [`UNREACHABLE_CARD`] fails to answer.
/// The card number comes from the checkout metadata `{"cardNumber": "…"}`. The outcome depends
/// on the last four digits only, which the engine keeps when it stores the metadata (`…0002`):
/// a repeated call with the same payment, as after an interrupted checkout, gets the same
/// answer, as from a provider that remembers its idempotency keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestCardHandler;

impl TestCardHandler {
    fn last4(req: &PaymentRequest) -> String {
        let digits: String = req
            .metadata
            .get("cardNumber")
            .and_then(|c| c.as_str())
            .unwrap_or("4242424242424242")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        digits[digits.len().saturating_sub(4)..].to_owned()
    }
}

#[async_trait]
impl PaymentMethodHandler for TestCardHandler {
    fn code(&self) -> &str {
        "test-card"
    }

    fn description(&self) -> &str {
        "Test card (4242 4242 4242 4242 authorises, 4000 0000 0000 0002 is declined)"
    }

    fn kind(&self) -> PaymentKind {
        PaymentKind::Provider
    }

    fn eligible(&self, _: &PaymentContext) -> Result<(), String> {
        Ok(())
    }

    async fn authorize(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        let last4 = Self::last4(req);
        match last4.as_str() {
            _ if DECLINED_CARD.ends_with(&last4) && last4.len() == 4 => {
                Ok(PaymentOutcome::Declined {
                    message: "the card was declined".into(),
                })
            }
            _ if UNREACHABLE_CARD.ends_with(&last4) && last4.len() == 4 => {
                Err(PaymentError("the card provider did not answer".into()))
            }
            _ => Ok(PaymentOutcome::Authorized {
                transaction_id: Some(format!("tc_{}", req.idempotency_key.simple())),
                due_in_days: None,
            }),
        }
    }

    async fn settle(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Settled {
            transaction_id: req.transaction_id.clone(),
        })
    }

    async fn cancel(&self, _: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Done)
    }

    async fn refund(&self, _: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::CurrencyCode;

    fn eur(a: i64) -> Money {
        Money::new(a, CurrencyCode::EUR)
    }

    fn ctx(terms: Option<&str>, credit: Option<(i64, i64)>) -> PaymentContext {
        PaymentContext {
            amount: eur(1_000),
            company_id: Some(Uuid::nil()),
            payment_terms: terms.map(Into::into),
            credit: credit.map(|(l, e)| (eur(l), eur(e))),
        }
    }

    #[test]
    fn invoices_need_terms_and_credit() {
        let h = InvoiceHandler;
        assert!(h.eligible(&ctx(Some("net30"), None)).is_ok());
        assert!(h.eligible(&ctx(Some("net30"), Some((1_000, 0)))).is_ok());
        assert!(h.eligible(&ctx(Some("net30"), Some((1_000, 1)))).is_err());
        assert!(h.eligible(&ctx(Some("prepaid"), None)).is_err());
        assert!(h.eligible(&ctx(None, None)).is_err());
        let mut b2c = ctx(Some("net30"), None);
        b2c.company_id = None;
        assert!(h.eligible(&b2c).is_err());
    }

    fn req(card: &str) -> PaymentRequest {
        PaymentRequest {
            idempotency_key: Uuid::nil(),
            order_id: Uuid::nil(),
            order_code: None,
            amount: eur(100),
            metadata: serde_json::json!({ "cardNumber": card }),
            transaction_id: None,
        }
    }

    #[tokio::test]
    async fn the_test_card_is_deterministic() {
        let h = TestCardHandler;
        assert!(matches!(
            h.authorize(&req("4242 4242 4242 4242")).await,
            Ok(PaymentOutcome::Authorized { .. })
        ));
        assert!(matches!(
            h.authorize(&req(DECLINED_CARD)).await,
            Ok(PaymentOutcome::Declined { .. })
        ));
        assert!(h.authorize(&req(UNREACHABLE_CARD)).await.is_err());
        // What the engine stores of a card (its last four digits) gives the same answers.
        assert!(matches!(
            h.authorize(&req("…0002")).await,
            Ok(PaymentOutcome::Declined { .. })
        ));
        assert!(h.authorize(&req("…0119")).await.is_err());
        assert!(matches!(
            h.authorize(&req("…4242")).await,
            Ok(PaymentOutcome::Authorized { .. })
        ));
        // The same key, the same reference.
        assert_eq!(
            h.authorize(&req("4242424242424242")).await,
            h.authorize(&req("4242424242424242")).await
        );
    }
}
