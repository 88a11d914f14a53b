//! Editing the clinic's files from the console: the one API the pages call (they never touch
//! the files or the version table themselves).
//!
//! `open` reads a file and its hash (and stores what was on disk as a version when the history
//! does not end with it, so there is always something to roll back to); `check` compiles the
//! whole clinic with the edit in memory; `save` refuses a stale base hash, checks, writes
//! atomically (temporary file + rename), records the version and reloads now, returning the
//! reloader's report; `history`, `diff` and `rollback` (a save of an earlier content, through
//! the same check) work on the versions stored in SurrealDB.

mod check;
mod diff;
mod paths;

use std::io::Write;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use check::EDITOR_SCHEMA;
pub use diff::{Diff, DiffLine, Hunk, LineTag};
pub use paths::{BotPath, FileKind, PathError};

use crate::flow::compile::Sources;
use crate::flow::diag::Diagnostics;
use crate::reload::{ReloadReport, Reloader};
use crate::store::{FileVersion, NewFileVersion, Store, StoreError, VersionKind};

/// The largest file the editor writes (the demo's largest is under 10 KiB).
pub const MAX_FILE: usize = 256 * 1024;
/// The longest note kept with a version.
pub const MAX_NOTE: usize = 500;
/// Versions listed in a history.
const HISTORY: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    BadPath(#[from] PathError),
    #[error("there is no file {0} in the clinic's folder")]
    NotFound(String),
    #[error("a file can hold at most {MAX_FILE} bytes")]
    TooLarge,
    /// Someone saved the file since this edit was opened.
    #[error("the file changed since it was opened")]
    Stale,
    /// The edit does not compile: nothing was written.
    #[error("the edit has {} problem(s); nothing was written", .0.len())]
    Invalid(Diagnostics),
    #[error("version {0} of this file does not exist")]
    NoSuchVersion(u32),
    #[error("the file could not be read or written: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file as the editor shows it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub path: BotPath,
    pub content: String,
    /// SHA-256 of the content on disk: the base a save must match.
    pub hash: String,
    /// The newest stored version.
    pub version: u32,
}

/// A save to do.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    pub path: &'a str,
    pub content: &'a str,
    /// The hash of the version the edit was opened from.
    pub base: &'a str,
    pub author: &'a str,
    pub note: Option<&'a str>,
}

/// What a save did.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The version now on disk (the existing one when nothing changed).
    pub version: u32,
    /// False when the content was already the file's: nothing written, nothing recorded.
    pub changed: bool,
    /// The reload that followed (None when nothing changed); `ok` means the edit is live.
    pub report: Option<ReloadReport>,
    pub hash: String,
}

/// Which version a diff compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// What is on disk now.
    Current,
    /// The version before it.
    Previous,
}

pub fn hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Browsers send a textarea's lines ending in CRLF: files keep LF.
pub fn normalize(content: &str) -> String {
    content.replace("\r\n", "\n")
}

/// The editor of one clinic's folder (cheap: built per request from the app state).
#[derive(Clone)]
pub struct FileEditor {
    reloader: Arc<Reloader>,
    store: Store,
}

impl FileEditor {
    pub fn new(reloader: Arc<Reloader>, store: Store) -> FileEditor {
        FileEditor { reloader, store }
    }

    /// Every file that can be edited, sorted by path.
    pub fn files(&self) -> Result<Vec<BotPath>, EditError> {
        Ok(paths::list(self.reloader.dir())?)
    }

    /// A file's content and hash. When its history does not end with what is on disk (never
    /// opened before, or changed outside the console), that is stored as a version first.
    pub async fn open(&self, path: &str) -> Result<Opened, EditError> {
        let path = BotPath::parse(path)?;
        let _files = self.reloader.lock_files().await;
        let content = self.read(&path)?;
        let hash = hash(&content);
        let version = self.remember_disk(&path, &content, &hash).await?;
        Ok(Opened {
            path,
            content,
            hash,
            version,
        })
    }

    /// Compiles the clinic with `content` in place of `path`. Writes nothing.
    pub async fn check(&self, path: &str, content: &str) -> Result<(), EditError> {
        let path = BotPath::parse(path)?;
        self.read(&path)?;
        self.compile_with(&path, &normalize(content)).await
    }

    /// Checks and writes an edit, records it and reloads.
    pub async fn save(&self, edit: Edit<'_>) -> Result<Saved, EditError> {
        self.store_version(edit, VersionKind::Edit, None).await
    }

    /// Saves the content of version `n` again, through the same check and stale test.
    pub async fn rollback(&self, path: &str, n: u32, base: &str, author: &str) -> Result<Saved, EditError> {
        let bot_path = BotPath::parse(path)?;
        let old = self
            .store
            .file_version(bot_path.as_str(), n)
            .await?
            .ok_or(EditError::NoSuchVersion(n))?;
        let edit = Edit {
            path,
            content: &old.content,
            base,
            author,
            note: None,
        };
        self.store_version(edit, VersionKind::Rollback, Some(n)).await
    }

    /// The file's versions, newest first, without contents.
    pub async fn history(&self, path: &str) -> Result<Vec<FileVersion>, EditError> {
        let path = BotPath::parse(path)?;
        Ok(self.store.file_versions(path.as_str(), HISTORY).await?)
    }

