//! Versions of the clinic's own files (flows, prompts, schemas) saved from the console's
//! editor: who, when, what (the whole content and its hash), and why (an optional note, or the
//! version a rollback went back to). Numbered per file from 1; the UNIQUE index on
//! (path, n) makes two writers racing for one number fail instead of both winning.
//!
//! No patient data here: these are the clinic's configuration files and staff names.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    /// What was on disk when the editor first met the file (or when it changed outside it).
    Found,
    /// Saved from the editor.
    Edit,
    /// A rollback: the content of an earlier version, saved again.
    Rollback,
}

/// One stored version of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileVersion {
    #[serde(default)]
    pub id: String,
    /// `prompts/es/greeting.j2`, relative to the bot folder.
    pub path: String,
    /// 1, 2, 3… per file.
    pub n: u32,
    pub content: String,
    /// SHA-256 of `content`, hex.
    pub hash: String,
    /// The member of staff who saved it (None: found on disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(with = "super::time::instant")]
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub kind: VersionKind,
    /// For a rollback: the version whose content it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u32>,
}

/// What a new version says about itself (the number is the store's to give).
#[derive(Debug, Clone)]
pub struct NewFileVersion<'a> {
    pub path: &'a str,
    pub content: &'a str,
    pub hash: &'a str,
    pub author: Option<&'a str>,
    pub at: Timestamp,
    pub note: Option<&'a str>,
    pub kind: VersionKind,
    pub rollback_of: Option<u32>,
}

/// The listing leaves the contents out.
const SUMMARY: &str = "record::id(id) AS id, path, n, '' AS content, hash, author, at, note, kind, rollback_of";

impl Store {
    /// Stores the next version of `new.path`. A writer that lost the race for the number
    /// (the UNIQUE index) tries the next one, a few times.
    pub async fn add_file_version(&self, new: &NewFileVersion<'_>) -> Result<FileVersion, StoreError> {
        let mut attempt = 0;
        loop {
            let n = self.latest_file_version(new.path).await?.map_or(1, |v| v.n + 1);
            let version = FileVersion {
                id: String::new(),
                path: new.path.to_string(),
                n,
                content: new.content.to_string(),
                hash: new.hash.to_string(),
                author: new.author.map(str::to_string),
                at: new.at,
                note: new.note.map(str::to_string),
                kind: new.kind,
                rollback_of: new.rollback_of,
            };
            let sql = format!("CREATE file_version CONTENT $doc RETURN {PLAIN_ID}");
            match self.run_retry(&sql, json!({ "doc": to_doc(&version)? })).await {
                Ok(mut resp) => {
                    return decode_rows(&mut resp, 0, "file version")?
                        .into_iter()
                        .next()
                        .ok_or_else(|| StoreError::Query("CREATE returned no file version".into()));
                }
                Err(StoreError::Conflict(_)) if attempt < 5 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The newest version of a file, with its content.
    pub async fn latest_file_version(&self, path: &str) -> Result<Option<FileVersion>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM file_version WHERE path = $path ORDER BY n DESC LIMIT 1");
        let mut resp = self.run(&sql, json!({ "path": path })).await?;
        Ok(decode_rows(&mut resp, 0, "file version")?.into_iter().next())
    }

    /// Version `n` of a file, with its content.
    pub async fn file_version(&self, path: &str, n: u32) -> Result<Option<FileVersion>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM file_version WHERE path = $path AND n = $n LIMIT 1");
        let mut resp = self.run(&sql, json!({ "path": path, "n": n })).await?;
        Ok(decode_rows(&mut resp, 0, "file version")?.into_iter().next())
    }

    /// A file's versions, newest first, without their contents (at most `limit`).
    pub async fn file_versions(&self, path: &str, limit: usize) -> Result<Vec<FileVersion>, StoreError> {
        let sql = format!("SELECT {SUMMARY} FROM file_version WHERE path = $path ORDER BY n DESC LIMIT $limit");
        let mut resp = self.run(&sql, json!({ "path": path, "limit": limit })).await?;
        decode_rows(&mut resp, 0, "file version")
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::super::testing::mem;
    use super::{NewFileVersion, VersionKind};

    #[tokio::test]
    async fn versions_are_numbered_per_file_and_listed_newest_first() {
        let store = mem().await;
        let at = Timestamp::from_second(1_780_000_000).unwrap();
        let new = |path, content, kind, author| NewFileVersion {
            path,
            content,
            hash: "h",
            author,
            at,
            note: None,
            kind,
            rollback_of: None,
        };
        let a = "prompts/es/greeting.j2";
        let v1 = store
            .add_file_version(&new(a, "uno", VersionKind::Found, None))
            .await
            .unwrap();
        let v2 = store
            .add_file_version(&new(a, "dos", VersionKind::Edit, Some("root")))
            .await
            .unwrap();
        let other = store
            .add_file_version(&new("flows/thanks.yaml", "x", VersionKind::Found, None))
            .await
            .unwrap();
        assert_eq!((v1.n, v2.n, other.n), (1, 2, 1));
        let list = store.file_versions(a, 10).await.unwrap();
        assert_eq!(list.iter().map(|v| v.n).collect::<Vec<_>>(), [2, 1]);
        assert!(
            list.iter().all(|v| v.content.is_empty()),
            "the listing leaves contents out"
        );
        assert_eq!(list[0].author.as_deref(), Some("root"));
        assert_eq!(
            store.file_version(a, 1).await.unwrap().map(|v| v.content).as_deref(),
            Some("uno")
        );
        assert_eq!(store.latest_file_version(a).await.unwrap().map(|v| v.n), Some(2));
        assert_eq!(store.file_version(a, 9).await.unwrap(), None);
    }
}
