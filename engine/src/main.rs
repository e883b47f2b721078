use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vectis_engine::cli::run(vectis_engine::cli::Cli::parse()).await
}
