//! The `vectis` command line.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine;
use clap::{Parser, Subcommand};
use rand::RngCore;
use tokio::net::TcpListener;
use vectis_strategies::CurrencyCode;

use crate::app::App;
use crate::auth::StaffRole;
use crate::config::{Config, LogFormat};
use crate::http::{HttpOptions, router};
use crate::seed;

/// Vectis: a GraphQL-first, B2B-first headless commerce engine.
#[derive(Debug, Parser)]
#[command(name = "vectis", version, about)]
pub struct Cli {
    /// Configuration file (TOML); missing is fine, defaults and VECTIS_* variables apply.
    #[arg(long, global = true, default_value = "vectis.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies migrations and serves the GraphQL API.
    Serve {
        /// Seed the demo tenant and catalog first (idempotent).
        #[arg(long)]
        demo: bool,
        /// Address to listen on (overrides http.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Applies pending database migrations.
    Migrate,
    /// Seeds data.
    Seed {
        /// Seed the demo tenant, admin and catalog.
        #[arg(long, required = true)]
        demo: bool,
    },
    /// Prints the GraphQL schema (SDL).
    ExportSchema {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Domain events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Imports data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

/// `import` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Sets stock levels from a CSV file with the columns `sku,location,on_hand` (absolute
    /// units on hand per SKU and stock location code). Every row is checked first: when any
    /// is bad, each bad row is reported by line number and nothing is applied.
    Stock {
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// The CSV file.
        file: PathBuf,
    },
}

/// `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Prints the AsyncAPI document of the event topics (the checked-in `asyncapi.yaml`).
    Asyncapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Publishes the event history again to the broker (for a new integrator): every event
    /// from `--since` or `--from-position` on, in order, with its original id.
    Replay {
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(
            long,
            conflicts_with = "from_position",
            required_unless_present = "from_position"
        )]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Outbox position (the `position` attribute of an event).
        #[arg(long)]
        from_position: Option<i64>,
        /// Only this tenant's events (slug).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates a super-admin staff user; the password comes from VECTIS_ADMIN_PASSWORD or the
    /// first line of standard input. A tenant that does not exist is created.
    Create {
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Email of the new staff user.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

/// Installs the log subscriber configured in `log`.
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::ExportSchema { output } = &cli.command {
        let sdl = crate::graphql::sdl();
        match output {
            Some(path) => {
                std::fs::write(path, sdl).with_context(|| format!("writing {}", path.display()))?
            }
            None => print!("{sdl}"),
        }
        return Ok(());
    }
    if let Command::Events {
        command: EventsCommand::Asyncapi { output },
    } = &cli.command
    {
        let yaml = crate::events::contract::to_yaml(&crate::events::contract::asyncapi());
        match output {
            Some(path) => {
                std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))?
            }
            None => print!("{yaml}"),
        }
        return Ok(());
    }
    let mut config = Config::load(&cli.config)?;
    if let Command::Serve {
        listen: Some(listen),
        ..
    } = &cli.command
    {
        config.http.listen = listen.clone();
        config.validate()?;
    }
    init_tracing(&config);
    if config.auth.jwt_secret.is_none() {
        tracing::warn!(
            "VECTIS_AUTH_JWT_SECRET is not set: using a random secret, tokens end with the process"
        );
    }
    match cli.command {
        Command::ExportSchema { .. }
        | Command::Events {
            command: EventsCommand::Asyncapi { .. },
        } => Ok(()),
        Command::Migrate => {
            App::start(config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { .. } => {
            let app = App::start(config).await?;
            let report = seed::seed_demo(&app.services, true).await?;
            println!(
                "demo data ready: {} products and {} variants created ({} variants in the demo catalog)",
                report.products_created, report.variants_created, report.variants_total
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    tenant,
                    email,
                    name,
                },
        } => admin_create(config, &tenant, &email, &name).await,
        Command::Serve { demo, .. } => serve(config, demo).await,
        Command::Import {
            command: ImportCommand::Stock { tenant, file },
        } => import_stock(config, &tenant, &file).await,
        Command::Events {
            command:
                EventsCommand::Replay {
                    since,
                    from_position,
                    tenant,
                },
        } => {
            let from = match (since, from_position) {
                (Some(since), _) => crate::events::relay::ReplayFrom::Time(since),
                (None, Some(position)) => crate::events::relay::ReplayFrom::Position(position),
                (None, None) => anyhow::bail!("give --since or --from-position"),
            };
            if !config.kafka.enabled() {
                anyhow::bail!(
                    "kafka.brokers (VECTIS_KAFKA_BROKERS) is not set: nothing to replay to"
                );
            }
            let app = App::start(config).await?;
            let tenant = tenant_by_slug(&app, tenant.as_deref()).await?.map(|t| t.0);
            let kafka = &app.config.kafka;
            let publisher = crate::events::kafka::KafkaPublisher::new(kafka)?;
            let count =
                crate::events::relay::replay(app.db(), &publisher, from, tenant, kafka.relay_batch)
                    .await?;
            println!("replayed {count} events");
            Ok(())
        }
    }
}

async fn admin_create(config: Config, tenant: &str, email: &str, name: &str) -> anyhow::Result<()> {
    let password = match std::env::var("VECTIS_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let app = App::start(config).await?;
    let services = &app.services;
    let tenant = match services.tenants.by_slug(tenant).await? {
        Some(t) => t,
        None => {
            let mut bytes = [0_u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            let key = format!(
                "sk_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            let created = services
                .tenants
                .create(tenant, tenant, &key, CurrencyCode::EUR)
                .await?;
            println!(
                "created tenant `{}`; its storefront key (shown once): {key}",
                created.slug
            );
            created
        }
    };
    let staff = services
        .auth
        .create_staff(tenant.id, None, email, &password, name, &[StaffRole::Admin])
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    println!(
        "created super-admin {} in tenant `{}`",
        staff.email, tenant.slug
    );
    Ok(())
}

const EXAMPLE_QUERY: &str = "{ products(first: 5, search: \"bolt\") { totalCount edges { node { name variants { sku price(currency: \"EUR\") { decimal currency } } } } } }";

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let addr = config.listen_addr();
    let app = App::start(config).await?;
    let mut options = HttpOptions::default();
    if demo {
        let report = seed::seed_demo(&app.services, true).await?;
        options.graphiql_storefront_key = Some(seed::DEMO_STOREFRONT_KEY.to_owned());
        println!(
            "demo tenant `{}` ready: {} variants ({} created now)",
            seed::DEMO_TENANT,
            report.variants_total,
            report.variants_created
        );
        println!(
            "  admin login:     {} / {}",
            seed::DEMO_ADMIN_EMAIL,
            seed::DEMO_PASSWORD
        );
        println!(
            "  storefront key:  {} (header X-Vectis-Storefront-Key)",
            seed::DEMO_STOREFRONT_KEY
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    println!("Vectis listening on http://{local}");
    println!("  GraphiQL:  http://{local}/graphql");
    println!("  health:    http://{local}/health");
    if demo {
        println!("  try:       {EXAMPLE_QUERY}");
    }
    let events = crate::consumer::EventRuntime::for_engine(&app).await?;
    if app.config.kafka.enabled() {
        println!(
            "  events:    relay to Kafka at {}",
            app.config.kafka.brokers.as_deref().unwrap_or_default()
        );
    } else {
        println!(
            "  events:    all-in-one (no broker: webhooks, projections and mail run in this process)"
        );
    }
    axum::serve(
        listener,
        router(app, options).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    events.shutdown().await;
    Ok(())
}

/// The id of the tenant called `slug`, when a slug is given; an error when there is none.
pub async fn tenant_by_slug(
    app: &App,
    slug: Option<&str>,
) -> anyhow::Result<Option<crate::kernel::TenantId>> {
    let Some(slug) = slug else {
        return Ok(None);
    };
    let tenant = app
        .services
        .tenants
        .by_slug(slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant `{slug}`"))?;
    Ok(Some(tenant.id))
}

async fn import_stock(config: Config, tenant: &str, file: &std::path::Path) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let report = |bad: Vec<crate::inventory::import::BadRow>| {
        for row in &bad {
            eprintln!("{}:{row}", file.display());
        }
        anyhow::anyhow!("{} bad row(s); nothing was imported", bad.len())
    };
    let rows = crate::inventory::import::parse(std::io::BufReader::new(input)).map_err(&report)?;
    let app = App::start(config).await?;
    let tenant = tenant_by_slug(&app, Some(tenant))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant"))?;
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("importing stock {bar:40} {pos}/{len} rows")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let outcome = app
        .services
        .inventory
        .import(tenant, rows, |done| bar.set_position(done))
        .await;
    bar.finish_and_clear();
    match outcome.map_err(|e| anyhow::anyhow!(e.message()))? {
        Ok(n) => {
            println!("imported {n} stock levels");
            Ok(())
        }
        Err(bad) => Err(report(bad)),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
