//! `compile()`: every file of a bot folder → one immutable `Bot`, or every error at once.
//!
//! Stage one deserializes each file into the raw structs (deny_unknown_fields); stage two
//! resolves names, parses Rhai and templates, compiles schemas, and checks the graph of states.
//! Errors never stop the pass early: each is collected with file:line:column so an admin sees
//! everything wrong in one `clinicflow check`.

mod clinic;
mod flows;
mod global;
mod hints;
mod schemas;
mod sources;

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use sources::Sources;

use super::bot::Bot;
use super::diag::{Diagnostic, Diagnostics, did_you_mean};
use super::script::Scripts;
use super::templates::{Templates, Text};
use super::yaml::{self, Doc, Pos};
use crate::lang::Lang;
use crate::nlu::IntentDef;

/// Compiles the bot in `sources`. Returns every problem found when anything is wrong.
pub fn compile(sources: &Sources) -> Result<Bot, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut templates = Templates::new();
    let scripts = Scripts::new();

    load_prompts(sources, &mut templates, &mut diags);

    let mut docs: Vec<(String, Doc)> = Vec::new();
    for (path, src) in sources.yaml_files() {
        match yaml::parse(src) {
            Ok(doc) => docs.push((path.to_string(), doc)),
            // A limit (size, depth, aliases) carries its own help; other errors get a hint.
            Err(e) if e.help.is_some() => diags.push(
                Diagnostic::new(path, src, e.pos, format!("this file is not valid YAML: {}", e.message))
                    .with_help(e.help.unwrap_or_default()),
            ),
            Err(e) => diags.push(match hints::yaml(src, e.pos.line) {
                Some((msg, hint, line)) => {
                    let start = line_offset(src, line);
                    let text = src[start..].lines().next().unwrap_or("");
                    let indent = text.len() - text.trim_start_matches([' ', '\t', '-']).len();
                    let value = match text.find('\t') {
                        Some(tab) if tab <= indent => tab,
                        _ => text.find(": ").map(|i| i + 2).unwrap_or(indent),
                    };
                    Diagnostic::new(
                        path,
                        src,
                        pos_of(src, start + value),
                        format!("this file is not valid YAML: {msg}"),
                    )
                    .with_hint(hint)
                }
                None if e.message.contains("twice") => {
                    Diagnostic::new(path, src, e.pos, format!("this file is not valid YAML: {}", e.message)).with_hint(
                        super::diag::Hint {
                            es: "cada nombre va una sola vez en su bloque: borre una de las dos o cámbiele el nombre"
                                .into(),
                            en: "each name goes once in its block: delete one of the two or rename it".into(),
                        },
                    )
                }
                None => Diagnostic::new(path, src, e.pos, format!("this file is not valid YAML: {}", e.message))
                    .with_hint(super::diag::Hint {
                        es: "revise la sangría (espacios, no tabuladores; los elementos de un bloque empiezan en la \
                             misma columna) y que cada `clave:` tenga un espacio después de los dos puntos"
                            .into(),
                        en: "check the indentation (spaces, not tabs; items of one block start in the same column) \
                             and that every `key:` has a space after the colon"
                            .into(),
                    }),
            }),
        }
    }
    let find = |name: &str| docs.iter().find(|(p, _)| p == &format!("flows/{name}"));

    let clinic = match find("clinic.yaml") {
        Some((p, doc)) => clinic::compile(&mut File::new(p, sources.text(p), doc, &mut diags)),
        None => {
            if !sources.has("flows/clinic.yaml") {
                diags.push(Diagnostic::file_level(
                    "flows/clinic.yaml",
                    "flows/clinic.yaml is missing: it holds the clinic's name, time zone, hours and specialties",
                ));
            }
            None
        }
    };

    // Email confirmations need something to send: the confirmation email in both languages.
    if let (Some(c), Some((p, doc))) = (&clinic, find("clinic.yaml"))
        && c.email_confirmations
    {
        let missing: Vec<String> = [Lang::Es, Lang::En]
            .iter()
            .map(|l| format!("prompts/{}/email_confirmation.j2", l.code()))
            .filter(|f| !sources.has(f))
            .collect();
        if !missing.is_empty() {
            File::new(p, sources.text(p), doc, &mut diags).err(
                "clinic.email_confirmations",
                format!(
                    "email confirmations are on but {} is missing",
                    missing.join(" and ")
                ),
                "add the confirmation email (first line the subject, then the body; see docs/calendars.md, \"Email\"), or set `email_confirmations: false`",
            );
        }
    }

    let intents = match find("intents.yaml") {
        Some((p, doc)) => compile_intents(&mut File::new(p, sources.text(p), doc, &mut diags)),
        None => {
            if !sources.has("flows/intents.yaml") {
                diags.push(Diagnostic::file_level(
                    "flows/intents.yaml",
                    "flows/intents.yaml is missing: it lists what patients may want, with example phrases",
                ));
            }
            Vec::new()
        }
    };
    let intent_names: Vec<&str> = intents.iter().map(|i| i.name.as_str()).collect();
    // After clinic.yaml: its specialties, coverages and professionals fill the schemas' lists.
    let schemas = schemas::load(sources, clinic.as_ref(), &mut diags);

    let mut fields = vec![
        ("now", strings(crate::engine::context::NOW_FIELDS)),
        ("session", strings(crate::engine::context::SESSION_FIELDS)),
    ];
    if let Some(Value::Object(c)) = clinic.as_ref().map(|c| &c.value) {
        fields.push(("clinic", c.keys().cloned().collect()));
    }
    let mut env = Env {
        sources,
        templates: &mut templates,
        scripts: &scripts,
        schemas: &schemas.validators,
        schema_values: &schemas.values,
        broken_schemas: &schemas.broken,
        intents: &intent_names,
        slots: None,
        names: crate::engine::context::VARIABLES,
        fields,
    };

    let global = match find("global.yaml") {
        Some((p, doc)) => global::compile(&mut File::new(p, sources.text(p), doc, &mut diags), &mut env),
        None => {
            if !sources.has("flows/global.yaml") {
                diags.push(Diagnostic::file_level(
                    "flows/global.yaml",
                    "flows/global.yaml is missing: it holds help, restart, handoff and fallback replies",
                ));
            }
            None
        }
    };

    let mut flows = Vec::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for (path, doc) in &docs {
        if ["flows/clinic.yaml", "flows/intents.yaml", "flows/global.yaml"].contains(&path.as_str()) {
            continue;
        }
        let mut file = File::new(path, sources.text(path), doc, &mut diags);
        let compiled = flows::compile(&mut file, &mut env);
        env.slots = None;
        if let Some(flow) = compiled {
            if let Some((other, line)) = seen.get(&flow.name) {
                let msg = format!("there is already a flow named `{}` in {other}:{line}", flow.name);
                file.err("flow", msg, "give each flow its own name");
            } else {
                let line = file.doc.pos("flow").map(|p| p.line).unwrap_or(1);
                seen.insert(flow.name.clone(), (path.clone(), line));
                flows.push(flow);
            }
        }
    }
    flows::check_cross_references(&flows, &docs, sources, &mut diags);

    match (clinic, global) {
        (Some(clinic), Some(global)) if diags.is_empty() => {
            let nlu = crate::nlu::rules_for(&clinic, &intents);
            let flow_index = flows.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
            Ok(Bot {
                clinic_template: crate::engine::context::template_value(&clinic.value),
                clinic,
                intents,
                flows,
                flow_index,
                global,
                templates,
                scripts,
                nlu,
                files: sources.len(),
                sources: sources.clone(),
            })
        }
        (clinic, _) => {
            if diags.is_empty() {
                diags.push(Diagnostic::file_level("flows/", "the bot could not be compiled"));
            }
            diags.sort();
            diags.localize(clinic.map(|c| c.language).unwrap_or_default());
            Err(diags)
        }
    }
}

