//! The error policy, in one place.
//!
//! Services return [`AppError`]. At the GraphQL edge each variant becomes an error with a
//! machine-readable `extensions.code` (and `details` where useful). Expected failures carry a
//! message written for the client; unexpected ones ([`AppError::Internal`]) are logged once with
//! their cause chain and reach the client only as `INTERNAL` with a generic message and the
//! request's log correlation id — never SQL, paths or stack traces.

/// Error codes exposed in `extensions.code`.
pub mod code {
    /// No or invalid credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated but lacking a permission.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The addressed entity does not exist (or belongs to another tenant).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Input that breaks a rule.
    pub const VALIDATION: &str = "VALIDATION";
    /// A SKU that exists already.
    pub const DUPLICATE_SKU: &str = "DUPLICATE_SKU";
    /// A unique value (slug, email) that exists already.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many attempts.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Something failed on the server.
    pub const INTERNAL: &str = "INTERNAL";
}

/// One invalid item of a bulk input.
#[derive(Debug, Clone, PartialEq, Eq, async_graphql::SimpleObject)]
pub struct ItemError {
    /// Position of the item in the input list (0-based).
    pub index: i32,
    /// Machine-readable code, e.g. `DUPLICATE_SKU`, `NOT_FOUND`, `VALIDATION`.
    pub code: String,
    /// The input field at fault, if one.
    pub field: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

impl ItemError {
    /// Builds an item error.
    pub fn new(index: usize, code: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        ItemError {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            code: code.to_owned(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Errors of services, mapped to GraphQL errors by `From<AppError> for async_graphql::Error`.
///
/// It deliberately does not implement `Display`: async-graphql converts any `Display` type
/// into an error *without* extensions, and every service error must keep its code.
#[derive(Debug)]
pub enum AppError {
    /// Missing, malformed, forged or expired credentials.
    Unauthenticated(String),
    /// The caller lacks a permission.
    Forbidden(String),
    /// Unknown id (or another tenant's).
    NotFound {
        /// Kind of entity, e.g. `Product`.
        entity: &'static str,
        /// The id or key asked for.
        id: String,
    },
    /// Invalid input.
    Validation {
        /// The input field at fault.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A unique value is taken.
    Conflict {
        /// Machine-readable code (`CONFLICT`, `DUPLICATE_SKU`).
        code: &'static str,
        /// What collides.
        message: String,
    },
    /// A business rule refuses the request (e.g. a coupon below its minimum order value).
    Rejected {
        /// Machine-readable code, e.g. `COUPON_NOT_APPLICABLE`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// Too many attempts.
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// An unexpected failure; details are logged, not returned.
    Internal(anyhow::Error),
}

impl AppError {
    /// A validation error on `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A not-found error.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        AppError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// The client-facing message.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(m) => m.clone(),
            AppError::Forbidden(p) => format!("missing permission {p}"),
            AppError::NotFound { entity, id } => format!("{entity} {id} not found"),
            AppError::Validation {
                field: Some(f),
                message,
            } => format!("{f}: {message}"),
            AppError::Validation {
                field: None,
                message,
            } => message.clone(),
            AppError::Conflict { message, .. } | AppError::Rejected { message, .. } => {
                message.clone()
            }
            AppError::RateLimited { retry_after_secs } => {
                format!("too many attempts, retry in {retry_after_secs} s")
            }
            AppError::Internal(_) => "internal error".into(),
        }
    }

    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => code::UNAUTHENTICATED,
            AppError::Forbidden(_) => code::FORBIDDEN,
            AppError::NotFound { .. } => code::NOT_FOUND,
            AppError::Validation { .. } => code::VALIDATION,
            AppError::Conflict { code, .. } | AppError::Rejected { code, .. } => code,
            AppError::RateLimited { .. } => code::RATE_LIMITED,
            AppError::Internal(_) => code::INTERNAL,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        use async_graphql::ErrorExtensions as _;
        if let AppError::Internal(cause) = &err {
            let incident = uuid::Uuid::now_v7();
            tracing::error!(%incident, error = ?cause, "internal error");
            return async_graphql::Error::new("internal error").extend_with(|_, e| {
                e.set("code", code::INTERNAL);
                e.set("incident", incident.to_string());
            });
        }
        async_graphql::Error::new(err.message()).extend_with(|_, e| {
            e.set("code", err.code());
            match &err {
                AppError::Validation {
                    field: Some(field), ..
                } => e.set(
                    "details",
                    async_graphql::Value::from_json(serde_json::json!({ "field": field }))
                        .unwrap_or_default(),
                ),
                AppError::NotFound { entity, id } => e.set(
                    "details",
                    async_graphql::Value::from_json(
                        serde_json::json!({ "entity": entity, "id": id }),
                    )
                    .unwrap_or_default(),
                ),
                AppError::RateLimited { retry_after_secs } => e.set(
                    "details",
                    async_graphql::Value::from_json(
                        serde_json::json!({ "retryAfter": retry_after_secs }),
                    )
                    .unwrap_or_default(),
                ),
                AppError::Forbidden(permission) => e.set(
                    "details",
                    async_graphql::Value::from_json(
                        serde_json::json!({ "permission": permission }),
                    )
                    .unwrap_or_default(),
                ),
                _ => {}
            }
        })
    }
}

impl AppError {
    /// This error as a request-level GraphQL error (no path, no location): for failures before
    /// execution.
    pub fn into_server_error(self) -> async_graphql::ServerError {
        let err: async_graphql::Error = self.into();
        let mut server = async_graphql::ServerError::new(err.message, None);
        server.extensions = err.extensions;
        server
    }
}

/// Result of services.
pub type AppResult<T> = Result<T, AppError>;

impl From<AppError> for anyhow::Error {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Internal(cause) => cause,
            other => anyhow::anyhow!("{}: {}", other.code(), other.message()),
        }
    }
}
