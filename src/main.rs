use std::process::ExitCode;

use clap::Parser;

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