/// Compiles the bot in a folder (flows/, prompts/, schemas/).
pub fn compile_dir(dir: &std::path::Path) -> Result<Bot, Diagnostics> {
    match Sources::from_dir(dir) {
        Ok(s) => compile(&s),
        Err(e) => {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::file_level(
                &dir.display().to_string(),
                format!("cannot read the bot folder: {e}"),
            ));
            Err(d)
        }
    }
}

/// What the per-file compilers share.
pub(crate) struct Env<'a> {
    pub sources: &'a Sources,
    pub templates: &'a mut Templates,
    pub scripts: &'a Scripts,
    pub schemas: &'a HashMap<String, std::sync::Arc<jsonschema::Validator>>,
    /// The same schemas as JSON, lists from clinic.yaml filled in.
    pub schema_values: &'a HashMap<String, Value>,
    /// Schema files that exist but have errors (already reported).
    pub broken_schemas: &'a [String],
    pub intents: &'a [&'a str],
    /// The slots of the flow being compiled (`None` in global.yaml: any flow's).
    pub slots: Option<Vec<String>>,
    /// Fields of context values known at compile time, for template checks.
    pub fields: Vec<(&'static str, Vec<String>)>,
    /// The top-level names the texts being compiled can read.
    pub names: &'static [&'static str],
}

