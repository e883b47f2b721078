//! Multi-row statements whose rows travel as one JSON parameter (so neither SQLite's nor
//! PostgreSQL's bind-parameter limit applies, and the statement count stays one whatever the
//! number of rows), written once for both backends.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde::Serialize;

use crate::error::{AppError, AppResult};

/// Builds one statement over a JSON array of rows, each row an object.
pub(crate) struct JsonRows {
    backend: DbBackend,
    values: Vec<Value>,
}

impl JsonRows {
    pub(crate) fn new(backend: DbBackend) -> Self {
        JsonRows {
            backend,
            values: Vec::new(),
        }
    }

    /// A bind parameter, numbered (so it may appear more than once in the statement).
    pub(crate) fn param(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// `FROM <rows> AS x`, binding `rows` as the JSON array.
    pub(crate) fn from<T: Serialize>(&mut self, rows: &[T]) -> AppResult<String> {
        let json = serde_json::to_string(rows).map_err(|e| AppError::Internal(e.into()))?;
        let p = self.param(json);
        Ok(match self.backend {
            DbBackend::Postgres => format!("jsonb_array_elements({p}::jsonb) AS x"),
            _ => format!("json_each({p}) AS x"),
        })
    }

    /// A UUID field of the row (serialised as simple hex).
    pub(crate) fn uuid(&self, field: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(x->>'{field}')::uuid"),
            _ => format!("unhex(json_extract(x.value, '$.{field}'))"),
        }
    }

    /// An integer field of the row.
    pub(crate) fn int(&self, field: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(x->>'{field}')::bigint"),
            _ => format!("json_extract(x.value, '$.{field}')"),
        }
    }

    /// A text field of the row.
    pub(crate) fn text(&self, field: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(x->>'{field}')"),
            _ => format!("json_extract(x.value, '$.{field}')"),
        }
    }

    /// A timestamp field of the row (see [`timestamp`]).
    pub(crate) fn time(&self, field: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(x->>'{field}')::timestamptz"),
            _ => format!("json_extract(x.value, '$.{field}')"),
        }
    }

    /// Runs `sql` with the bound parameters.
    pub(crate) async fn execute<C: ConnectionTrait>(self, tx: &C, sql: String) -> AppResult<()> {
        tx.execute_raw(Statement::from_sql_and_values(
            self.backend,
            sql,
            self.values,
        ))
        .await?;
        Ok(())
    }
}

/// A UUID as the JSON rows carry it.
pub(crate) fn hex(id: uuid::Uuid) -> String {
    id.simple().to_string()
}

/// A timestamp as the JSON rows carry it: RFC 3339 as SQLite stores timestamps (and
/// PostgreSQL reads).
pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}
