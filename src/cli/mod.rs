//! The command line: serve · chat · check · test · graph · bench · eval · init · user.

pub mod bench;
mod bench_http;
pub(crate) mod bench_large;
pub mod bench_replicas;
mod chat;
pub mod clinics;
pub mod eval;
mod init;
pub mod runner;
mod serve;
pub mod surreal;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::flow::bot::Bot;
use crate::flow::compile::compile_dir;
pub use clinics::ClinicArg;

#[derive(Parser, Debug)]
#[command(
    name = "clinicflow",
    version,
    about = "A patient assistant for clinics, run from files the clinic edits"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DirArg {
    /// Folder holding flows/, prompts/ and schemas/ (the clinic `main`), and clinics/<slug>/
    /// with the same three folders for each other clinic (docs/clinics.md).
    #[arg(long, env = "CLINICFLOW_DIR", default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (docs at /docs), hot-reload edits to the bot folder, send reminders.
    Serve(serve::ServeArgs),
    /// Check every flow, template and schema; print all problems with file:line:column
    /// (of every clinic of the folder, unless --clinic names one).
    Check {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        clinic: ClinicArg,
    },
    /// Draw a flow as a diagram (Mermaid by default).
    Graph {
        /// The flow to draw (its `flow:` name).
        flow: String,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        clinic: ClinicArg,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Talk to the assistant in the terminal (one message per line when piped).
    Chat {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        clinic: ClinicArg,
        /// Database URL: mem://, surrealkv://path, rocksdb://path, ws://host:port.
        #[arg(long, env = "CLINICFLOW_DB", default_value = crate::store::DEFAULT_URL)]
        db: String,
        /// Pin the clock (clinic time), e.g. 2026-11-23T10:00.
        #[arg(long)]
        now: Option<String>,
        /// Conversation id (continue an earlier conversation stored in the database).
        #[arg(long, default_value = "cli")]
        session: String,
    },
    /// Measure compile time, engine step cost and whole turns with storage.
    Bench {
        #[command(flatten)]
        dir: DirArg,
        /// Database for the service part (default: a temporary surrealkv:// folder).
        #[arg(long)]
        db: Option<String>,
        /// Scripted booking conversations to run (8 turns each). Default: 400, so each side of
        /// the HTTP comparison has about 3,600 latencies and its p99 is not the 20th-worst of
        /// 2,000 (which moved by a millisecond from run to run); 200 with --replicas.
        #[arg(long)]
        conversations: Option<usize>,
        /// Conversations running at the same time.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Instead: N `serve` processes of this binary on one SurrealDB server (built once,
        /// see docs/scaling.md), one of them killed mid-run; prints what was lost (all 0).
        #[arg(long, value_name = "N")]
        replicas: Option<usize>,
        /// Also measure turns on a database already holding 100,000 appointments, 1,000,000
        /// turns and 50,000 sessions (times FACTOR), against the empty one.
        #[arg(long, value_name = "FACTOR", num_args = 0..=1, default_missing_value = "1")]
        large_db: Option<f64>,
    },
    /// Run scripted conversations (default: tests/conversations/*.yaml of every clinic of the
    /// folder, or of the one --clinic names).
    Test {
        files: Vec<PathBuf>,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        clinic: ClinicArg,
        /// Print every turn of every conversation.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Score the NLU on the labelled messages of tests/nlu/*.yaml, or (--cost) compare the LLM
    /// tokens per booked appointment with a bot that sends the whole chat every turn.
    Eval(eval::EvalArgs),
    /// Staff accounts of the console (/console): add, list, remove.
    User(user::UserArgs),
    /// Create a new clinic, clinics/<slug>/, from the built-in template (flows, prompts in
    /// Spanish and English, schemas and scripted conversations that pass as they are).
    Init(init::InitArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    /// A self-contained SVG image (opens in any browser, offline).
    Svg,
    /// An HTML page with the SVG and the flow's name, offline (no script, no CDN).
    Html,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Check { dir, clinic } => Ok(clinics::check(&dir.dir, &clinic)),
        Command::Init(args) => Ok(init::run(&args)),
        Command::Graph {
            flow,
            dir,
            clinic,
            format,
        } => {
            let Some((_, bot)) = clinics::load(&dir.dir, &clinic) else {
                return Ok(ExitCode::FAILURE);
            };
            let Some(f) = bot.flow(&flow) else {
                let names: Vec<&str> = bot.flows.iter().map(|f| f.name.as_str()).collect();
                eprintln!("there is no flow named `{flow}`; the flows are: {}", names.join(", "));
                return Ok(ExitCode::FAILURE);
            };
            match format {
                GraphFormat::Mermaid => print!("{}", crate::flow::graph::mermaid(&bot, f)),
                GraphFormat::Dot => print!("{}", crate::flow::graph::dot(&bot, f)),
                GraphFormat::Svg => print!("{}", crate::flow::graph::svg(&bot, f)),
                GraphFormat::Html => print!("{}", crate::flow::graph::html(&bot, f)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat {
            dir,
            clinic,
            db,
            now,
            session,
        } => {
            let Some((_, bot)) = clinics::load(&dir.dir, &clinic) else {
                return Ok(ExitCode::FAILURE);
            };
            chat::run(Arc::new(bot), &db, now.as_deref(), &session).await
        }
        Command::Bench {
            dir,
            db,
            conversations,
            concurrency,
            replicas: Some(replicas),
            ..
        } => {
            let Some(bot) = load(&dir.dir) else {
                return Ok(ExitCode::FAILURE);
            };
            let conversations = conversations.unwrap_or(bench_replicas::CONVERSATIONS);
            let figures = bench_replicas::run(&dir.dir, Arc::new(bot), replicas, conversations).await?;
            let _ = (db, concurrency);
            Ok(if figures.all_zero() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench {
            dir,
            db,
            conversations,
            concurrency,
            replicas: None,
            large_db,
        } => {
            let conversations = conversations.unwrap_or(bench::CONVERSATIONS);
            bench::run(&dir.dir, db.as_deref(), conversations, concurrency, large_db).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => eval::run(args).await,
        Command::User(args) => user::run(args),
        Command::Test {
            files,
            dir,
            clinic,
            verbose,
        } => clinics::test(&dir.dir, &clinic, files, verbose).await,
    }
}

/// Compiles the bot, printing every problem when it does not compile.
pub fn load(dir: &std::path::Path) -> Option<Bot> {
    match compile_dir(dir) {
        Ok(bot) => Some(bot),
        Err(diags) => {
            eprintln!("{}", diags.render());
            eprintln!(
                "{} problem(s) found; fix them and try again (`clinicflow check` lists them)",
                diags.len()
            );
            None
        }
    }
}

/// Parses `--now` (clinic-local `2026-11-23T10:00`) in the clinic's time zone.
pub fn parse_now(s: &str, tz: &jiff::tz::TimeZone) -> anyhow::Result<jiff::Zoned> {
    let dt: jiff::civil::DateTime = s
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("`{s}` is not a date and time like 2026-11-23T10:00 ({e})"))?;
    Ok(dt.to_zoned(tz.clone())?)
}
