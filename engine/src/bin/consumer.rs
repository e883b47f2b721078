//! `vectis-consumer`: consumes the event topics as a consumer group and runs the handlers
//! (projections, webhooks, notifications, extension sinks) and their workers; also lists and
//! re-drives dead letters.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use uuid::Uuid;
use vectis_engine::App;
use vectis_engine::config::Config;
use vectis_engine::consumer::{EventRuntime, pipeline};

// The example extensions: linked, so that configuration alone enables them
// (`strategies.pricing = "volume-discount"`, `strategies.order_process = [.., "credit-review"]`,
// `consumer.sinks = ["erp-export"]`).
#[cfg(feature = "example-extensions")]
use {vectis_ext_credit_review as _, vectis_ext_erp_export as _, vectis_ext_volume_discount as _};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Vectis event consumer.
#[derive(Debug, Parser)]
#[command(name = "vectis-consumer", version, about)]
struct Cli {
    /// Configuration file (TOML), shared with `vectis`.
    #[arg(long, global = true, default_value = "vectis.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consumes events until SIGTERM or Ctrl-C (the default).
    Run,
    /// Handler runs that exhausted their retries.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterCommand {
    /// Lists dead letters, oldest first.
    List {
        /// Only this tenant's (slug).
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Schedules dead letters for a new round of retries.
    Redrive {
        /// Dead letter ids (from `list`).
        ids: Vec<Uuid>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.config)?;
    vectis_engine::cli::init_tracing(&config);
    let app = App::start(config).await?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let runtime = EventRuntime::for_consumer(&app).await?;
            tracing::info!(handlers = ?runtime.pipeline.as_ref().map(|p| p.handler_names()), "vectis-consumer running");
            vectis_engine::cli::shutdown_signal().await;
            tracing::info!("stopping: finishing the event in hand and committing offsets");
            runtime.shutdown().await;
        }
        Command::DeadLetters { command } => {
            let pipeline = pipeline(&app)?;
            match command {
                DeadLetterCommand::List { tenant, limit } => {
                    let tenant =
                        vectis_engine::cli::tenant_by_slug(&app, tenant.as_deref()).await?;
                    let letters = pipeline.dead_letters(tenant, limit).await?;
                    println!(
                        "{:<36}  {:<24}  {:<36}  {:<8}  error",
                        "id", "handler", "event", "attempts"
                    );
                    for l in &letters {
                        println!(
                            "{:<36}  {:<24}  {:<36}  {:<8}  {} ({})",
                            l.id, l.handler, l.event_id, l.attempts, l.last_error, l.event_type
                        );
                    }
                    println!("{} dead letter(s)", letters.len());
                }
                DeadLetterCommand::Redrive { ids, all } => {
                    if ids.is_empty() && !all {
                        anyhow::bail!("give dead letter ids or --all");
                    }
                    let count = pipeline.redrive(&ids).await?;
                    println!("{count} dead letter(s) scheduled for retry");
                }
            }
        }
    }
    Ok(())
}
