//! Which clinics a bot folder holds. A folder may hold one clinic at its top (`flows/`,
//! `prompts/`, `schemas/`: the layout every single-clinic installation has, unchanged), many
//! under `clinics/<slug>/` with the same three folders each, or both. The clinic at the top is
//! `main` and keeps the database it always had (`main`); a clinic under `clinics/` gets a
//! database of its own named after its slug, so no query of one clinic can reach another's rows.

use std::fmt;
use std::path::{Path, PathBuf};

/// The slug of the clinic at the top of the folder, and the database it has always used.
pub const MAIN: &str = "main";

/// The folder under `--dir` that holds one folder per clinic.
pub const CLINICS: &str = "clinics";

/// Longest slug: it names a folder, a database and appears in URLs.
const MAX_SLUG: usize = 40;

/// A clinic's short name: lowercase letters, digits and `-`, starting with a letter or digit,
/// up to 40 characters. It is the folder name under `clinics/`, the `{clinic}` of
/// `/v1/clinics/{clinic}/…`, the `clinic` label of metrics and (with `-` as `_`) the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Checks `s`; the error says in plain words what a slug may hold.
    pub fn parse(s: &str) -> Result<Slug, SlugError> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if s.is_empty() || s.len() > MAX_SLUG || !s.chars().all(ok_char) || s.starts_with('-') || s.ends_with('-') {
            return Err(SlugError::Invalid(s.chars().take(60).collect()));
        }
        Ok(Slug(s.to_string()))
    }

    /// The clinic at the top of the folder.
    pub fn main() -> Slug {
        Slug(MAIN.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_main(&self) -> bool {
        self.0 == MAIN
    }

    /// The clinic's folder from the top of `--dir`: "" for `main`, `clinics/<slug>` otherwise.
    /// Problems name files from there (`clinics/harbor-dental/flows/clinic.yaml`).
    pub fn folder(&self) -> String {
        if self.is_main() {
            String::new()
        } else {
            format!("{CLINICS}/{}", self.0)
        }
    }

    /// The SurrealDB database of this clinic (in the URL's namespace): `main` for the clinic at
    /// the top (today's database, so an upgrade keeps its data), the slug with `_` for `-`
    /// otherwise. Slugs have no `_`, so two slugs never share a database.
    pub fn database(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Slug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slug::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error(
        "`{0}` cannot name a clinic: use 1 to 40 lowercase letters, digits and `-` (not at the \
         start or end), e.g. `dental-norte`"
    )]
    Invalid(String),
}

/// One clinic of a bot folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicDir {
    pub slug: Slug,
    /// The folder holding its flows/, prompts/ and schemas/ (and tests/ of its own).
    pub path: PathBuf,
}

impl ClinicDir {
    /// Compiles the clinic; its problems name its files from the top of `--dir`.
    pub fn compile(&self) -> Result<crate::flow::bot::Bot, crate::flow::diag::Diagnostics> {
        crate::flow::compile::compile_dir(&self.path).map_err(|mut d| {
            d.in_folder(&self.slug.folder());
            d
        })
    }
}

/// A folder under `clinics/` that cannot be a clinic, and why (reported, never fatal for the
/// other clinics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutProblem {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The clinics of `dir`, `main` first (when `dir/flows` exists), then `clinics/*` by slug; and
/// the folders under `clinics/` that are not clinics. Hidden folders (`.git`, an editor's
/// `.tmp`) are skipped silently.
pub fn discover(dir: &Path) -> (Vec<ClinicDir>, Vec<LayoutProblem>) {
    let mut clinics = Vec::new();
    let mut problems = Vec::new();
    if dir.join("flows").is_dir() {
        clinics.push(ClinicDir {
            slug: Slug::main(),
            path: dir.to_path_buf(),
        });
    }
    let root = dir.join(CLINICS);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return (clinics, problems);
    };
    let mut found: Vec<ClinicDir> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        match Slug::parse(&name) {
            Ok(slug) if slug.is_main() => problems.push(LayoutProblem {
                path,
                message: format!(
                    "`{MAIN}` is the name of the clinic at the top of the folder (its flows/); \
                     rename this folder"
                ),
            }),
            Ok(_) if !path.join("flows").is_dir() => problems.push(LayoutProblem {
                path,
                message: "this clinic has no flows/ folder; add flows/clinic.yaml (or run \
                          `clinicflow init <slug>`)"
                    .into(),
            }),
            Ok(slug) => found.push(ClinicDir { slug, path }),
            Err(e) => problems.push(LayoutProblem {
                path,
                message: e.to_string(),
            }),
        }
    }
    found.sort_by(|a, b| a.slug.cmp(&b.slug));
    clinics.extend(found);
    (clinics, problems)
}

