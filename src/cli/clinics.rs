//! Commands on a folder of several clinics (docs/clinics.md): `--clinic <slug>`, `check` of
//! every clinic, `test` of every clinic's scripted conversations. A folder holding one clinic
//! at its top (flows/, no clinics/) prints exactly what it always did.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::clinics::{ClinicDir, LayoutProblem, Slug, discover, select};
use crate::flow::bot::Bot;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClinicArg {
    /// The clinic to work on: `main` is the one at the top of --dir, any other is
    /// clinics/<slug>/ (default: main, or the only clinic there is).
    #[arg(long, value_name = "SLUG")]
    pub clinic: Option<Slug>,
}

impl ClinicArg {
    fn as_deref(&self) -> Option<&str> {
        self.clinic.as_ref().map(Slug::as_str)
    }
}

/// The clinic a command works on, or the reason there is none (printed).
pub fn pick(dir: &Path, clinic: &ClinicArg) -> Option<ClinicDir> {
    match select(dir, clinic.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

/// [`super::load`] for the clinic `--clinic` names: the bot, or every problem printed.
pub fn load(dir: &Path, clinic: &ClinicArg) -> Option<(ClinicDir, Bot)> {
    let c = pick(dir, clinic)?;
    match c.compile() {
        Ok(bot) => Some((c, bot)),
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

fn shown(dir: &Path, p: &LayoutProblem) -> String {
    let path = p.path.strip_prefix(dir).unwrap_or(&p.path);
    format!("{}: {}", path.display(), p.message)
}

/// One line per clinic: `ok: …` or its problems then `N problem(s) found`.
fn check_one(clinic: &ClinicDir, label: &str) -> bool {
    match clinic.compile() {
        Ok(bot) => {
            let states: usize = bot.flows.iter().map(|f| f.states.len()).sum();
            println!(
                "{label}ok: {} flows, {} states, {} intents, {} files: no problems found",
                bot.flows.len(),
                states,
                bot.intents.len(),
                bot.files
            );
            true
        }
        Err(diags) => {
            print!("{}", diags.render());
            println!("{label}{} problem(s) found", diags.len());
            false
        }
    }
}

/// `check`: the clinic `--clinic` names, or every clinic of the folder (the others are still
/// checked when one fails) and the folders under clinics/ that cannot be clinics.
pub fn check(dir: &Path, clinic: &ClinicArg) -> ExitCode {
    if clinic.clinic.is_some() {
        let Some(c) = pick(dir, clinic) else {
            return ExitCode::FAILURE;
        };
        let label = if c.slug.is_main() {
            String::new()
        } else {
            format!("{}: ", c.slug)
        };
        return exit(check_one(&c, &label));
    }
    let (clinics, problems) = discover(dir);
    if problems.is_empty() && clinics.len() <= 1 {
        // One clinic (or none: compiling says what is missing): today's output.
        let c = clinics.into_iter().next().unwrap_or(ClinicDir {
            slug: Slug::main(),
            path: dir.to_path_buf(),
        });
        return exit(check_one(&c, ""));
    }
    let mut failed = 0;
    for c in &clinics {
        if !check_one(c, &format!("{}: ", c.slug)) {
            failed += 1;
        }
    }
    for p in &problems {
        println!("not a clinic: {}", shown(dir, p));
    }
    println!(
        "{} clinic(s): {} ok, {} with problems{}",
        clinics.len(),
        clinics.len() - failed,
        failed,
        if problems.is_empty() {
            String::new()
        } else {
            format!(", {} folder(s) under clinics/ that are not clinics", problems.len())
        }
    );
    exit(failed == 0 && problems.is_empty())
}

/// `test`: the given files against the clinic `--clinic` names (main by default); without
/// files, that clinic's tests/conversations, or every clinic's when `--clinic` is not given.
pub async fn test(dir: &Path, clinic: &ClinicArg, files: Vec<PathBuf>, verbose: bool) -> anyhow::Result<ExitCode> {
    let (clinics, _) = discover(dir);
    let several = clinics.len() > 1 && clinic.clinic.is_none() && files.is_empty();
    if !several {
        let Some((c, bot)) = load(dir, clinic) else {
            return Ok(ExitCode::FAILURE);
        };
        let files = if files.is_empty() {
            super::runner::default_files(&c.path)?
        } else {
            files
        };
        let label = (!c.slug.is_main()).then(|| c.slug.to_string());
        let report = super::runner::run_files_of(Arc::new(bot), &files, verbose, label.as_deref()).await;
        return Ok(exit(report.failed == 0 && report.passed > 0));
    }
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for c in &clinics {
        let bot = match c.compile() {
            Ok(b) => b,
            Err(diags) => {
                print!("{}", diags.render());
                println!(
                    "{}: does not compile ({} problem(s)): no conversation run",
                    c.slug,
                    diags.len()
                );
                broken += 1;
                continue;
            }
        };
        let files = match super::runner::default_files(&c.path) {
            Ok(f) if !f.is_empty() => f,
            _ => {
                println!("{}: no scripted conversations (tests/conversations/*.yaml)", c.slug);
                continue;
            }
        };
        let report = super::runner::run_files_of(Arc::new(bot), &files, verbose, Some(c.slug.as_str())).await;
        passed += report.passed;
        failed += report.failed;
    }
    let mut total = format!("total: {passed} passed, {failed} failed in {} clinics", clinics.len());
    if broken > 0 {
        total.push_str(&format!(" ({broken} did not compile)"));
    }
    println!("{total}");
    Ok(exit(failed == 0 && broken == 0 && passed > 0))
}

fn exit(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
