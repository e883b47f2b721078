use clap::Parser;

// The example extensions: linked, so that configuration alone enables them
// (`strategies.pricing = "volume-discount"`, `strategies.order_process = [.., "credit-review"]`,
// `consumer.sinks = ["erp-export"]`).
#[cfg(feature = "example-extensions")]
use {vectis_ext_credit_review as _, vectis_ext_erp_export as _, vectis_ext_volume_discount as _};

/// mimalloc: GraphQL execution allocates many small objects per field; glibc's allocator
/// spent a fifth of the CPU of large cart reads (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vectis_engine::cli::run(vectis_engine::cli::Cli::parse()).await
}