/// The clinic a command works on: `--clinic <slug>` when given, else the only clinic, else
/// `main`. The error lists the clinics there are.
pub fn select(dir: &Path, clinic: Option<&str>) -> Result<ClinicDir, String> {
    let (clinics, _) = discover(dir);
    let names = || clinics.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>().join(", ");
    match clinic {
        Some(want) => clinics
            .iter()
            .find(|c| c.slug.as_str() == want)
            .cloned()
            .ok_or_else(|| {
                if clinics.is_empty() {
                    format!(
                        "{} holds no clinic (no flows/ and no clinics/<slug>/flows/)",
                        dir.display()
                    )
                } else {
                    format!(
                        "there is no clinic `{want}` in {}; the clinics are: {}",
                        dir.display(),
                        names()
                    )
                }
            }),
        None => match clinics.as_slice() {
            // No clinic at all: today's behaviour (compile `dir` and report what is missing).
            [] => Ok(ClinicDir {
                slug: Slug::main(),
                path: dir.to_path_buf(),
            }),
            [only] => Ok(only.clone()),
            many => many.iter().find(|c| c.slug.is_main()).cloned().ok_or_else(|| {
                format!(
                    "{} holds several clinics; say which with --clinic <slug>: {}",
                    dir.display(),
                    names()
                )
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic(root: &Path, rel: &str) {
        std::fs::create_dir_all(root.join(rel).join("flows")).unwrap();
    }

    #[test]
    fn slugs_are_tame() {
        for ok in ["main", "dental-norte", "c1", "a"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Dental", "a_b", "-a", "a-", "á", "a b", &"x".repeat(41), "../x"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Slug::parse("dental-norte").unwrap().database(), "dental_norte");
        assert_eq!(Slug::main().database(), "main");
    }

    #[test]
    fn one_clinic_at_the_top_is_main() {
        let dir = tempfile::tempdir().unwrap();
        clinic(dir.path(), "");
        let (clinics, problems) = discover(dir.path());
        assert_eq!(clinics.len(), 1);
        assert!(clinics[0].slug.is_main());
        assert!(problems.is_empty());
        assert_eq!(select(dir.path(), None).unwrap().path, dir.path());
    }

    #[test]
    fn many_clinics_sorted_with_problems_reported_apart() {
        let dir = tempfile::tempdir().unwrap();
        clinic(dir.path(), "");
        clinic(dir.path(), "clinics/zeta");
        clinic(dir.path(), "clinics/alfa");
        clinic(dir.path(), "clinics/Bad_Name");
        clinic(dir.path(), "clinics/main");
        std::fs::create_dir_all(dir.path().join("clinics/empty")).unwrap();
        std::fs::create_dir_all(dir.path().join("clinics/.hidden/flows")).unwrap();
        let (clinics, problems) = discover(dir.path());
        let slugs: Vec<&str> = clinics.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(slugs, ["main", "alfa", "zeta"]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.message.contains("no flows/")));
        // Several clinics: main unless another is named.
        assert!(select(dir.path(), None).unwrap().slug.is_main());
        assert_eq!(
            select(dir.path(), Some("zeta")).unwrap().path,
            dir.path().join("clinics/zeta")
        );
        let err = select(dir.path(), Some("nope")).unwrap_err();
        assert!(err.contains("main, alfa, zeta"), "{err}");
    }

    #[test]
    fn many_clinics_without_main_need_a_name() {
        let dir = tempfile::tempdir().unwrap();
        clinic(dir.path(), "clinics/alfa");
        clinic(dir.path(), "clinics/beta");
        let err = select(dir.path(), None).unwrap_err();
        assert!(err.contains("--clinic"), "{err}");
        clinic(dir.path(), "clinics/../clinics/gamma");
        assert_eq!(discover(dir.path()).0.len(), 3);
    }
}