pub(crate) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One YAML file being compiled: reports errors at YAML paths.
pub(crate) struct File<'a> {
    pub path: &'a str,
    pub src: &'a str,
    pub doc: &'a Doc,
    pub diags: &'a mut Diagnostics,
}

impl<'a> File<'a> {
    pub fn new(path: &'a str, src: &'a str, doc: &'a Doc, diags: &'a mut Diagnostics) -> Self {
        File { path, src, doc, diags }
    }

    pub fn at(&self, pos: Pos, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.path, self.src, pos, msg)
    }

    /// An error at the value of `path` (or its nearest known parent).
    pub fn err(&mut self, path: &str, msg: impl Into<String>, help: impl Into<String>) {
        let pos = self.doc.pos(path).unwrap_or_else(|| self.doc.nearest(path));
        let d = self.at(pos, msg);
        let help: String = help.into();
        self.diags.push(if help.is_empty() { d } else { d.with_help(help) });
    }

    /// An error at the key of `path`.
    pub fn err_key(&mut self, path: &str, msg: impl Into<String>, help: impl Into<String>) {
        let pos = self.doc.key_pos(path).unwrap_or_else(|| self.doc.nearest(path));
        let d = self.at(pos, msg);
        let help: String = help.into();
        self.diags.push(if help.is_empty() { d } else { d.with_help(help) });
    }

    /// Stage one: the raw struct at `path`, or a diagnostic in plain words.
    pub fn deser<T: DeserializeOwned>(&mut self, value: &Value, path: &str) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.inner().to_string();
                let sub = e.path().to_string();
                let full = join(path, if sub == "." { "" } else { &sub });
                self.report_serde(&full, &inner);
                None
            }
        }
    }

    fn report_serde(&mut self, path: &str, msg: &str) {
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let help = match did_you_mean(key, allowed.iter().copied()) {
                Some(h) => format!("{h} Keys allowed here: {}", allowed.join(", ")),
                None => format!("keys allowed here: {}", allowed.join(", ")),
            };
            self.err_key(&join(path, key), format!("unknown key `{key}`"), help);
        } else if let Some(rest) = msg.strip_prefix("missing field `") {
            let key = rest.split('`').next().unwrap_or(rest);
            self.err_key(
                path,
                format!("`{key}` is missing here"),
                format!("add `{key}:` to this block"),
            );
        } else if msg.contains("untagged enum RawText") {
            self.err(
                path,
                "expected a text: an inline template, a `.j2` file name, or `{es: ..., en: ...}`",
                "",
            );
        } else if msg.contains("untagged enum RawNext") {
            self.err(
                path,
                "`next` must be a state name or a list of transitions (`- goto: state`)",
                "",
            );
        } else {
            let msg = msg
                .replace("invalid type: ", "")
                .replace("expected a sequence", "expected a list, like [a, b]")
                .replace("expected a map", "expected a block of `key: value` lines")
                .replace("a mapping", "a block of `key: value` lines");
            self.err(
                path,
                format!("wrong value here: {msg}"),
                "see docs/flows.md for what this key takes",
            );
        }
    }
}

