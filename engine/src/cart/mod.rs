//! Carts: an active cart per buyer (a customer in a company location, a customer, or a
//! storefront guest with a cart token), bulk line changes of up to 10,000 lines priced and
//! taxed in batch through the strategies, stored totals, coupons and shipping.
//!
//! A cart is an order in its first state (`orders.state = 'cart'`).

pub mod entity;
pub mod graphql;
pub mod quick_order;
pub mod service;

pub use service::CartService;

/// Header that names a storefront guest's cart.
pub const CART_TOKEN_HEADER: &str = "x-vectis-cart-token";

/// The guest cart token of a request (from [`CART_TOKEN_HEADER`]).
#[derive(Debug, Clone)]
pub struct CartToken(pub String);
