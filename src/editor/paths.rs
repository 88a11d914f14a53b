//! Which files the editor may open: exactly the ones `Sources::from_dir` compiles
//! (flows/**/*.yaml|yml, prompts/**/*.j2, schemas/**/*.json), named by a plain relative path.
//! Anything else (`..`, an absolute path, a hidden file, another folder or extension, odd
//! characters) is refused before the file system is touched.

use std::fmt;
use std::path::{Path, PathBuf};

/// The longest path accepted.
const MAX_LEN: usize = 200;

/// A validated path of one of the clinic's files, relative to the bot folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BotPath(String);

/// The folder a file belongs to, which decides how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// flows/*.yaml: flows, clinic.yaml, global.yaml, intents.yaml.
    Flow,
    /// prompts/**/*.j2: reply templates, the NLU and phrasing prompts.
    Prompt,
    /// schemas/*.json: slot schemas and the editor schema.
    Schema,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty or too long")]
    Length,
    #[error("only plain names separated by `/` (letters, digits, `-`, `_`, `.`): no `..`, no hidden files")]
    Name,
    #[error("only files in flows/ (.yaml), prompts/ (.j2) and schemas/ (.json) can be edited")]
    Place,
}

impl BotPath {
    pub fn parse(raw: &str) -> Result<BotPath, PathError> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(PathError::Length);
        }
        let parts: Vec<&str> = raw.split('/').collect();
        let plain = |p: &str| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !parts.iter().all(|p| plain(p)) {
            return Err(PathError::Name);
        }
        if parts.len() < 2 {
            return Err(PathError::Place);
        }
        let name = parts[parts.len() - 1];
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let fits = match parts[0] {
            "flows" => matches!(ext, "yaml" | "yml"),
            "prompts" => ext == "j2",
            "schemas" => ext == "json",
            _ => false,
        };
        if !fits {
            return Err(PathError::Place);
        }
        Ok(BotPath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> FileKind {
        match self.0.split('/').next() {
            Some("flows") => FileKind::Flow,
            Some("prompts") => FileKind::Prompt,
            _ => FileKind::Schema,
        }
    }

    /// Where the file is under `dir`.
    pub fn under(&self, dir: &Path) -> PathBuf {
        self.0.split('/').fold(dir.to_path_buf(), |p, part| p.join(part))
    }
}

impl fmt::Display for BotPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every editable file under `dir` (regular files only, no symbolic links), sorted.
pub fn list(dir: &Path) -> std::io::Result<Vec<BotPath>> {
    let mut out = Vec::new();
    for sub in ["flows", "prompts", "schemas"] {
        walk(dir, &dir.join(sub), &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<BotPath>) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if let Ok(p) = BotPath::parse(&rel.join("/")) {
                out.push(p);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BotPath, FileKind, PathError};

    #[test]
    fn only_the_clinics_own_files_are_accepted() {
        for ok in [
            "flows/clinic.yaml",
            "flows/book_appointment.yaml",
            "prompts/es/greeting.j2",
            "prompts/nlu.j2",
            "schemas/date.json",
        ] {
            assert!(BotPath::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            BotPath::parse("prompts/es/greeting.j2").map(|p| p.kind()),
            Ok(FileKind::Prompt)
        );
        let refused = [
            ("", PathError::Length),
            ("../etc/passwd", PathError::Name),
            ("flows/../../etc/passwd", PathError::Name),
            ("/etc/passwd", PathError::Name),
            ("flows//clinic.yaml", PathError::Name),
            ("flows/.hidden.yaml", PathError::Name),
            ("flows\\clinic.yaml", PathError::Name),
            ("flows/clinic yaml.yaml", PathError::Name),
            ("flows/clinic.j2", PathError::Place),
            ("prompts/es/greeting.txt", PathError::Place),
            ("Cargo.toml", PathError::Place),
            ("src/main.rs", PathError::Place),
            ("tests/fixtures/base/flows/x.yaml", PathError::Place),
            ("flows", PathError::Place),
        ];
        for (bad, why) in refused {
            assert_eq!(BotPath::parse(bad), Err(why), "{bad}");
        }
        assert!(BotPath::parse(&format!("flows/{}.yaml", "a".repeat(300))).is_err());
    }
}
