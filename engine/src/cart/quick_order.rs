//! Quick order: "SKU, quantity" lines pasted from a spreadsheet, an ERP export or an email.

use crate::error::{AppError, AppResult, ItemError, code};

use super::service::{LineInput, MAX_CART_LINES};

/// Parsed quick-order text.
#[derive(Debug, Default)]
pub struct QuickOrder {
    /// The lines, in text order.
    pub lines: Vec<LineInput>,
    /// The 0-based text line of each entry of `lines`.
    pub line_numbers: Vec<usize>,
    /// Lines that do not parse, indexed by their 0-based text line.
    pub errors: Vec<ItemError>,
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

/// Parses one `SKU, quantity` per line. Fields are separated by a comma, semicolon, tab or
/// spaces; quotes around fields are dropped; a missing quantity means 1; empty lines, `#`
/// comments and a `sku,quantity` header are skipped; columns after the quantity are ignored.
pub fn parse_quick_order(text: &str) -> AppResult<QuickOrder> {
    let mut out = QuickOrder::default();
    for (number, raw) in text.lines().enumerate() {
        let row = raw.trim();
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = if row.contains([',', ';', '\t']) {
            row.split([',', ';', '\t']).map(unquote).collect()
        } else {
            row.split_whitespace().collect()
        };
        fields.retain(|f| !f.is_empty());
        let sku = fields.first().copied().unwrap_or_default();
        let quantity = fields.get(1).copied();
        if out.lines.is_empty()
            && out.errors.is_empty()
            && sku.eq_ignore_ascii_case("sku")
            && quantity.is_none_or(|q| q.parse::<i64>().is_err())
        {
            continue;
        }
        let quantity = match quantity.map(|q| q.replace(['_', '\''], "").parse::<i64>()) {
            None => 1,
            Some(Ok(q)) => q,
            Some(Err(_)) => {
                out.errors.push(ItemError::new(
                    number,
                    code::VALIDATION,
                    Some("quantity"),
                    format!(
                        "line {}: `{}` is not a whole number",
                        number + 1,
                        quantity.unwrap_or_default()
                    ),
                ));
                continue;
            }
        };
        out.lines.push(LineInput {
            variant_id: None,
            sku: Some(sku.to_owned()),
            quantity,
        });
        out.line_numbers.push(number);
        if out.lines.len() > MAX_CART_LINES {
            return Err(AppError::validation(
                "text",
                format!("at most {MAX_CART_LINES} lines per call"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_csv_tsv_and_spaces_with_headers_comments_and_defaults() {
        let q = parse_quick_order(
            "SKU,Quantity\nA-1, 5\n\n# comment\n\"B-2\";3\nC-3\t7\tignored\nD-4 2\nE-5\nF-6, x\n",
        )
        .unwrap();
        let got: Vec<(String, i64)> = q
            .lines
            .iter()
            .map(|l| (l.sku.clone().unwrap(), l.quantity))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A-1".into(), 5),
                ("B-2".into(), 3),
                ("C-3".into(), 7),
                ("D-4".into(), 2),
                ("E-5".into(), 1)
            ]
        );
        assert_eq!(q.line_numbers, vec![1, 4, 5, 6, 7]);
        assert_eq!(q.errors.len(), 1);
        assert_eq!(q.errors[0].index, 8);
    }
}
