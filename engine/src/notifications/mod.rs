//! Notifications: the account emails (email verification, password reset, company invitation)
//! and the approval requests to approvers, rendered from templates (minijinja; text and HTML parts) when their event arrives, queued in
//! `mail_queue` in the handler's transaction (so a redelivered event queues nothing twice), and
//! sent by a worker over SMTP (`VECTIS_MAIL_SMTP_URL`) or, without SMTP, written as `.eml` files
//! to `mail.mailbox_dir` for development.
//!
//! Each message's `Message-ID` is derived from the event id and the queued message, so a
//! message sent twice (a crash between sending and recording) is recognisable as the same
//! message.
//!
//! The one-time tokens these emails carry never travel in events: the service that issues a
//! token keeps it in `mail_tokens` ([`keep_token`]) in the transaction that records the event;
//! the handler reads it by event id, renders the email and deletes it; a sent email's bodies
//! are dropped from `mail_queue`. Only the tokens' hashes stay in the database.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, context};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::MailConfig;
use crate::db::{Db, Scope};
use crate::events::envelope::Envelope;
use crate::events::pipeline::{Handler, RetryPolicy, truncate};

/// `mail_queue`
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_queue")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub event_id: Uuid,
        pub template: String,
        pub to_address: String,
        pub subject: String,
        pub text_body: String,
        pub html_body: String,
        /// `pending`, `sent` or `failed`.
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub sent_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `mail_tokens`: the one-time secret of an account email, kept from the change that asks for
/// the email until the email is queued. Events never carry it.
pub mod token_entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub event_id: Uuid,
        pub token: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Keeps the one-time `token` that the email for event `event_id` will carry, in the
/// transaction that records the event (the services that issue tokens call this; the event
/// itself carries only ids).
pub async fn keep_token<C: sea_orm::ConnectionTrait>(
    tx: &C,
    tenant: crate::kernel::TenantId,
    event_id: Uuid,
    token: &str,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    token_entity::Entity::insert(token_entity::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        created_at: Set(now),
        updated_at: Set(now),
        event_id: Set(event_id),
        token: Set(token.to_owned()),
    })
    .exec_without_returning(tx)
    .await?;
    Ok(())
}

