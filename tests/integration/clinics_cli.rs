//! The commands on a folder of several clinics (docs/clinics.md): `check` of every clinic,
//! `test` of every clinic's conversations, `--clinic`, and `init`.

use std::path::Path;
use std::process::Command;

use crate::support::{bin, copy_tree, demo_copy, root, two_clinics};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run clinicflow");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn edit(path: &Path, from: &str, to: &str) {
    let src = std::fs::read_to_string(path).expect("read");
    assert!(src.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, src.replacen(from, to, 1)).expect("write");
}

#[test]
fn check_reports_a_broken_clinic_with_its_files_and_still_says_the_others_are_ok() {
    let tmp = two_clinics();
    let broken = tmp.path().join("clinics/broken");
    copy_tree(&root().join("clinics/harbor-dental/flows"), &broken.join("flows"));
    copy_tree(&root().join("clinics/harbor-dental/prompts"), &broken.join("prompts"));
    copy_tree(&root().join("clinics/harbor-dental/schemas"), &broken.join("schemas"));
    edit(
        &broken.join("flows/cancel_appointment.yaml"),
        "goto: lookup",
        "goto: lookpu",
    );
    std::fs::create_dir_all(tmp.path().join("clinics/Not_A_Slug/flows")).expect("mkdir");
    let dir = tmp.path().display().to_string();

    let (ok, out, _) = run(&["check", "--dir", &dir]);
    assert!(!ok, "a broken clinic fails the check:\n{out}");
    assert!(out.contains("main: ok: "), "{out}");
    assert!(out.contains("harbor-dental: ok: "), "{out}");
    assert!(
        regex::Regex::new(r"clinics/broken/flows/cancel_appointment\.yaml:\d+:\d+")
            .expect("re")
            .is_match(&out),
        "the broken clinic's file:line:column:\n{out}"
    );
    assert!(out.contains("unknown state `lookpu`"), "{out}");
    assert!(out.contains("broken: 1 problem(s) found"), "{out}");
    assert!(out.contains("not a clinic: clinics/Not_A_Slug"), "{out}");
    assert!(out.contains("3 clinic(s): 2 ok, 1 with problems"), "{out}");

    // One clinic at a time: the good ones pass, the broken one does not.
    let (ok, out, _) = run(&["check", "--dir", &dir, "--clinic", "harbor-dental"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("harbor-dental: ok: "), "{out}");
    let (ok, out, _) = run(&["check", "--dir", &dir, "--clinic", "main"]);
    assert!(ok && out.starts_with("ok: "), "{out}");
    let (ok, _, err) = run(&["check", "--dir", &dir, "--clinic", "nope"]);
    assert!(!ok);
    assert!(
        err.contains("no clinic `nope`") && err.contains("harbor-dental"),
        "{err}"
    );
}

#[test]
fn a_folder_with_one_clinic_checks_as_it_always_did() {
    let tmp = demo_copy();
    let (ok, out, _) = run(&["check", "--dir", &tmp.path().display().to_string()]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("ok: ") && out.contains("no problems found"), "{out}");
}

#[test]
fn test_runs_both_demo_clinics_conversations_with_a_line_each_and_a_total() {
    let dir = root().display().to_string();
    let (ok, out, err) = run(&["test", "--dir", &dir]);
    assert!(ok, "{out}{err}");
    let count = |label: &str| -> usize {
        let re = regex::Regex::new(&format!(r"(?m)^{label}: (\d+) passed, 0 failed$")).expect("re");
        re.captures(&out)
            .unwrap_or_else(|| panic!("no line for {label}:\n{out}"))[1]
            .parse()
            .expect("count")
    };
    let main = count("main");
    let harbor = count("harbor-dental");
    assert!(main >= 25 && harbor >= 8, "{out}");
    assert!(
        out.contains(&format!("total: {} passed, 0 failed in 2 clinics", main + harbor)),
        "{out}"
    );

    // --clinic runs that clinic's own conversations only.
    let (ok, out, err) = run(&["test", "--dir", &dir, "--clinic", "harbor-dental"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.lines().last(),
        Some(format!("harbor-dental: {harbor} passed, 0 failed").as_str()),
        "{out}"
    );
}

#[test]
fn chat_and_graph_take_the_clinic() {
    let dir = root().display().to_string();
    let out = Command::new(bin())
        .args(["chat", "--dir", &dir, "--clinic", "harbor-dental", "--db", "mem://"])
        .args(["--now", "2026-11-23T10:00"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"hello\n")?;
            child.wait_with_output()
        })
        .expect("chat");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.trim(),
        "bot> Good morning, Harbor Dental Care, how can I help you?"
    );

    // Harbor Dental's booking asks no coverage; San Rafael's does.
    let (ok, harbor, _) = run(&["graph", "book_appointment", "--dir", &dir, "--clinic", "harbor-dental"]);
    assert!(ok && harbor.starts_with("flowchart TD"), "{harbor}");
    let (ok, main, _) = run(&["graph", "book_appointment", "--dir", &dir]);
    assert!(ok);
    assert!(main.contains("coverage") && !harbor.contains("coverage"), "{harbor}");
}

