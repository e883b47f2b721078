//! After the sale: cancelling lines before they ship, returns, and refunds through the payment
//! handlers (never more than was paid).

pub mod cancel_lines;
pub mod graphql;
pub mod refunds;
pub mod returns;
