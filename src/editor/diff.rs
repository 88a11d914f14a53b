//! A unified diff between two versions of a file (the `similar` crate), as data a page can
//! draw accessibly: hunks with their `@@` header, each line marked as kept, removed or added,
//! with its line numbers on both sides.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineTag {
    Kept,
    Removed,
    Added,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub tag: LineTag,
    /// 1-based line number in the old text (None for an added line).
    pub old: Option<usize>,
    /// 1-based line number in the new text (None for a removed line).
    pub new: Option<usize>,
    /// The line without its end of line.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    /// `@@ -1,3 +1,3 @@`
    pub header: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub hunks: Vec<Hunk>,
    pub added: usize,
    pub removed: usize,
    /// The same diff as plain `diff -u` text, with `old_name`/`new_name` as headers.
    pub unified: String,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.hunks.is_empty()
    }
}

/// The diff from `old` to `new`.
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str) -> Diff {
    let text = TextDiff::from_lines(old, new);
    let mut unified = text.unified_diff();
    unified.context_radius(CONTEXT);
    let (mut added, mut removed) = (0, 0);
    let hunks = unified
        .iter_hunks()
        .map(|h| {
            let lines = h
                .iter_changes()
                .map(|c| {
                    let tag = match c.tag() {
                        ChangeTag::Equal => LineTag::Kept,
                        ChangeTag::Delete => {
                            removed += 1;
                            LineTag::Removed
                        }
                        ChangeTag::Insert => {
                            added += 1;
                            LineTag::Added
                        }
                    };
                    DiffLine {
                        tag,
                        old: c.old_index().map(|i| i + 1),
                        new: c.new_index().map(|i| i + 1),
                        text: c.value().trim_end_matches(['\n', '\r']).to_string(),
                    }
                })
                .collect();
            Hunk {
                header: h.header().to_string(),
                lines,
            }
        })
        .collect();
    let unified = text
        .unified_diff()
        .context_radius(CONTEXT)
        .header(old_name, new_name)
        .to_string();
    Diff {
        hunks,
        added,
        removed,
        unified,
    }
}

#[cfg(test)]
mod tests {
    use super::{LineTag, diff};

    #[test]
    fn a_changed_line_is_one_removal_and_one_addition_with_line_numbers() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n", "v1", "now");
        assert_eq!((d.added, d.removed), (1, 1));
        assert_eq!(d.hunks.len(), 1);
        assert_eq!(d.hunks[0].header, "@@ -1,3 +1,3 @@");
        let tags: Vec<_> = d.hunks[0]
            .lines
            .iter()
            .map(|l| (l.tag, l.old, l.new, l.text.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                (LineTag::Kept, Some(1), Some(1), "a"),
                (LineTag::Removed, Some(2), None, "b"),
                (LineTag::Added, None, Some(2), "B"),
                (LineTag::Kept, Some(3), Some(3), "c"),
            ]
        );
        assert!(d.unified.starts_with("--- v1\n+++ now\n"), "{}", d.unified);
        assert!(diff("same\n", "same\n", "a", "b").is_empty());
    }
}
