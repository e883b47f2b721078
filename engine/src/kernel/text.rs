//! Text rules for names and short free text at the edge of every module.

use crate::error::{AppError, AppResult};

/// A trimmed, non-empty text of at most `max` characters, else `VALIDATION` on `field`.
pub fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(AppError::validation(
            field,
            format!("must be 1-{max} characters"),
        ));
    }
    Ok(v.to_owned())
}

/// Like [`text`], but blank is `None`.
pub fn optional(field: &str, value: Option<&str>, max: usize) -> AppResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => text(field, v, max).map(Some),
        None => Ok(None),
    }
}

/// Checks a person's or company's name field.
pub fn name(field: &str, value: &str, max: usize) -> AppResult<String> {
    text(field, value, max)
}

/// Checks an optional short text (phone numbers and the like).
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> AppResult<Option<String>> {
    optional(field, value, max)
}
