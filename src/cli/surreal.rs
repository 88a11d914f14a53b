//! A real SurrealDB server on loopback, for the replica benchmark and the integration tests.
//!
//! The `surreal` binary is SurrealDB's own server (tools/surreal-server, the `surrealdb-server`
//! crate pinned to the version of the `surrealdb` crate the engine links), built once — a debug
//! build, see docs/scaling.md for why — into a cache folder outside the clone
//! (`~/.cache/clinicflow-surreal`, or `CLINICFLOW_SURREAL_TARGET`), never per test. When it is
//! missing it is built on demand (the first run on a fresh machine takes a while and says so);
//! `CLINICFLOW_SURREAL` names a binary to use instead.
//!
//! [`SurrealServer::start`] runs it on a free loopback port with in-memory storage and root
//! credentials, waits until it logs that it is listening and then until `/ready` answers 200
//! (the listener binds before start-up has finished), and kills it on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The SurrealDB version of the engine (Cargo.lock) and of tools/surreal-server; a unit test
/// keeps the three equal.
pub const VERSION: &str = "3.3.5";
/// Overrides the server binary.
pub const BINARY_ENV: &str = "CLINICFLOW_SURREAL";
/// Overrides the folder the server is built into.
pub const TARGET_ENV: &str = "CLINICFLOW_SURREAL_TARGET";
/// Root credentials of the throwaway servers.
pub const USER: &str = "root";
pub const PASS: &str = "root";
/// How long a server may take to start listening (a debug build on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The server asks the internet for newer versions at start unless told not to: tests stay on
/// loopback.
const NO_VERSION_CHECK: (&str, &str) = ("SURREAL_ONLINE_VERSION_CHECK", "false");
/// The log line that says the server accepts connections.
const READY_LINE: &str = "Started web server on";

#[derive(Debug, thiserror::Error)]
pub enum SurrealError {
    #[error(
        "no SurrealDB server binary at {path}, and it cannot be built here ({reason}). Build it once \
         with `CARGO_TARGET_DIR={target} cargo build --locked --manifest-path \
         tools/surreal-server/Cargo.toml`, or set {BINARY_ENV} to a `surreal` {VERSION} binary"
    )]
    Missing {
        path: String,
        target: String,
        reason: String,
    },
    #[error("building the SurrealDB server failed (see the cargo output above)")]
    BuildFailed,
    #[error("cannot start the SurrealDB server {path}: {reason}")]
    Start { path: String, reason: String },
}

/// The folder the server is built into: outside the clone, shared by every checkout.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(TARGET_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/clinicflow-surreal")
}

/// The tools/surreal-server package of this source tree.
fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/surreal-server/Cargo.toml")
}

/// The server binary: `CLINICFLOW_SURREAL`, else the cached build, built now if missing.
/// One build at a time in this process; cargo's own lock serializes other processes.
pub fn binary() -> Result<PathBuf, SurrealError> {
    if let Some(path) = std::env::var_os(BINARY_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let target = target_dir();
    let path = target.join("debug/surreal");
    // A binary of another version (the pin moved) is rebuilt.
    if is_current(&path) {
        return Ok(path);
    }
    let missing = |reason: String| SurrealError::Missing {
        path: path.display().to_string(),
        target: target.display().to_string(),
        reason,
    };
    let manifest = manifest();
    if !manifest.is_file() {
        return Err(missing(format!("{} is not there", manifest.display())));
    }
    eprintln!(
        "clinicflow: building SurrealDB's server {VERSION} once into {} (a debug build: about 20 \
         minutes on 2 cores; later runs reuse it)",
        target.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| missing(format!("cannot run cargo: {e}")))?;
    if !status.success() || !is_current(&path) {
        return Err(SurrealError::BuildFailed);
    }
    Ok(path)
}

/// Whether `path` is a `surreal` binary of [`VERSION`] (`surreal version` prints "3.3.5 for
/// linux on x86_64", after a warning line in a debug build).
fn is_current(path: &Path) -> bool {
    std::process::Command::new(path)
        .arg("version")
        .env(NO_VERSION_CHECK.0, NO_VERSION_CHECK.1)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{VERSION} ")))
        })
}

