//! Turning a database URL into a connected, namespaced `Surreal<Any>`.

use std::path::Path;
use std::time::Duration;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::opt::auth::Root;

use super::StoreError;

/// Survives restarts, needs no server: the default for `clinicflow serve`.
pub const DEFAULT_URL: &str = "surrealkv://data/clinicflow.db";
pub const DEFAULT_NS: &str = "clinicflow";
pub const DEFAULT_DB: &str = "main";

/// A remote server that does not answer must not hang start-up forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    Memory,
    /// Embedded, file-backed; the path is the database folder.
    File(String),
    Remote,
}

/// What a URL asks for, before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The endpoint handed to the SDK (credentials and our own parameters removed).
    pub endpoint: String,
    pub engine: Engine,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub ns: String,
    pub db: String,
}

/// Parses `url`; `env_user` / `env_pass` are the fallback credentials for remote servers.
pub(crate) fn parse(url: &str, env_user: Option<String>, env_pass: Option<String>) -> Result<Target, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: redact(url),
        reason: reason.to_string(),
    };
    let url = url.trim();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut ns = DEFAULT_NS.to_string();
    let mut db = DEFAULT_DB.to_string();
    let mut passthrough = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "ns" | "db" => {
                let v = percent_decode(v);
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(bad(&format!("`{k}` must be letters, digits or _")));
                }
                if k == "ns" {
                    ns = v;
                } else {
                    db = v;
                }
            }
            _ => passthrough.push(pair),
        }
    }
    let with_query = |endpoint: String| {
        if passthrough.is_empty() {
            endpoint
        } else {
            format!("{endpoint}?{}", passthrough.join("&"))
        }
    };
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://… (mem://, surrealkv://path, ws://host:port)"))?;
    let target = |endpoint, engine, user, pass| Target {
        endpoint,
        engine,
        user,
        pass,
        ns: ns.clone(),
        db: db.clone(),
    };
    match scheme {
        "mem" | "memory" => {
            if !rest.is_empty() {
                return Err(bad("mem:// takes no path"));
            }
            Ok(target(with_query("mem://".into()), Engine::Memory, None, None))
        }
        "surrealkv" | "rocksdb" => {
            if rest.is_empty() {
                return Err(bad("missing the database folder, e.g. surrealkv://data/clinicflow.db"));
            }
            if scheme == "rocksdb" && !cfg!(feature = "rocksdb") {
                return Err(bad(
                    "this build has no RocksDB support; rebuild with `--features rocksdb` or use surrealkv://",
                ));
            }
            Ok(target(
                with_query(format!("{scheme}://{rest}")),
                Engine::File(rest.to_string()),
                None,
                None,
            ))
        }
        "ws" | "wss" => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let (userinfo, host) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(bad("missing host, e.g. ws://127.0.0.1:8000"));
            }
            let (user, pass) = match userinfo {
                Some(u) => match u.split_once(':') {
                    Some((user, pass)) => (Some(percent_decode(user)), Some(percent_decode(pass))),
                    None => (Some(percent_decode(u)), env_pass),
                },
                None => (env_user, env_pass),
            };
            if user.is_some() != pass.is_some() {
                return Err(bad("give both a user and a password (or neither)"));
            }
            Ok(target(
                with_query(format!("{scheme}://{host}{path}")),
                Engine::Remote,
                user,
                pass,
            ))
        }
        "http" | "https" => Err(bad("the HTTP protocol is not enabled; use ws:// or wss://")),
        _ => Err(bad(
            "unknown scheme; use mem://, surrealkv://, rocksdb://, ws:// or wss://",
        )),
    }
}

/// How long start-up waits for a SurrealDB server that is itself starting (connection
/// refused, 503 from its HTTP layer): replicas and the server start together in compose/k8s.
pub(crate) const START_WAIT: Duration = Duration::from_secs(30);

