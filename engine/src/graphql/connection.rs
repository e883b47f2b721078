//! Relay connections, written once: opaque id cursors, page arguments, a connection from a
//! page of rows, and the node selections of a connection (`edges { node }` and the `nodes`
//! shortcut alike).

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Lookahead, ObjectType, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::db::page::{Page, PageRequest};
use crate::error::AppError;

/// Opaque cursor over row ids.
pub struct IdCursor(pub Uuid);

impl CursorType for IdCursor {
    type Error = &'static str;
    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(IdCursor)
            .ok_or("is not a valid cursor")
    }
    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

/// The page a connection field's `first` (0 to `max`) and `after` (a cursor) ask for.
pub fn page_request(first: i32, after: Option<&str>, max: u64) -> Result<PageRequest, AppError> {
    let after = after
        .map(IdCursor::decode_cursor)
        .transpose()
        .map_err(|m| AppError::validation("after", m))?
        .map(|c| c.0);
    PageRequest::new(i64::from(first), after, max)
}

/// A connection over `page`: one edge per row with its id as cursor, and `fields` beside the
/// edges (e.g. `totalCount`).
pub fn connection<T, N, E>(
    request: &PageRequest,
    page: Page<T>,
    id: impl Fn(&T) -> Uuid,
    node: impl Fn(T) -> N,
    fields: E,
) -> Connection<IdCursor, N, E>
where
    N: OutputType,
    E: ObjectType,
{
    let mut connection =
        Connection::with_additional_fields(request.after.is_some(), page.has_next, fields);
    connection.edges.extend(page.rows.into_iter().map(|row| {
        let cursor = IdCursor(id(&row));
        Edge::new(cursor, node(row))
    }));
    connection
}

/// What the selection asks of a connection's nodes, through `edges { node { … } }` and
/// through `nodes { … }`: look ahead into both.
pub fn node_selections<'a>(ctx: &'a Context<'_>) -> [Lookahead<'a>; 2] {
    let here = ctx.look_ahead();
    [here.field("edges").field("node"), here.field("nodes")]
}
