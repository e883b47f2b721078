//! EU VAT identification numbers: the country prefix and the national format of each member
//! state (as published for VIES). Checks the shape only; existence is VIES's business.

/// Patterns per country: `9` a digit, `A` a letter, `X` a letter or digit, anything else
/// literal. A number matches when its body (after the two-letter prefix) matches one pattern.
const FORMATS: &[(&str, &[&str])] = &[
    ("AT", &["U99999999"]),
    ("BE", &["0999999999", "1999999999"]),
    ("BG", &["999999999", "9999999999"]),
    ("CY", &["99999999A"]),
    ("CZ", &["99999999", "999999999", "9999999999"]),
    ("DE", &["999999999"]),
    ("DK", &["99999999"]),
    ("EE", &["999999999"]),
    ("EL", &["999999999"]),
    ("ES", &["X9999999X"]),
    ("FI", &["99999999"]),
    ("FR", &["XX999999999"]),
    ("HR", &["99999999999"]),
    ("HU", &["99999999"]),
    ("IE", &["9X99999A", "9999999A", "9999999AA"]),
    ("IT", &["99999999999"]),
    ("LT", &["999999999", "999999999999"]),
    ("LU", &["99999999"]),
    ("LV", &["99999999999"]),
    ("MT", &["99999999"]),
    ("NL", &["999999999B99"]),
    ("PL", &["9999999999"]),
    ("PT", &["999999999"]),
    (
        "RO",
        &[
            "99",
            "999",
            "9999",
            "99999",
            "999999",
            "9999999",
            "99999999",
            "999999999",
            "9999999999",
        ],
    ),
    ("SE", &["999999999901"]),
    ("SI", &["99999999"]),
    ("SK", &["9999999999"]),
    ("XI", &["999999999", "999999999999", "GD999", "HA999"]),
];

fn matches(body: &str, pattern: &str) -> bool {
    body.len() == pattern.len()
        && body.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'9' => c.is_ascii_digit(),
            b'A' => c.is_ascii_uppercase(),
            b'X' => c.is_ascii_uppercase() || c.is_ascii_digit(),
            literal => c == literal,
        })
}

/// Normalises (upper case, no spaces, dots or dashes) and checks a VAT id; returns the
/// normalised id or why it is not valid.
pub fn normalize(vat_id: &str) -> Result<String, String> {
    let id: String = vat_id
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect::<String>()
        .to_ascii_uppercase();
    let (country, body) = id.split_at_checked(2).ok_or("is too short")?;
    let formats = FORMATS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            format!("must start with an EU country prefix (e.g. DE, FR, EL), not `{country}`")
        })?;
    if formats.iter().any(|f| matches(body, f)) {
        Ok(id)
    } else {
        Err(format!("does not match the {country} VAT number format"))
    }
}

/// The member state of a valid VAT id (`EL` is Greece).
pub fn country(vat_id: &str) -> Option<&str> {
    vat_id.get(..2)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn accepts_national_formats() {
        for ok in [
            "DE123456789",
            "de 123 456 789",
            "ATU12345678",
            "FR12345678901",
            "FRXX345678901",
            "NL123456789B01",
            "BE0123456789",
            "IT12345678901",
            "ESX1234567X",
            "PL1234567890",
            "IE1234567WA",
            "SE123456789901",
            "EL123456789",
            "DK12345678",
        ] {
            assert!(normalize(ok).is_ok(), "{ok}");
        }
        assert_eq!(normalize("de-123.456.789").unwrap(), "DE123456789");
    }

    #[test]
    fn rejects_wrong_shapes_and_countries() {
        for bad in [
            "DE12345678",
            "DE1234567890",
            "AT12345678",
            "NL123456789X01",
            "US123456789",
            "GR123456789",
            "FR1234567890",
            "",
            "D",
            "SE123456789900",
            "BE2123456789",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
