use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of glibc's malloc: a turn allocates and frees thousands of small values
/// inside SurrealDB (parsed statements, documents, index keys), and on the bench glibc spent
/// about a fifth of the turn's CPU in malloc/free and in waiting on its arena locks. mimalloc
/// was tried and zeroes surrealkv's 100 MB memtable arenas page by page (docs/design-notes.md).
/// SurrealDB's own `allocator` feature picks jemalloc on x86 Linux for the same reason.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Quiet by default. SurrealDB's storage engines log their own shutdown when a short-lived
/// command (chat, check, test) exits before their background close finishes; committed data is
/// already in the write-ahead log by then, so those lines are noise for an admin.
const DEFAULT_LOG: &str = "warn,surrealdb_core::kvs=off,surrealdb::core::kvs=off,surrealkv=off";

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLINICFLOW_LOG").unwrap_or_else(|_| DEFAULT_LOG.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = clinicflow::cli::Cli::parse();
    match clinicflow::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
