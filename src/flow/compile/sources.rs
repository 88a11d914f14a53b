//! The files of a bot folder, read into memory once, keyed by their path relative to the
//! folder (`flows/book.yaml`, `prompts/es/greeting.j2`, `schemas/date.json`).
//! Compiling from memory lets tests and reload use the same code as the CLI.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: BTreeMap<String, String>,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads flows/*.yaml, prompts/**/*.j2 and schemas/*.json under `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<Sources> {
        let mut s = Sources::new();
        let flows = dir.join("flows");
        if !flows.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} has no flows/ folder (is --dir pointing at the bot folder?)",
                    dir.display()
                ),
            ));
        }
        for (sub, ext) in [("flows", "yaml"), ("prompts", "j2"), ("schemas", "json")] {
            s.read_tree(dir, &dir.join(sub), ext)?;
        }
        Ok(s)
    }

    /// Adds (or replaces) the files under `dir`, as if it were laid over this folder.
    /// Used by tests to express a broken bot as "the base bot plus these files".
    pub fn overlay_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        for (sub, ext) in [("flows", "yaml"), ("prompts", "j2"), ("schemas", "json")] {
            self.read_tree(dir, &dir.join(sub), ext)?;
        }
        Ok(())
    }

    fn read_tree(&mut self, root: &Path, dir: &Path, ext: &str) -> std::io::Result<()> {
        if !dir.is_dir() {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                self.read_tree(root, &path, ext)?;
            } else if path
                .extension()
                .is_some_and(|e| e == ext || (ext == "yaml" && e == "yml"))
            {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = std::fs::read_to_string(&path)?;
                self.files.insert(rel, text);
            }
        }
        Ok(())
    }

    pub fn insert(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }

    pub fn remove(&mut self, path: &str) {
        self.files.remove(path);
    }

    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    pub fn text(&self, path: &str) -> &str {
        self.files.get(path).map(String::as_str).unwrap_or("")
    }

    /// A hash of every path and text: equal fingerprints mean there is nothing new to compile.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.files.hash(&mut h);
        h.finish()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn under<'a>(&'a self, prefix: &'a str, ext: &'a [&'a str]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.files
            .iter()
            .filter(move |(p, _)| p.starts_with(prefix) && ext.iter().any(|e| p.ends_with(e)))
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }

    pub fn yaml_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.under("flows/", &[".yaml", ".yml"])
    }

    pub fn prompt_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.under("prompts/", &[".j2"])
    }

    pub fn schema_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.under("schemas/", &[".json"])
    }

    /// Template file names as a flow refers to them (`greeting.j2`).
    pub fn prompt_names(&self) -> Vec<String> {
        self.prompt_files()
            .filter_map(|(p, _)| p.rsplit('/').next().map(str::to_string))
            .collect()
    }
}