pub(crate) fn join(base: &str, sub: &str) -> String {
    match (base.is_empty(), sub.is_empty()) {
        (true, _) => sub.to_string(),
        (_, true) => base.to_string(),
        _ if sub.starts_with('[') => format!("{base}{sub}"),
        _ => format!("{base}.{sub}"),
    }
}

fn load_prompts(sources: &Sources, templates: &mut Templates, diags: &mut Diagnostics) {
    for (path, src) in sources.prompt_files() {
        if let Err((msg, line, range)) = templates.add(path, src) {
            let offset = range
                .as_ref()
                .map(|r| r.start)
                .unwrap_or_else(|| line_offset(src, line));
            let col = src[..offset.min(src.len())]
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count() + 1)
                .unwrap_or(1);
            let pos = Pos { line, col, offset };
            diags.push(
                Diagnostic::new(path, src, pos, format!("template error: {msg}"))
                    .with_help("check that every `{{` has its `}}` and every `{% if %}` its `{% endif %}`"),
            );
        }
    }
}

pub(crate) fn line_offset(src: &str, line: usize) -> usize {
    src.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

fn compile_intents(file: &mut File<'_>) -> Vec<IntentDef> {
    let Some(raw) = file.deser::<super::raw::RawIntentsFile>(&file.doc.value.clone(), "") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, intent) in raw.intents.iter() {
        let path = format!("intents.{name}");
        if super::bot::BUILTIN_INTENTS.contains(&name.as_str()) {
            file.err_key(
                &path,
                format!("`{name}` is built in (yes/no words); it cannot be redefined"),
                "remove it",
            );
            continue;
        }
        let mut examples = Vec::new();
        for (lang, list) in &intent.examples {
            match Lang::parse(lang) {
                Some(l) => examples.extend(list.iter().map(|e| (l, e.clone()))),
                None => file.err_key(
                    &format!("{path}.examples.{lang}"),
                    format!("unknown language `{lang}`"),
                    "use `es` or `en`",
                ),
            }
        }
        if examples.is_empty() {
            file.err_key(
                &path,
                format!("intent `{name}` has no examples"),
                "add a few phrases patients would write",
            );
        }
        out.push(IntentDef {
            name: name.clone(),
            description: intent.description.clone(),
            examples,
        });
    }
    out
}

/// Compiles a `say`/`ask` text at `path` of `file`.
pub(crate) fn compile_text(file: &mut File<'_>, env: &mut Env<'_>, raw: &super::raw::RawText, path: &str) -> Text {
    use super::raw::RawText;
    let mut text = Text::default();
    match raw {
        RawText::One(s) if is_file_ref(s) => {
            // A file name: each language gets its own prompts/<lang>/ copy when there is one.
            text.es = one_text(file, env, s, path, Some(Lang::Es));
            if text.es.is_some() {
                text.en = one_text(file, env, s, path, Some(Lang::En));
            }
        }
        RawText::One(s) => {
            let name = one_text(file, env, s, path, None);
            text.es = name.clone();
            text.en = name;
        }
        RawText::PerLang(map) => {
            for (lang, s) in map {
                let p = join(path, lang);
                match Lang::parse(lang) {
                    Some(Lang::Es) => text.es = one_text(file, env, s, &p, Some(Lang::Es)),
                    Some(Lang::En) => text.en = one_text(file, env, s, &p, Some(Lang::En)),
                    None => file.err_key(&p, format!("unknown language `{lang}`"), "use `es` or `en`"),
                }
                if let Some(name) = if lang == "en" { &text.en } else { &text.es } {
                    check_template(file, env, name, &p);
                }
            }
            return text;
        }
    }
    if let Some(name) = &text.es {
        check_template(file, env, name, path);
    }
    if let Some(name) = text.en.as_ref().filter(|n| Some(*n) != text.es.as_ref()) {
        check_template(file, env, name, path);
    }
    text
}

