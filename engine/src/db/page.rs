//! Keyset pagination over ids (UUID v7, so id order is creation order), written once: a
//! [`PageRequest`] fetches one row more than it returns, which tells whether another page
//! follows without counting.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Up to `first` rows after the row with id `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Page size.
    pub first: u64,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, in id order.
    pub rows: Vec<T>,
    /// Whether more rows follow.
    pub has_next: bool,
    /// Rows on all pages, where counted.
    pub total: u64,
}

impl PageRequest {
    /// A request for `first` rows (0 to `max`, else `VALIDATION` on `first`) after `after`.
    pub fn new(first: i64, after: Option<Uuid>, max: u64) -> AppResult<PageRequest> {
        let first = u64::try_from(first)
            .ok()
            .filter(|f| *f <= max)
            .ok_or_else(|| AppError::validation("first", format!("must be between 0 and {max}")))?;
        Ok(PageRequest { first, after })
    }

    /// How many rows to fetch: one more than the page holds.
    pub fn limit(&self) -> u64 {
        self.first + 1
    }

    /// `select` restricted to this page in ascending `id` order (with the extra row).
    pub fn apply<E: EntityTrait>(&self, select: Select<E>, id: E::Column) -> Select<E> {
        let select = match self.after {
            Some(after) => select.filter(id.gt(after)),
            None => select,
        };
        select.order_by_asc(id).limit(self.limit())
    }

    /// The page from rows fetched with [`Self::limit`].
    pub fn page<T>(&self, mut rows: Vec<T>, total: u64) -> Page<T> {
        let first = usize::try_from(self.first).unwrap_or(usize::MAX);
        let has_next = rows.len() > first;
        rows.truncate(first);
        Page {
            rows,
            has_next,
            total,
        }
    }
}

impl<T> Page<T> {
    /// The same page with every row mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            rows: self.rows.into_iter().map(f).collect(),
            has_next: self.has_next,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_tells_whether_more_follow() {
        let req = PageRequest::new(2, None, 100).unwrap();
        assert_eq!(req.limit(), 3);
        let page = req.page(vec![1, 2, 3], 9);
        assert_eq!(
            (page.rows, page.has_next, page.total),
            (vec![1, 2], true, 9)
        );
        let page = req.page(vec![1, 2], 2);
        assert!(!page.has_next);
        assert!(PageRequest::new(101, None, 100).is_err());
        assert!(PageRequest::new(-1, None, 100).is_err());
        assert_eq!(
            PageRequest::new(0, None, 100)
                .unwrap()
                .page(vec![1], 1)
                .rows,
            Vec::<i32>::new()
        );
    }
}