/// A running server; killed when dropped.
pub struct SurrealServer {
    child: Child,
    port: u16,
}

impl SurrealServer {
    /// Starts a server with in-memory storage on a free loopback port.
    pub async fn start() -> Result<SurrealServer, SurrealError> {
        let path = tokio::task::spawn_blocking(binary)
            .await
            .map_err(|e| SurrealError::Start {
                path: String::new(),
                reason: e.to_string(),
            })??;
        // The port is free when we ask; another process could take it before the server
        // binds, so a server that exits early is started again on another port.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_once(&path).await {
                Ok(server) => return Ok(server),
                Err(reason) => last = reason,
            }
        }
        Err(SurrealError::Start {
            path: path.display().to_string(),
            reason: last,
        })
    }

    async fn start_once(path: &Path) -> Result<SurrealServer, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut child = Command::new(path)
            .args(["start", "--no-banner", "--log", "info", "--user", USER, "--pass", PASS])
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("memory")
            .env(NO_VERSION_CHECK.0, NO_VERSION_CHECK.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("no output pipes".into());
        };
        // Both streams are read until the server exits (a full pipe would block it); the
        // first ready line, or the end of both streams, answers the wait.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(), String>>(2);
        for stream in [
            Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(err),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                let mut tail = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains(READY_LINE) {
                        let _ = tx.send(Ok(())).await;
                    } else if tail.len() < 20 {
                        tail.push(line);
                    }
                }
                let _ = tx.send(Err(tail.join("\n"))).await;
            });
        }
        drop(tx);
        let mut ended = Vec::new();
        let wait = async {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Ok(()) => return Ok(()),
                    Err(tail) => ended.push(tail),
                }
                if ended.len() == 2 {
                    break;
                }
            }
            Err(format!("the server exited:\n{}", ended.join("\n")))
        };
        let listening = tokio::time::timeout(START_TIMEOUT, wait).await;
        match listening {
            // The listener binds before the server finishes starting (it answers 503 "still
            // starting up" meanwhile): ready is when `/ready` says so.
            Ok(Ok(())) => match tokio::time::timeout(START_TIMEOUT, ready(port)).await {
                Ok(()) => Ok(SurrealServer { child, port }),
                Err(_) => {
                    let _ = child.start_kill();
                    Err(format!("/ready did not answer 200 within {}s", START_TIMEOUT.as_secs()))
                }
            },
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let _ = child.start_kill();
                Err(format!("not listening after {}s", START_TIMEOUT.as_secs()))
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://root:root@127.0.0.1:PORT?ns=…&db=…`, for `Store::connect` and `--db`.
    pub fn url(&self, ns: &str, db: &str) -> String {
        format!("ws://{USER}:{PASS}@127.0.0.1:{}?ns={ns}&db={db}", self.port)
    }

    /// Kills the server now (the replica benchmark stops it before reading its figures).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Returns once `GET /ready` answers 200; asks again every 50 ms.
async fn ready(port: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ready");
    loop {
        if let Ok(resp) = client.get(&url).timeout(Duration::from_secs(2)).send().await
            && resp.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    /// The server must speak the same protocol and SurrealQL as the engine's client: the pin
    /// in tools/surreal-server, the engine's Cargo.lock and [`super::VERSION`] agree.
    #[test]
    fn the_server_is_pinned_to_the_engines_surrealdb_version() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let engine = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"surrealdb\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'))
            .unwrap();
        assert_eq!(engine, super::VERSION);
        let tools = std::fs::read_to_string(root.join("tools/surreal-server/Cargo.toml")).unwrap();
        assert!(
            tools.contains(&format!("surrealdb-server = {{ version = \"={}\"", super::VERSION)),
            "tools/surreal-server/Cargo.toml must pin surrealdb-server ={}",
            super::VERSION
        );
        let tools_lock = std::fs::read_to_string(root.join("tools/surreal-server/Cargo.lock")).unwrap();
        assert!(tools_lock.contains(&format!("name = \"surrealdb-core\"\nversion = \"{}\"", super::VERSION)));
    }
}
