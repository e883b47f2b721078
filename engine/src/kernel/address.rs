//! Postal addresses, shared by customer address books, company locations and carts.

use super::text::{optional, text};
use crate::error::{AppError, AppResult};

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A postal address (stored as camelCase JSON where it is a value, e.g. a cart's ship-to).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    /// First street line.
    pub street_line1: String,
    /// Second street line.
    pub street_line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Region, state or province.
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country_code: String,
}

/// Checks an ISO 3166-1 alpha-2 code (case-insensitive) and returns it upper-cased.
pub fn country(field: &str, code: &str) -> AppResult<String> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err(AppError::validation(
            field,
            "is not an ISO 3166-1 alpha-2 country code",
        ))
    }
}

impl PostalAddress {
    /// Trims and checks every field.
    pub fn validated(self) -> AppResult<PostalAddress> {
        Ok(PostalAddress {
            street_line1: text("streetLine1", &self.street_line1, 200)?,
            street_line2: optional("streetLine2", self.street_line2.as_deref(), 200)?,
            city: text("city", &self.city, 100)?,
            postal_code: text("postalCode", &self.postal_code, 20)?,
            region: optional("region", self.region.as_deref(), 100)?,
            country_code: country("countryCode", &self.country_code)?,
        })
    }
}
