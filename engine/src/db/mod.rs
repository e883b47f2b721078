//! Persistence: the connection pool, tenant-scoped transactions, the statement counter and
//! small query helpers shared by the domain modules.
//!
//! Every unit of work runs in a transaction opened with [`Db::read`] or [`Db::write`] for a
//! [`Scope`]. On PostgreSQL the scope is written into transaction-local settings that the
//! row-level-security policies read (see `vectis_migrations::rls`); the application filters by
//! `tenant_id` as well, so RLS is the backstop, not the only guard.

pub(crate) mod json_rows;
pub mod lock;
pub mod page;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use uuid::Uuid;
use vectis_migrations::{Migrator, MigratorTrait};

use crate::config::DatabaseConfig;
use crate::kernel::TenantId;

/// Which rows a transaction may see and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the rows of one tenant.
    Tenant(TenantId),
    /// All tenants: migrations, tenant provisioning, storefront-key lookup, relays.
    System,
}

/// Counts the SQL statements the pool executes (queries and commands, not BEGIN/COMMIT).
///
/// Tests read it before and after a request to assert that the number of statements does not
/// grow with the size of the data.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    /// Statements executed so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The database handle shared by all services.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    statements: StatementCounter,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects to the configured database (SQLite file or PostgreSQL).
    pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbErr> {
        let mut options = ConnectOptions::new(config.url.clone());
        options
            .max_connections(config.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        if let Some(schema) = &config.schema {
            options.set_schema_search_path(schema.clone());
        }
        let mut conn = Database::connect(options).await?;
        let statements = StatementCounter::default();
        let counter = statements.0.clone();
        conn.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Db { conn, statements })
    }

    /// Applies all pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.conn, None).await
    }

    /// The backend in use.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// The statement counter of this pool.
    pub fn statements(&self) -> &StatementCounter {
        &self.statements
    }

    /// The raw connection, for health checks and tests.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Opens a read transaction in `scope`.
    pub async fn read(&self, scope: Scope) -> Result<DatabaseTransaction, DbErr> {
        let tx = self.conn.begin().await?;
        self.apply_scope(&tx, scope).await?;
        Ok(tx)
    }

    /// Opens a write transaction in `scope` (on SQLite it takes the write lock at BEGIN, so two
    /// writers queue instead of failing on upgrade).
    pub async fn write(&self, scope: Scope) -> Result<DatabaseTransaction, DbErr> {
        let tx = self
            .conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        self.apply_scope(&tx, scope).await?;
        Ok(tx)
    }

    async fn apply_scope(&self, tx: &DatabaseTransaction, scope: Scope) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Postgres {
            return Ok(());
        }
        let (tenant, system) = match scope {
            Scope::Tenant(t) => (t.to_string(), "off"),
            Scope::System => (String::new(), "on"),
        };
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('app.tenant_id', $1, true), set_config('app.system', $2, true)",
            [tenant.into(), system.into()],
        ))
        .await?;
        Ok(())
    }
}

/// `column IN (ids)` as one statement whatever the number of ids: `= ANY($1)` with an array on
/// PostgreSQL, a bound list on SQLite (which accepts 32,766 parameters per statement).
pub fn id_in(
    backend: DbBackend,
    column: impl sea_orm::sea_query::IntoColumnRef,
    ids: Vec<Uuid>,
) -> Expr {
    let column = Expr::col(column);
    if backend == DbBackend::Postgres {
        column.eq(PgFunc::any(Expr::val(ids)))
    } else {
        column.is_in(ids)
    }
}

/// Longest search term accepted by list queries.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A `LIKE … ESCAPE '\'` pattern that finds `term` anywhere (lower case, `%`, `_` and `\`
/// escaped), or `None` for a blank term; longer than [`MAX_SEARCH_CHARS`] is `VALIDATION` on
/// `field`.
pub fn contains_pattern(field: &str, term: &str) -> crate::error::AppResult<Option<String>> {
    let term = term.trim();
    if term.chars().count() > MAX_SEARCH_CHARS {
        return Err(crate::error::AppError::validation(
            field,
            format!("must be at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if term.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    Ok(Some(out))
}

/// The largest list of ids one statement takes on SQLite; callers chunk above it.
pub const MAX_IDS_PER_STATEMENT: usize = 30_000;

/// Whether `err` is a violation of the named unique constraint. PostgreSQL reports the
/// constraint name; SQLite reports the columns, which the caller passes as `sqlite_columns`
/// (e.g. `product_variants.tenant_id, product_variants.sku`).
pub fn is_unique_violation(err: &DbErr, constraint: &str, sqlite_columns: &str) -> bool {
    let text = err.to_string();
    text.contains(constraint)
        || (text.contains("UNIQUE constraint failed") && text.contains(sqlite_columns))
}

/// Maps a violation of the named unique constraint to a `CONFLICT` error with `message`, and
/// any other database error to an internal one: `insert(..).await.map_err(conflict(..))`.
pub fn conflict(
    constraint: &'static str,
    sqlite_columns: &'static str,
    message: impl Into<String>,
) -> impl FnOnce(DbErr) -> crate::error::AppError {
    let message = message.into();
    move |err| {
        if is_unique_violation(&err, constraint, sqlite_columns) {
            crate::error::AppError::Conflict {
                code: crate::error::code::CONFLICT,
                message,
            }
        } else {
            err.into()
        }
    }
}