/// The templates: `name.subject`, `name.txt` and `name.html` for each email.
const TEMPLATES: &[(&str, &str)] = &[
    ("verify_email.subject", "Confirm your email address"),
    (
        "verify_email.txt",
        include_str!("templates/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("templates/verify_email.html"),
    ),
    ("password_reset.subject", "Reset your password"),
    (
        "password_reset.txt",
        include_str!("templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("templates/password_reset.html"),
    ),
    (
        "company_invitation.subject",
        "You are invited to {{ company_name }}",
    ),
    (
        "company_invitation.txt",
        include_str!("templates/company_invitation.txt"),
    ),
    (
        "company_invitation.html",
        include_str!("templates/company_invitation.html"),
    ),
    (
        "approval_requested.subject",
        "Order {{ code }} needs your approval",
    ),
    (
        "approval_requested.txt",
        include_str!("templates/approval_requested.txt"),
    ),
    (
        "approval_requested.html",
        include_str!("templates/approval_requested.html"),
    ),
    ("quote_sent.subject", "Your quote is ready"),
    ("quote_sent.txt", include_str!("templates/quote_sent.txt")),
    ("quote_sent.html", include_str!("templates/quote_sent.html")),
    ("quote_response.subject", "Quote: {{ what }}"),
    (
        "quote_response.txt",
        include_str!("templates/quote_response.txt"),
    ),
    (
        "quote_response.html",
        include_str!("templates/quote_response.html"),
    ),
];

/// Quote events that email someone: the buyer when a quote is sent, the company's sales reps
/// when a buyer asks or answers.
const QUOTE_MAIL: &[&str] = &[
    "vectis.quote.sent",
    "vectis.quote.requested",
    "vectis.quote.renegotiation_requested",
    "vectis.quote.declined",
    "vectis.quote.accepted",
];

/// The events that ask approvers to act: an order is held, or a tier of its approval opened.
const APPROVAL_REQUESTED: &str = "vectis.order.approval_requested";
const APPROVAL_TIER_OPENED: &str = "vectis.order.approval_tier_opened";

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Template name.
    pub template: &'static str,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Renders the account emails.
pub struct Notifications {
    env: Environment<'static>,
    link_base: String,
}

impl Notifications {
    /// The handler with the built-in templates; links start with `mail.link_base_url`.
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // HTML parts escape their values; subjects and text parts are plain.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Notifications {
            env,
            link_base: config.link_base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The email an event asks for, if any, carrying the one-time `token` kept for it.
    pub fn render(&self, event: &Envelope, token: &str) -> anyhow::Result<Option<Rendered>> {
        let d = &event.data;
        let text = |key: &str| d.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let (template, path) = match event.event_type.as_str() {
            "vectis.account.email_verification_requested" => ("verify_email", "verify-email"),
            "vectis.account.password_reset_requested" => ("password_reset", "reset-password"),
            "vectis.company.user_invited" => ("company_invitation", "accept-invitation"),
            _ => return Ok(None),
        };
        let to = text("email");
        if token.is_empty() || to.is_empty() {
            anyhow::bail!("{} has no token or email", event.event_type);
        }
        let roles = d
            .get("roles")
            .and_then(|r| r.as_array())
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let ctx = context! {
            first_name => if text("firstName").is_empty() { "there" } else { text("firstName") },
            email => to,
            company_name => text("companyName"),
            roles => roles,
            expires_at => text("expiresAt"),
            link => format!("{}/{path}?token={token}", self.link_base),
        };
        let render = |suffix: &str| -> anyhow::Result<String> {
            Ok(self
                .env
                .get_template(&format!("{template}.{suffix}"))?
                .render(&ctx)?)
        };
        Ok(Some(Rendered {
            template,
            to: to.to_owned(),
            subject: render("subject")?,
            text: render("txt")?,
            html: render("html")?,
        }))
    }
}

#[async_trait]
impl Handler for Notifications {
    fn name(&self) -> &str {
        "notifications"
    }

    fn wants(&self, event: &Envelope) -> bool {
        matches!(
            event.event_type.as_str(),
            "vectis.account.email_verification_requested"
                | "vectis.account.password_reset_requested"
                | "vectis.company.user_invited"
                | APPROVAL_REQUESTED
                | APPROVAL_TIER_OPENED
        ) || QUOTE_MAIL.contains(&event.event_type.as_str())
    }

    async fn handle(&self, tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        if event.event_type == APPROVAL_REQUESTED || event.event_type == APPROVAL_TIER_OPENED {
            return self.approval_requested(tx, event).await;
        }
        if QUOTE_MAIL.contains(&event.event_type.as_str()) {
            return self.quote_mail(tx, event).await;
        }
        let kept = token_entity::Entity::find()
            .filter(token_entity::Column::TenantId.eq(event.tenantid))
            .filter(token_entity::Column::EventId.eq(event.id))
            .one(tx)
            .await?;
        let Some(kept) = kept else {
            // Queued already (a redelivery or a replay): the secret went into that email.
            tracing::info!(event = %event.id, "account email queued before; nothing to send");
            return Ok(());
        };
        let Some(mail) = self.render(event, &kept.token)? else {
            return Ok(());
        };
        queue(tx, event, mail).await?;
        token_entity::Entity::delete_many()
            .filter(token_entity::Column::Id.eq(kept.id))
            .exec(tx)
            .await?;
        Ok(())
    }
}

impl Notifications {
    /// Emails everyone who may act on the first tier of a held order's requirements.
    async fn approval_requested(
        &self,
        tx: &DatabaseTransaction,
        event: &Envelope,
    ) -> anyhow::Result<()> {
        let d = &event.data;
        let uuid = |key: &str| {
            d.get(key)
                .and_then(|v| v.as_str())
                .and_then(|v| Uuid::parse_str(v).ok())
        };
        let (Some(order), Some(company)) = (uuid("orderId"), uuid("companyId")) else {
            anyhow::bail!("{APPROVAL_REQUESTED} without an order or company");
        };
        let requirements: Vec<vectis_strategies::approval::Requirement> =
            serde_json::from_value(d.get("requirements").cloned().unwrap_or_default())?;
        let tenant = crate::kernel::TenantId(event.tenantid);
        let approvers = crate::approvals::service::approvers_of(
            tx,
            tenant,
            company,
            uuid("locationId"),
            uuid("customerId"),
            &requirements,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let code = d.get("code").and_then(|v| v.as_str()).unwrap_or_default();
        let currency: vectis_strategies::CurrencyCode = d
            .get("currency")
            .and_then(|v| v.as_str())
            .unwrap_or("EUR")
            .parse()
            .unwrap_or(vectis_strategies::CurrencyCode::EUR);
        let total = vectis_strategies::Money::new(
            d.get("total").and_then(|v| v.as_i64()).unwrap_or_default(),
            currency,
        );
        let reasons = requirements
            .iter()
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        for (to, first_name) in approvers {
            let ctx = context! {
                first_name => if first_name.is_empty() { "there".to_owned() } else { first_name },
                code => code,
                total => total.to_string(),
                reasons => reasons,
                link => format!("{}/approvals?order={order}", self.link_base),
            };
            let render = |suffix: &str| -> anyhow::Result<String> {
                Ok(self
                    .env
                    .get_template(&format!("approval_requested.{suffix}"))?
                    .render(&ctx)?)
            };
            queue(
                tx,
                event,
                Rendered {
                    template: "approval_requested",
                    to,
                    subject: render("subject")?,
                    text: render("txt")?,
                    html: render("html")?,
                },
            )
            .await?;
        }
        Ok(())
    }
}

impl Notifications {
    /// A sent quote to its buyer; a buyer's request or answer to the company's sales reps
    /// (and the rep who last worked on the quote).
    async fn quote_mail(&self, tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        let d = &event.data;
        let text = |key: &str| d.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let uuid = |key: &str| Uuid::parse_str(text(key)).ok();
        let Some(quote) = uuid("quoteId") else {
            anyhow::bail!("{} without a quote", event.event_type);
        };
        let tenant = crate::kernel::TenantId(event.tenantid);
        let currency: vectis_strategies::CurrencyCode = text("currency")
            .parse()
            .unwrap_or(vectis_strategies::CurrencyCode::EUR);
        let total = vectis_strategies::Money::new(
            d.get("total").and_then(|v| v.as_i64()).unwrap_or_default(),
            currency,
        );
        let sent = event.event_type == "vectis.quote.sent";
        let recipients = crate::quotes::service::mail_recipients_in(
            tx,
            tenant,
            sent,
            uuid("customerId"),
            uuid("companyId"),
            uuid("repId"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let what = match event.event_type.as_str() {
            "vectis.quote.requested" => "a buyer asks for a quote",
            "vectis.quote.renegotiation_requested" => "the buyer asks for changes to a quote",
            "vectis.quote.declined" => "the buyer declined a quote",
            _ => "the buyer accepted a quote",
        };
        let template = if sent { "quote_sent" } else { "quote_response" };
        for (to, first_name) in recipients {
            let ctx = context! {
                first_name => if first_name.is_empty() { "there".to_owned() } else { first_name },
                what => what,
                total => total.to_string(),
                line_count => d.get("lineCount").and_then(|v| v.as_i64()).unwrap_or_default(),
                expires_at => text("expiresAt"),
                comment => text("comment"),
                link => format!("{}/quotes/{quote}", self.link_base),
            };
            let render = |suffix: &str| -> anyhow::Result<String> {
                Ok(self
                    .env
                    .get_template(&format!("{template}.{suffix}"))?
                    .render(&ctx)?)
            };
            queue(
                tx,
                event,
                Rendered {
                    template,
                    to,
                    subject: render("subject")?,
                    text: render("txt")?,
                    html: render("html")?,
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Queues `mail` for `event` (once per event, template and recipient).
async fn queue(tx: &DatabaseTransaction, event: &Envelope, mail: Rendered) -> anyhow::Result<()> {
    let now = Utc::now();
    entity::Entity::insert(entity::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(event.tenantid),
        created_at: Set(now),
        updated_at: Set(now),
        event_id: Set(event.id),
        template: Set(mail.template.to_owned()),
        to_address: Set(mail.to),
        subject: Set(mail.subject),
        text_body: Set(mail.text),
        html_body: Set(mail.html),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        last_error: Set(None),
        sent_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([
            entity::Column::EventId,
            entity::Column::Template,
            entity::Column::ToAddress,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(tx)
    .await?;
    Ok(())
}

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a folder (development).
    Mailbox(PathBuf),
}

/// Sends queued mail.
#[derive(Clone)]
pub struct Mailer {
    db: Db,
    transport: Transport,
    from: Mailbox,
    retry: RetryPolicy,
}

impl Mailer {
    /// The mailer for `config`.
    pub fn new(db: Db, config: &MailConfig, retry: RetryPolicy) -> anyhow::Result<Self> {
        let transport = match config.smtp_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                Transport::Smtp(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build())
            }
            None => Transport::Mailbox(PathBuf::from(&config.mailbox_dir)),
        };
        Ok(Mailer {
            db,
            transport,
            from: config
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("mail.from: {e}"))?,
            retry,
        })
    }

    /// Claims up to 50 due messages (leasing them for two minutes, so other consumers skip
    /// them) and sends them; returns how many were tried.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let tx = self.db.write(Scope::System).await?;
        let mut query = entity::Entity::find()
            .filter(entity::Column::Status.eq("pending"))
            .filter(entity::Column::NextAttemptAt.lte(now))
            .order_by_asc(entity::Column::NextAttemptAt)
            .limit(50);
        if self.db.backend() == sea_orm::DbBackend::Postgres {
            query = query.lock_with_behavior(
                sea_orm::sea_query::LockType::Update,
                sea_orm::sea_query::LockBehavior::SkipLocked,
            );
        }
        let due = query.all(&tx).await?;
        if !due.is_empty() {
            entity::Entity::update_many()
                .col_expr(
                    entity::Column::NextAttemptAt,
                    Expr::value(now + Duration::from_secs(120)),
                )
                .filter(entity::Column::Id.is_in(due.iter().map(|m| m.id)))
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        for mail in &due {
            let result = self.send(mail).await;
            let now = Utc::now();
            let attempts = mail.attempts.saturating_add(1);
            // A sent email's bodies are dropped: its one-time link lives only in the email.
            let sent = result.is_ok();
            let (status, next, error) = match &result {
                Ok(()) => ("sent", None, None),
                Err(err) if attempts >= self.retry.max_attempts => {
                    ("failed", None, Some(format!("{err:#}")))
                }
                Err(err) => (
                    "pending",
                    Some(now + self.retry.delay(attempts)),
                    Some(format!("{err:#}")),
                ),
            };
            if let Some(error) = &error {
                tracing::warn!(mail = %mail.id, error = %error, "sending mail");
            }
            let tx = self.db.write(Scope::System).await?;
            let update = entity::Entity::update_many()
                .col_expr(entity::Column::Status, Expr::value(status))
                .col_expr(entity::Column::Attempts, Expr::value(attempts))
                .col_expr(entity::Column::NextAttemptAt, Expr::value(next))
                .col_expr(
                    entity::Column::LastError,
                    Expr::value(error.map(|e| truncate(&e, 500))),
                )
                .col_expr(
                    entity::Column::SentAt,
                    Expr::value(result.is_ok().then_some(now)),
                )
                .col_expr(entity::Column::UpdatedAt, Expr::value(now));
            let update = if sent {
                update
                    .col_expr(entity::Column::TextBody, Expr::value(""))
                    .col_expr(entity::Column::HtmlBody, Expr::value(""))
            } else {
                update
            };
            update
                .filter(entity::Column::Id.eq(mail.id))
                .exec(&tx)
                .await?;
            tx.commit().await?;
        }
        Ok(due.len())
    }

    async fn send(&self, mail: &entity::Model) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to_address.parse()?)
            .subject(&mail.subject)
            .message_id(Some(format!(
                "<{}.{}.{}@vectis>",
                mail.event_id, mail.template, mail.id
            )))
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::Mailbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let path = dir.join(format!(
                    "{}-{}-{}.eml",
                    mail.event_id, mail.template, mail.id
                ));
                tokio::fs::write(path, message.formatted()).await?;
            }
        }
        Ok(())
    }

    /// Sends due mail every `every` until `stop` fires.
    pub async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = %format!("{err:#}"), "mail queue");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