/// Connects ([`open_once`]), retrying for up to `wait` while a server refuses the connection
/// or answers 503 (still starting). Other failures, and every embedded engine, fail at once.
pub(crate) async fn open(url: &str, wait: Duration) -> Result<Surreal<Any>, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(100);
    loop {
        match open_once(url).await {
            Err(StoreError::Connect(msg)) if starting(&msg) && tokio::time::Instant::now() + delay < deadline => {
                tracing::info!(url = %redact(url), "the database server is not ready yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Whether a connection error means "a server that is starting": nothing listens yet, or
/// it answers 503.
pub(crate) fn starting(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    ["connection refused", "503", "service unavailable", "connection reset"]
        .iter()
        .any(|s| msg.contains(s))
}

/// Connects, signs in when credentials are known, and selects the namespace and database.
async fn open_once(url: &str) -> Result<Surreal<Any>, StoreError> {
    let target = parse(
        url,
        std::env::var("SURREAL_USER").ok(),
        std::env::var("SURREAL_PASS").ok(),
    )?;
    if let Engine::File(path) = &target.engine
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Connect(format!("cannot create folder {}: {e}", parent.display())))?;
    }
    let connecting = surrealdb::engine::any::connect(target.endpoint.clone());
    // Only a server can fail to answer; opening a large embedded database legitimately takes
    // its time.
    let connected = if target.engine == Engine::Remote {
        tokio::time::timeout(CONNECT_TIMEOUT, connecting).await.map_err(|_| {
            StoreError::Connect(format!(
                "{} did not answer within {}s",
                redact(url),
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
    } else {
        connecting.await
    };
    let db = connected.map_err(|e| StoreError::Connect(format!("{}: {}", redact(url), e.message())))?;
    if let (Some(username), Some(password)) = (target.user.clone(), target.pass.clone()) {
        db.signin(Root { username, password })
            .await
            .map_err(|e| StoreError::Connect(format!("sign-in failed: {}", e.message())))?;
    }
    // Servers may run in strict mode, where a namespace or database must exist before use.
    // The names were validated as identifiers in `parse`, so formatting them in is safe.
    if target.engine == Engine::Remote {
        let define = |sql: String| {
            let db = db.clone();
            async move {
                db.query(sql)
                    .await
                    .and_then(|r| r.check())
                    .map(|_| ())
                    .map_err(|e| StoreError::Connect(e.message().to_string()))
            }
        };
        define(format!("DEFINE NAMESPACE IF NOT EXISTS {}", target.ns)).await?;
        db.use_ns(target.ns.clone())
            .await
            .map_err(|e| StoreError::Connect(e.message().to_string()))?;
        define(format!("DEFINE DATABASE IF NOT EXISTS {}", target.db)).await?;
    }
    db.use_ns(target.ns.clone())
        .use_db(target.db.clone())
        .await
        .map_err(|e| StoreError::Connect(e.message().to_string()))?;
    tracing::debug!(url = %redact(url), ns = %target.ns, db = %target.db, "database connected");
    Ok(db)
}

/// The URL without its password, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let after = &rest[userinfo.len()..];
            format!("{scheme}://{user}:***{after}")
        }
        None => url.to_string(),
    }
}

/// Enough of RFC 3986 percent-decoding for credentials and names in a URL.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_server_is_told_from_other_failures() {
        assert!(starting("ws://x: IO error: Connection refused (os error 111)"));
        assert!(starting("HTTP error: 503 Service Unavailable"));
        assert!(!starting("sign-in failed: There was a problem with authentication"));
        assert!(!starting("ws://x did not answer within 15s"));
    }

    /// Nothing listens: retried for the bounded wait, then the connection error.
    #[tokio::test]
    async fn a_refused_connection_is_retried_for_a_bounded_time() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("ws://root:root@127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let wait = Duration::from_millis(700);
        let err = open(&url, wait).await.expect_err("nothing listens");
        assert!(matches!(&err, StoreError::Connect(m) if starting(m)), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < wait + CONNECT_TIMEOUT,
            "{took:?}"
        );
    }

    fn p(url: &str) -> Target {
        match parse(url, None, None) {
            Ok(t) => t,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn local_urls() {
        let t = p("mem://");
        assert_eq!(
            (t.endpoint.as_str(), t.ns.as_str(), t.db.as_str()),
            ("mem://", "clinicflow", "main")
        );
        let t = p("surrealkv://data/clinicflow.db?ns=clinic_a&db=prod");
        assert_eq!(t.endpoint, "surrealkv://data/clinicflow.db");
        assert_eq!(t.engine, Engine::File("data/clinicflow.db".into()));
        assert_eq!((t.ns.as_str(), t.db.as_str()), ("clinic_a", "prod"));
        let t = p("surrealkv:///var/lib/cf?versioned=true");
        assert_eq!(t.endpoint, "surrealkv:///var/lib/cf?versioned=true");
    }

    #[test]
    fn remote_urls_take_credentials_from_the_url_or_the_environment() {
        let t = p("ws://root:s%40cret@127.0.0.1:8000?ns=x");
        assert_eq!(t.endpoint, "ws://127.0.0.1:8000");
        assert_eq!((t.user.as_deref(), t.pass.as_deref()), (Some("root"), Some("s@cret")));
        assert_eq!((t.ns.as_str(), t.db.as_str()), ("x", "main"));
        assert_eq!(t.engine, Engine::Remote);
        let t = parse("wss://db.example.com/rpc", Some("u".into()), Some("p".into())).unwrap();
        assert_eq!(t.endpoint, "wss://db.example.com/rpc");
        assert_eq!((t.user.as_deref(), t.pass.as_deref()), (Some("u"), Some("p")));
        let t = p("ws://localhost:8000");
        assert_eq!((t.user, t.pass), (None, None));
    }

    #[test]
    fn bad_urls_are_explained() {
        for url in [
            "",
            "postgres://x",
            "mem://x",
            "surrealkv://",
            "ws://",
            "http://h:1",
            "ws://h?ns=a-b",
        ] {
            assert!(
                matches!(parse(url, None, None), Err(StoreError::BadUrl { .. })),
                "{url}"
            );
        }
        let rocks = parse("rocksdb://data/db", None, None);
        if cfg!(feature = "rocksdb") {
            assert!(rocks.is_ok());
        } else {
            let msg = rocks.unwrap_err().to_string();
            assert!(msg.contains("--features rocksdb"), "{msg}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("ws://root:hunter2@h:8000/rpc"), "ws://root:***@h:8000/rpc");
        let err = parse("ws://root:hunter2@/x", None, None).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error_without_the_password() {
        let err = super::super::Store::connect_waiting("ws://root:pw@127.0.0.1:9", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Connect(_)), "{err}");
        assert!(err.to_string().contains("root:***@127.0.0.1:9"), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