/// Reports what template `name` (used at `path` of `file`) reads that will not be there at
/// run time; problems in a prompts/ file are reported in that file.
fn check_template(file: &mut File<'_>, env: &Env<'_>, name: &str, path: &str) {
    let slots: Option<Vec<&str>> = env.slots.as_ref().map(|v| v.iter().map(String::as_str).collect());
    let scope = super::templates::Scope {
        names: env.names,
        slots: slots.as_deref(),
        fields: &env.fields,
    };
    for p in env.templates.check(name, &scope) {
        let d = if name.starts_with("prompts/") {
            let src = env.sources.text(name);
            Diagnostic::new(name, src, pos_of(src, p.offset), p.message).with_span(p.offset, p.len)
        } else {
            let value = file.doc.pos(path).unwrap_or_else(|| file.doc.nearest(path));
            let tsrc = env.templates.source(name).unwrap_or_default();
            let offset = inline_offset(file.src, value.offset, &tsrc, p.offset);
            file.at(pos_of(file.src, offset), p.message).with_span(offset, p.len)
        };
        let hint = super::diag::Hint {
            es: p.help_es,
            en: p.help,
        };
        file.diags.push(d.with_hint(hint).with_label("not available here"));
    }
}

/// Line and column (1-based, in characters) of byte `offset` of `src`.
pub(crate) fn pos_of(src: &str, offset: usize) -> Pos {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
    Pos { line, col, offset }
}

/// Where byte `at` of an inline template (whose YAML value starts at `value`) is in the file:
/// its line of text is looked up after the value, which works for plain, quoted and block
/// scalars alike; the value's start when it cannot be found (escapes).
fn inline_offset(file_src: &str, value: usize, tsrc: &str, at: usize) -> usize {
    let line_start = tsrc[..at.min(tsrc.len())].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = tsrc[line_start..]
        .find('\n')
        .map(|i| line_start + i)
        .unwrap_or(tsrc.len());
    let line = &tsrc[line_start..line_end];
    let trimmed = line.trim_start();
    let skip = line.len() - trimmed.len();
    let rest = file_src.get(value..).unwrap_or_default();
    match rest.find(trimmed.trim_end()) {
        Some(i) if !trimmed.trim().is_empty() => value + i + (at - line_start).saturating_sub(skip),
        _ => value,
    }
}

fn is_file_ref(s: &str) -> bool {
    let t = s.trim();
    t.ends_with(".j2") && !t.contains(char::is_whitespace)
}

fn one_text(file: &mut File<'_>, env: &mut Env<'_>, s: &str, path: &str, lang: Option<Lang>) -> Option<String> {
    let trimmed = s.trim();
    if is_file_ref(trimmed) {
        let langs: Vec<Lang> = lang.map(|l| vec![l]).unwrap_or_else(|| vec![Lang::Es, Lang::En]);
        for l in &langs {
            let candidate = format!("prompts/{}/{trimmed}", l.code());
            if env.sources.has(&candidate) {
                return Some(candidate);
            }
        }
        let plain = format!("prompts/{trimmed}");
        if env.sources.has(&plain) {
            return Some(plain);
        }
        // DESIGN: the session language picks prompts/es or prompts/en "where both exist";
        // a template written in one language only serves both.
        if let [l] = langs.as_slice() {
            let other = if *l == Lang::Es { Lang::En } else { Lang::Es };
            let candidate = format!("prompts/{}/{trimmed}", other.code());
            if env.sources.has(&candidate) {
                return Some(candidate);
            }
        }
        let known: Vec<String> = env.sources.prompt_names();
        let help = did_you_mean(trimmed, known.iter().map(String::as_str)).unwrap_or_else(|| {
            "create the file in prompts/es/ (and prompts/en/ for English) or write the text inline".into()
        });
        file.err(path, format!("template file `{trimmed}` not found in prompts/"), help);
        return None;
    }
    let pos = file.doc.pos(path).unwrap_or_else(|| file.doc.nearest(path));
    let name = format!("{}:{}:{}", file.path, pos.line, pos.col);
    if let Err((msg, line, _)) = env.templates.add(&name, s) {
        let at = Pos {
            line: pos.line + line.saturating_sub(1),
            ..pos
        };
        let d = file.at(at, format!("template error: {msg}"));
        file.diags
            .push(d.with_help("check that every `{{` has its `}}` and every `{% if %}` its `{% endif %}`"));
        return None;
    }
    Some(name)
}

