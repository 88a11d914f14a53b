//! `clinicflow serve` as an operator runs it: refusals at start, and a clean stop on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{bin, demo_copy, root};

fn serve(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .args(args)
        .env_remove("CLINICFLOW_API_KEYS")
        .env_remove("CLINICFLOW_ADDR")
        .env_remove("CLINICFLOW_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn serve_refuses_a_public_address_without_keys() {
    let dir = root().display().to_string();
    let out = serve(&["--dir", &dir, "--db", "mem://", "--addr", "0.0.0.0:0"])
        .output()
        .await
        .expect("run serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refusing") && err.contains("CLINICFLOW_API_KEYS"), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_misspelt_role_or_limit_without_showing_the_key() {
    let dir = root().display().to_string();
    for (var, value, says) in [
        (
            "CLINICFLOW_API_KEYS",
            "staf:0123456789abcdef-secret",
            "unknown role `staf`",
        ),
        ("CLINICFLOW_LIMIT_SENDER", "20 per minute", "CLINICFLOW_LIMIT_SENDER"),
    ] {
        let out = serve(&["--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
            .env(var, value)
            .output()
            .await
            .expect("run serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(says) && !err.contains("0123456789abcdef-secret"), "{err}");
    }
}

#[tokio::test]
async fn serve_refuses_flows_that_do_not_compile_and_says_where() {
    let tmp = demo_copy();
    let flow = tmp.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(&flow, src.replacen("flow: faq_hours", "flow: faq_hours\n  oops: [", 1)).expect("write");
    let dir = tmp.path().display().to_string();
    let out = serve(&["--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
        .output()
        .await
        .expect("run serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("flows/faq_hours.yaml:"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_with_keys_and_stops_cleanly_on_sigterm() {
    let dir = root().display().to_string();
    let mut child = serve(&["--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
        .env("CLINICFLOW_API_KEYS", "secret-1")
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // "clinicflow: N flows from DIR, serving http://127.0.0.1:PORT (…)"
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("serving ").nth(1) {
                return rest.split_whitespace().next().map(String::from);
            }
        }
        None
    })
    .await
    .expect("serve starts within 60 s")
    .expect("a `serving` line");

    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(http.get(format!("{base}/healthz")).send().await.expect("healthz")),
        200
    );
    assert_eq!(
        status(http.get(format!("{base}/v1/flows")).send().await.expect("flows")),
        401
    );
    let flows = http
        .get(format!("{base}/v1/flows"))
        .bearer_auth("secret-1")
        .send()
        .await
        .expect("flows");
    assert_eq!(status(flows), 200);

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve stops within 30 s")
        .expect("wait");
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(exit.success(), "{exit:?}\n{rest}");
    assert!(rest.contains("stopped"), "{rest}");
}