#[test]
fn init_makes_a_clinic_that_checks_and_passes_its_tests_as_it_is() {
    let tmp = demo_copy();
    let dir = tmp.path().display().to_string();
    let (ok, out, err) = run(&["init", "dental-norte", "--dir", &dir]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("clinics/dental-norte/flows/clinic.yaml"),
        "what to edit: {out}"
    );
    assert!(out.contains("check --clinic dental-norte"), "{out}");
    let clinic = tmp.path().join("clinics/dental-norte");
    let yaml = std::fs::read_to_string(clinic.join("flows/clinic.yaml")).expect("clinic.yaml");
    assert!(yaml.contains("name: Dental Norte"), "{yaml}");
    // Nothing but the clinic itself is left in clinics/.
    assert_eq!(std::fs::read_dir(tmp.path().join("clinics")).expect("ls").count(), 1);

    let (ok, out, err) = run(&["check", "--dir", &dir, "--clinic", "dental-norte"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&["test", "--dir", &dir, "--clinic", "dental-norte"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().last(), Some("dental-norte: 4 passed, 0 failed"), "{out}");

    // The conversations hold for whatever name the admin gives the clinic.
    edit(
        &clinic.join("flows/clinic.yaml"),
        "name: Dental Norte",
        "name: Centro Médico Ñandú & Hijos",
    );
    let (ok, out, err) = run(&["test", "--dir", &dir, "--clinic", "dental-norte"]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run(&["check", "--dir", &dir]);
    assert!(ok && out.contains("2 clinic(s): 2 ok, 0 with problems"), "{out}");
}

#[test]
fn init_refuses_main_a_bad_name_and_an_existing_folder_in_plain_words() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().display().to_string();
    let (ok, _, err) = run(&["init", "main", "--dir", &dir]);
    assert!(
        !ok && err.contains("`main` is the name of the clinic at the top"),
        "{err}"
    );
    let (ok, _, err) = run(&["init", "Dental Norte", "--dir", &dir]);
    assert!(!ok && err.contains("lowercase letters, digits and `-`"), "{err}");
    let (ok, _, err) = run(&["init", "../escape", "--dir", &dir]);
    assert!(!ok && err.contains("cannot name a clinic"), "{err}");
    assert!(!tmp.path().join("clinics").exists(), "nothing written on a refusal");
    std::fs::create_dir_all(tmp.path().join("clinics/norte")).expect("mkdir");
    let (ok, _, err) = run(&["init", "norte", "--dir", &dir]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("clinics/norte")).expect("ls").count(),
        0
    );
}

/// The editor schema of Harbor Dental's flow files is the repository's (one schema, two copies).
#[test]
fn harbor_dental_has_the_same_editor_schema() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).expect(p);
    assert!(
        read("schemas/flow.schema.json") == read("clinics/harbor-dental/schemas/flow.schema.json"),
        "copy schemas/flow.schema.json to clinics/harbor-dental/schemas/"
    );
}