/// Compiles a Rhai expression found at `path`, mapping its error position into the YAML.
/// The strings an expression compares an action's `result.reason` with
/// (`result.reason == "taken"`, `result.reason != 'past'`) that are not an action refusal ([`super::actions::Refusal`]).
pub(crate) fn unknown_refusals(src: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("result.reason") {
        rest = &rest[i + "result.reason".len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix("==").or_else(|| after.strip_prefix("!=")) else {
            continue;
        };
        let after = after.trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(end) = after[1..].find(quote) else { continue };
        let word = &after[1..1 + end];
        if super::actions::Refusal::parse(word).is_none() {
            unknown.push(word.to_string());
        }
    }
    unknown
}

pub(crate) fn compile_expr(file: &mut File<'_>, env: &Env<'_>, src: &str, path: &str) -> Option<super::script::Expr> {
    for unknown in unknown_refusals(src) {
        let known: Vec<&str> = super::actions::Refusal::ALL.iter().map(|r| r.as_str()).collect();
        file.err(
            path,
            format!("no action refuses with reason `{unknown}`: `{src}` can never be true"),
            format!("action refusals are: {}", known.join(", ")),
        );
    }
    let pos = file.doc.pos(path).unwrap_or_else(|| file.doc.nearest(path));
    match env.scripts.compile(src, file.path, pos.line) {
        Ok(e) => Some(e),
        Err(e) => {
            let quoted = matches!(file.src.as_bytes().get(pos.offset), Some(b'"' | b'\''));
            let shift = e.col.saturating_sub(1) + usize::from(quoted);
            let at = if e.line <= 1 {
                Pos {
                    col: pos.col + shift,
                    offset: pos.offset + shift,
                    ..pos
                }
            } else {
                Pos {
                    line: pos.line + e.line - 1,
                    ..pos
                }
            };
            if let Some((msg, hint)) = hints::rhai(src, &e.message, env.intents) {
                let d = file.at(at, format!("invalid expression `{src}`: {msg}"));
                file.diags.push(d.with_hint(hint));
                return None;
            }
            let help = if e.message.contains("Variable not found") || e.message.contains("Undefined variable") {
                format!("expressions can read {}", super::script::VARIABLES.join(", "))
            } else {
                "check the expression; see docs/flows.md, section Conditions".to_string()
            };
            let d = file.at(at, format!("invalid expression `{src}`: {}", e.message));
            file.diags.push(d.with_help(help));
            None
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::unknown_refusals;
    use crate::flow::actions::Refusal;

    #[test]
    fn a_guard_comparing_with_an_unknown_refusal_is_found() {
        assert!(unknown_refusals(r#"result.ok == false && result.reason == "taken""#).is_empty());
        assert!(unknown_refusals(r#"result.reason != "past" || slots.reason == "x""#).is_empty());
        assert_eq!(unknown_refusals(r#"result.reason == "taked""#), ["taked"]);
        assert_eq!(
            unknown_refusals(r#"result.reason=="outside" && result.reason == "locked""#),
            ["outside"]
        );
    }

    #[test]
    fn refusals_keep_their_strings() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
        assert_eq!(Refusal::CalendarUnavailable.as_str(), "calendar_unavailable");
    }
}
