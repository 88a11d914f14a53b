//! The `clinicflow` binary as an admin uses it: check, graph, chat, test.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{bin, demo_copy, root};

fn run(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn clinicflow");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_passes_on_the_demo() {
    let dir = root().display().to_string();
    let (ok, out, err) = run(&["check", "--dir", &dir], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn check_reports_every_error_of_a_broken_copy_at_once() {
    let tmp = demo_copy();
    let flows = tmp.path().join("flows");
    let edit = |file: &str, from: &str, to: &str| {
        let p = flows.join(file);
        let src = std::fs::read_to_string(&p).expect("read");
        assert!(src.contains(from), "{file} has no {from:?}");
        std::fs::write(&p, src.replacen(from, to, 1)).expect("write");
    };
    edit(
        "book_appointment.yaml",
        "if: result.available",
        "if: result.available &&",
    );
    edit("cancel_appointment.yaml", "goto: lookup", "goto: lookpu");
    edit("faq_hours.yaml", "flow: faq_hours", "flow: faq_hours\n  oops: 1");
    let dir = tmp.path().display().to_string();
    let (ok, out, _) = run(&["check", "--dir", &dir], None);
    assert!(!ok, "check must fail");
    for (file, what) in [
        ("flows/book_appointment.yaml:", "invalid expression"),
        ("flows/cancel_appointment.yaml:", "unknown state `lookpu`"),
        ("flows/faq_hours.yaml:", "not valid YAML"),
    ] {
        let line = out.lines().find(|l| l.contains(file)).unwrap_or_default();
        assert!(
            regex::Regex::new(&format!(r"{}\d+:\d+", regex::escape(file)))
                .expect("re")
                .is_match(&out),
            "no {file}LINE:COL in:\n{out}"
        );
        assert!(out.contains(what), "missing `{what}` (near {line}) in:\n{out}");
    }
    assert!(out.contains("3 problem(s) found"), "{out}");
}

#[test]
fn the_same_binary_picks_up_an_edited_copy() {
    let tmp = demo_copy();
    let greeting = tmp.path().join("prompts/es/greeting.j2");
    std::fs::write(&greeting, "Hola desde la copia editada, {{ clinic.name }}.\n").expect("write");
    let dir = tmp.path().display().to_string();
    let (ok, out, err) = run(
        &["chat", "--dir", &dir, "--db", "mem://", "--now", "2026-11-23T10:00"],
        Some("hola\n"),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("bot> Hola desde la copia editada, Clínica San Rafael."),
        "{out}"
    );
}

#[test]
fn chat_reads_lines_and_prefixes_replies() {
    let dir = root().display().to_string();
    let input = "hola\nquiero un turno con cardiología\n";
    let (ok, out, err) = run(
        &["chat", "--dir", &dir, "--db", "mem://", "--now", "2026-11-23T10:00"],
        Some(input),
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("bot> ")), "{out}");
    assert!(out.contains("Clínica San Rafael"), "{out}");
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let dir = root().display().to_string();
    let (ok, out, _) = run(&["graph", "book_appointment", "--dir", &dir], None);
    assert!(ok);
    assert!(out.starts_with("flowchart TD"), "{out}");
    assert!(
        out.contains("details") && out.contains("check") && out.contains("-->"),
        "{out}"
    );
    let (ok, out, _) = run(&["graph", "book_appointment", "--dir", &dir, "--format", "dot"], None);
    assert!(ok);
    assert!(out.starts_with("digraph"), "{out}");
    let (ok, out, _) = run(&["graph", "book_appointment", "--dir", &dir, "--format", "svg"], None);
    assert!(ok);
    assert!(out.starts_with("<svg") && out.contains("hay alternativas"), "{out}");
    let (ok, out, _) = run(&["graph", "book_appointment", "--dir", &dir, "--format", "html"], None);
    assert!(ok);
    assert!(
        out.starts_with("<!DOCTYPE html>") && !out.contains("<script"),
        "offline: {out}"
    );
    let (ok, _, err) = run(&["graph", "nope", "--dir", &dir], None);
    assert!(!ok);
    assert!(err.contains("book_appointment"), "lists the flows: {err}");
}

#[test]
fn test_command_ends_with_the_count_line() {
    let dir = root().display().to_string();
    let file = root()
        .join("tests/conversations/book_cardiologia.yaml")
        .display()
        .to_string();
    let (ok, out, err) = run(&["test", "--dir", &dir, &file], None);
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().last(), Some("1 passed, 0 failed"), "{out}");
}
