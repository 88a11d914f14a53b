//! Every `tests/fixtures/err_*` folder is the small base bot with some files replaced by
//! broken ones; the rendered diagnostics (file:line:column, excerpt, help) are snapshots.

use clinicflow::flow::compile::{Sources, compile};

use crate::support::fixtures;

fn diagnose(name: &str) -> clinicflow::flow::diag::Diagnostics {
    let mut sources = Sources::from_dir(&fixtures().join("base")).expect("base fixture");
    sources.overlay_dir(&fixtures().join(name)).expect("fixture");
    match compile(&sources) {
        Ok(_) => panic!("{name} should not compile"),
        Err(d) => d,
    }
}

#[test]
fn base_fixture_compiles() {
    let sources = Sources::from_dir(&fixtures().join("base")).expect("base fixture");
    if let Err(d) = compile(&sources) {
        panic!("{}", d.render());
    }
}

#[test]
fn every_error_fixture_matches_its_snapshot() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("err_"))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "only {} err_* fixtures", names.len());
    for name in names {
        let d = diagnose(&name);
        assert!(!d.is_empty());
        for one in &d.0 {
            assert!(one.line >= 1 && one.col >= 1, "{name}: {}", one.one_line());
        }
        let text = format!("{}\n---\n{}", d, d.render());
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn errors_point_at_the_right_place() {
    let cases = [
        ("err_unknown_state", "flows/book.yaml:10:11", "unknown state `chek`"),
        ("err_unknown_key", "flows/book.yaml:9:5", "unknown key `colect`"),
        ("err_unknown_slot", "flows/book.yaml:9:15", "unknown slot `especialty`"),
        (
            "err_unknown_action",
            "flows/book.yaml:12:13",
            "unknown action `find_availabilty`",
        ),
        (
            "err_unknown_intent",
            "flows/book.yaml:3:11",
            "unknown intent `book_apointment`",
        ),
        ("err_unreachable_state", "flows/book.yaml:28:3", "never reached"),
        ("err_duplicate_state", "flows/book.yaml:20:3", "twice"),
    ];
    for (name, at, msg) in cases {
        let d = diagnose(name);
        let lines: Vec<String> = d.0.iter().map(|x| x.one_line()).collect();
        assert!(
            lines.iter().any(|l| l.starts_with(at) && l.contains(msg)),
            "{name}: expected `{at}: …{msg}…` in {lines:#?}"
        );
    }
}

#[test]
fn did_you_mean_suggestions() {
    let d = diagnose("err_unknown_key");
    let help = d.0[0].help.clone().unwrap_or_default();
    assert!(help.contains("did you mean `collect`?"), "{help}");
    let d = diagnose("err_unknown_state");
    assert!(d.0[0].help.clone().unwrap_or_default().contains("`check`"));
}

#[test]
fn all_errors_are_reported_at_once() {
    let d = diagnose("err_many");
    let lines: Vec<String> = d.0.iter().map(|x| x.one_line()).collect();
    let files: std::collections::BTreeSet<&str> = d.0.iter().map(|x| x.file.as_str()).collect();
    assert!(d.len() >= 4, "{lines:#?}");
    assert!(files.len() >= 3, "errors from several files: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("not valid YAML")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("unknown intent `humano`")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("invalid expression")), "{lines:#?}");
}
