//! Ids at the GraphQL edge: an `ID` holds a UUID; anything else is `VALIDATION` on its field.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::AppError;

/// Parses a GraphQL `ID` holding a UUID.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::try_parse(id.as_str()).map_err(|_| AppError::validation(field, "is not a valid id"))
}

/// Parses an optional `ID`.
pub fn parse_optional_id(field: &str, id: Option<&ID>) -> Result<Option<Uuid>, AppError> {
    id.map(|id| parse_id(field, id)).transpose()
}

/// Parses a list of `ID`s.
pub fn parse_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>, AppError> {
    ids.iter().map(|id| parse_id(field, id)).collect()
}

/// The `ID` of a UUID.
pub fn id(uuid: Uuid) -> ID {
    ID(uuid.to_string())
}
