//! Diagnostics for clinic admins: what is wrong, where (file:line:column), a source excerpt,
//! and how to fix it. Rendered by miette without colour so output is stable for snapshots.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

use super::yaml::Pos;

#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Diagnostic {
    pub message: String,
    #[help]
    pub help: Option<String>,
    /// Path of the file relative to the bot folder, with `/` separators.
    pub file: String,
    pub line: usize,
    pub col: usize,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    /// The same help in Spanish, shown first for Spanish-speaking clinics (`localize`).
    pub help_es: Option<String>,
    /// Byte offsets of the tabs in the original text (the excerpt shows them as `→`).
    tabs: Vec<usize>,
}

/// Help in the admin's words, in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub es: String,
    pub en: String,
}

/// Tabs are invisible in an excerpt (miette prints them as spaces), yet a tab is often the
/// mistake: show each as `→`. Returns the shown text and the tabs' original offsets.
fn show_tabs(src: &str) -> (String, Vec<usize>) {
    let tabs: Vec<usize> = src.match_indices('\t').map(|(i, _)| i).collect();
    if tabs.is_empty() {
        return (src.to_string(), tabs);
    }
    (src.replace('\t', "→"), tabs)
}

impl Diagnostic {
    /// A diagnostic at `pos` in `file` (whose text is `src`). The label underlines the word
    /// that starts there.
    pub fn new(file: &str, src: &str, pos: Pos, message: impl Into<String>) -> Self {
        let offset = pos.offset.min(src.len());
        let len = word_len(&src[offset..]);
        let (shown, tabs) = show_tabs(src);
        let mut d = Diagnostic {
            message: message.into(),
            help: None,
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            src: NamedSource::new(file, shown),
            span: SourceSpan::new(0.into(), 0),
            label: "here".to_string(),
            help_es: None,
            tabs,
        };
        d.span = SourceSpan::new(d.shown(offset).into(), len);
        d
    }

    /// Where byte `offset` of the original text is in the shown one (tabs are 3-byte `→`).
    fn shown(&self, offset: usize) -> usize {
        offset + 2 * self.tabs.iter().filter(|&&t| t < offset).count()
    }

    /// Help in both languages; `Diagnostics::localize` picks the order.
    pub fn with_hint(mut self, hint: Hint) -> Self {
        self.help = Some(hint.en);
        self.help_es = Some(hint.es);
        self
    }

    /// A diagnostic about a whole file (missing file, unreadable file).
    pub fn file_level(file: &str, message: impl Into<String>) -> Self {
        Self::new(
            file,
            "",
            Pos {
                line: 1,
                col: 1,
                offset: 0,
            },
            message,
        )
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Moves the underline to `len` bytes from `offset` within the same file.
    pub fn with_span(mut self, offset: usize, len: usize) -> Self {
        self.span = SourceSpan::new(self.shown(offset).into(), len.max(1));
        self
    }

    /// `flows/book.yaml:20:15: unknown state `chek``, for logs and JSON.
    pub fn one_line(&self) -> String {
        format!("{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }

    /// The full report with the source excerpt, no colours.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_context_lines(1);
        if handler.render_report(&mut out, self).is_err() {
            return self.one_line();
        }
        out
    }
}

/// Length of the token starting at the beginning of `s` (at least 1, at most to line end).
fn word_len(s: &str) -> usize {
    let line = s.split('\n').next().unwrap_or("");
    let trimmed = line.trim_end();
    if trimmed.is_empty() {
        return 0;
    }
    // Quoted scalars and expressions: underline to the end of the line; plain words: the word.
    let first = trimmed.chars().next().unwrap_or(' ');
    if matches!(first, '"' | '\'' | '[' | '{') {
        return trimmed.len();
    }
    trimmed
        .find([' ', ':', ',', ']', '}'])
        .filter(|&i| i > 0)
        .unwrap_or(trimmed.len())
}

/// All the diagnostics of one compile, in file order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        self.0
            .dedup_by(|a, b| a.file == b.file && a.line == b.line && a.col == b.col && a.message == b.message);
    }
    pub fn render(&self) -> String {
        self.0.iter().map(Diagnostic::render).collect::<Vec<_>>().join("\n")
    }

    /// Every file named from `folder` (relative to `--dir`, e.g. `clinics/dental-norte`), so a
    /// clinic's problems point at its own files when several clinics are checked at once.
    pub fn in_folder(&mut self, folder: &str) {
        let folder = folder.trim_end_matches('/');
        if folder.is_empty() {
            return;
        }
        for d in &mut self.0 {
            d.file = format!("{folder}/{}", d.file);
            d.src = NamedSource::new(&d.file, d.src.inner().clone());
        }
    }

    /// For a Spanish-speaking clinic, help that exists in both languages is shown in
    /// Spanish first, then English; otherwise in English only.
    pub fn localize(&mut self, lang: crate::lang::Lang) {
        for d in &mut self.0 {
            if let Some(es) = d.help_es.take()
                && lang == crate::lang::Lang::Es
            {
                let en = d.help.take().unwrap_or_default();
                d.help = Some(format!("{es}\n(en) {en}"));
            }
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{}", d.one_line())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// "did you mean `check`?" when a close name exists.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&wrong.to_lowercase(), &c.to_lowercase());
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}
