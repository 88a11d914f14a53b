//! `surreal`: SurrealDB's own server, built from crates.io at the version the engine links.
#![recursion_limit = "256"]

use std::process::ExitCode;

fn main() -> ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