    /// One version, with its content.
    pub async fn version(&self, path: &str, n: u32) -> Result<FileVersion, EditError> {
        let path = BotPath::parse(path)?;
        self.store
            .file_version(path.as_str(), n)
            .await?
            .ok_or(EditError::NoSuchVersion(n))
    }

    /// What changed from version `n` to the file now, or from the version before `n` to `n`.
    pub async fn diff(&self, path: &str, n: u32, against: Against) -> Result<Diff, EditError> {
        let v = self.version(path, n).await?;
        Ok(match against {
            Against::Current => {
                let now = self.read(&BotPath::parse(path)?)?;
                diff::diff(&v.content, &now, &format!("{path} v{n}"), &format!("{path} (now)"))
            }
            Against::Previous => {
                let before = match n.checked_sub(1).filter(|p| *p > 0) {
                    Some(p) => self.version(path, p).await?.content,
                    None => String::new(),
                };
                let from = format!("{path} v{}", n.saturating_sub(1));
                diff::diff(&before, &v.content, &from, &format!("{path} v{n}"))
            }
        })
    }

    async fn store_version(
        &self,
        edit: Edit<'_>,
        kind: VersionKind,
        rollback_of: Option<u32>,
    ) -> Result<Saved, EditError> {
        let path = BotPath::parse(edit.path)?;
        let content = normalize(edit.content);
        if content.len() > MAX_FILE {
            return Err(EditError::TooLarge);
        }
        let note = edit
            .note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().take(MAX_NOTE).collect::<String>());
        let _files = self.reloader.lock_files().await;
        let on_disk = self.read(&path)?;
        let disk_hash = hash(&on_disk);
        if disk_hash != edit.base {
            return Err(EditError::Stale);
        }
        let current = self.remember_disk(&path, &on_disk, &disk_hash).await?;
        self.compile_with(&path, &content).await?;
        let new_hash = hash(&content);
        if new_hash == disk_hash {
            return Ok(Saved {
                version: current,
                changed: false,
                report: None,
                hash: disk_hash,
            });
        }
        write_atomically(&path.under(self.reloader.dir()), &content)?;
        let version = self
            .store
            .add_file_version(&NewFileVersion {
                path: path.as_str(),
                content: &content,
                hash: &new_hash,
                author: Some(edit.author),
                at: jiff::Timestamp::now(),
                note: note.as_deref(),
                kind,
                rollback_of,
            })
            .await?;
        tracing::info!(
            file = path.as_str(),
            version = version.n,
            "a file was saved from the console"
        );
        let reloader = self.reloader.clone();
        let report = tokio::task::spawn_blocking(move || reloader.reload("editor"))
            .await
            .map_err(|e| EditError::Io(std::io::Error::other(e.to_string())))?;
        Ok(Saved {
            version: version.n,
            changed: true,
            report: Some(report),
            hash: new_hash,
        })
    }

    /// Stores what is on disk as a version unless the history already ends with it.
    /// Returns the newest version's number. Called with the files lock held.
    async fn remember_disk(&self, path: &BotPath, content: &str, hash: &str) -> Result<u32, EditError> {
        let latest = self.store.latest_file_version(path.as_str()).await?;
        if let Some(v) = latest.as_ref().filter(|v| v.hash == hash) {
            return Ok(v.n);
        }
        let v = self
            .store
            .add_file_version(&NewFileVersion {
                path: path.as_str(),
                content,
                hash,
                author: None,
                at: jiff::Timestamp::now(),
                note: None,
                kind: VersionKind::Found,
                rollback_of: None,
            })
            .await?;
        Ok(v.n)
    }

    fn read(&self, path: &BotPath) -> Result<String, EditError> {
        let full = path.under(self.reloader.dir());
        // Only regular files: a symbolic link could point anywhere.
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_file() => Ok(std::fs::read_to_string(&full)?),
            Ok(_) => Err(EditError::NotFound(path.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(EditError::NotFound(path.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The full compile, off the async workers.
    async fn compile_with(&self, path: &BotPath, content: &str) -> Result<(), EditError> {
        let dir = self.reloader.dir().to_path_buf();
        let (path, content) = (path.clone(), content.to_string());
        let result = tokio::task::spawn_blocking(move || {
            let sources = Sources::from_dir(&dir)?;
            Ok::<_, std::io::Error>(check::check(sources, &path, &content))
        })
        .await
        .map_err(|e| EditError::Io(std::io::Error::other(e.to_string())))??;
        result.map_err(EditError::Invalid)
    }
}

/// Writes `content` to a temporary file beside `target`, flushes it to disk and renames it
/// over `target`: a reader (the reloader, the watcher) sees the old file or the new one,
/// never half of one. The file keeps its permissions.
fn write_atomically(target: &std::path::Path, content: &str) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("a file with no folder"))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
    // A dot name with an extension the watcher ignores: the temporary file triggers nothing.
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(target) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, target)?;
        // The rename itself is durable once the folder is flushed.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("greeting.j2");
        std::fs::write(&f, "old").unwrap();
        super::write_atomically(&f, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(super::normalize("a\r\nb\n"), "a\nb\n");
    }
}
