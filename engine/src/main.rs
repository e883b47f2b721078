use clap::Parser;

/// mimalloc: GraphQL execution allocates many small objects per field; glibc's allocator
/// spent a fifth of the CPU of large cart reads (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vectis_engine::cli::run(vectis_engine::cli::Cli::parse()).await
}
