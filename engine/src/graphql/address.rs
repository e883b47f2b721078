//! Postal addresses at the GraphQL edge, shared by address books, company locations and carts.

use async_graphql::InputObject;

use crate::kernel::PostalAddress;

/// A postal address as input.
#[derive(InputObject)]
pub struct PostalAddressInput {
    /// First street line.
    pub street_line1: String,
    /// Second street line.
    pub street_line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Region.
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: String,
}

impl From<PostalAddressInput> for PostalAddress {
    fn from(a: PostalAddressInput) -> Self {
        PostalAddress {
            street_line1: a.street_line1,
            street_line2: a.street_line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country_code: a.country_code,
        }
    }
}
