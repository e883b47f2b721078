//! `vectis import stock`: absolute stock levels from a CSV file (`sku,location,on_hand`),
//! checked in full before anything is applied, then applied in one transaction (all or
//! nothing) with a progress bar; bad rows are reported by line number.

use std::io::Read;

use super::service::{Change, InventoryService, MAX_ON_HAND, MAX_STOCK_ROWS, StockRow, kind};
use crate::error::AppResult;
use crate::kernel::TenantId;

/// A bad row of a stock file: its line number (1 is the header) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Line in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a stock file: a header naming `sku`, `location` and `on_hand` (in any order, other
/// columns ignored), then one row per SKU and location. Returns the rows with their line
/// numbers, or every bad row.
pub fn parse(input: impl Read) -> Result<Vec<(u64, StockRow)>, Vec<BadRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![BadRow {
                line: 1,
                message: format!("unreadable header: {e}"),
            }]);
        }
    };
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(sku), Some(location), Some(on_hand)) =
        (column("sku"), column("location"), column("on_hand"))
    else {
        return Err(vec![BadRow {
            line: 1,
            message: "the header must name the columns sku, location and on_hand".into(),
        }]);
    };
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad.push(BadRow {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").to_owned();
        let (s, l, q) = (field(sku), field(location), field(on_hand));
        if s.is_empty() || l.is_empty() || q.is_empty() {
            bad.push(BadRow {
                line,
                message: "sku, location and on_hand are all required".into(),
            });
            continue;
        }
        match q.parse::<i64>() {
            Ok(n) if (0..=MAX_ON_HAND).contains(&n) => rows.push((
                line,
                StockRow {
                    sku: s,
                    location: l,
                    change: Change::Set(n),
                },
            )),
            _ => bad.push(BadRow {
                line,
                message: format!(
                    "on_hand must be a whole number from 0 to {MAX_ON_HAND}, not `{q}`"
                ),
            }),
        }
    }
    if bad.is_empty() { Ok(rows) } else { Err(bad) }
}

impl InventoryService {
    /// Applies parsed stock rows to `tenant` in one transaction, `MAX_STOCK_ROWS` at a time,
    /// calling `progress` with the rows done; nothing is applied when any row is refused
    /// (unknown SKU or location, repeated pair), and those rows come back by line number.
    pub async fn import(
        &self,
        tenant: TenantId,
        rows: Vec<(u64, StockRow)>,
        progress: impl Fn(u64),
    ) -> AppResult<Result<u64, Vec<BadRow>>> {
        let mut uow = self.core.begin(tenant, None).await?;
        let mut done = 0;
        let mut bad = Vec::new();
        let reason = Some("vectis import stock");
        for chunk in rows.chunks(MAX_STOCK_ROWS) {
            let lines: Vec<u64> = chunk.iter().map(|(l, _)| *l).collect();
            let batch = chunk.iter().map(|(_, r)| r.clone()).collect();
            match self
                .change_stock_in(&mut uow, batch, kind::IMPORT, reason, None)
                .await?
            {
                Ok(_) => {}
                Err(errors) => bad.extend(errors.into_iter().map(|e| {
                    BadRow {
                        line: usize::try_from(e.index)
                            .ok()
                            .and_then(|i| lines.get(i).copied())
                            .unwrap_or(0),
                        message: e.message,
                    }
                })),
            }
            done += chunk.len() as u64;
            progress(done);
        }
        if !bad.is_empty() {
            return Ok(Err(bad));
        }
        uow.commit().await?;
        Ok(Ok(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_with_their_line_numbers_and_bad_rows_are_all_reported() {
        let ok = "sku,location,on_hand\nA-1, main ,5\nC-3,main,1\nB-2,east,0\n";
        let rows = parse(ok.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1.location, "main");
        assert_eq!(rows[2].0, 4);
        assert_eq!(rows[2].1.change, Change::Set(0));

        let bad = "location,sku,on_hand\nmain,A-1,-3\nmain,,4\nmain,C-3,lots\nmain,D-4,7\n";
        let errors = parse(bad.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4], "{errors:?}");
        assert!(errors[0].message.contains("-3"));

        let header = parse("sku,qty\nA,1\n".as_bytes()).unwrap_err();
        assert_eq!(header[0].line, 1);
    }
}
