//! minijinja templates: `say`, `ask` and `invalid` texts, inline or files in prompts/.
//! All templates are parsed once at compile time into one environment; a turn only renders.

use jiff::civil::Date;
use minijinja::value::Value as MjValue;
use minijinja::{Environment, State, UndefinedBehavior};

use crate::lang::Lang;

/// A text with one template per language; a language without its own uses the other.
#[derive(Debug, Clone, Default)]
pub struct Text {
    pub es: Option<String>,
    pub en: Option<String>,
}

impl Text {
    pub fn template_for(&self, lang: Lang) -> Option<&str> {
        let (first, second) = match lang {
            Lang::Es => (&self.es, &self.en),
            Lang::En => (&self.en, &self.es),
        };
        first.as_deref().or(second.as_deref())
    }
}

pub struct Templates {
    env: Environment<'static>,
}

#[derive(Debug, thiserror::Error)]
#[error("template `{name}`: {message}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Missing slots render as nothing instead of failing the reply.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_fuel(Some(50_000));
        // A missing value (JSON null) prints nothing, not "none".
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        // The names are listed in CUSTOM_FILTERS for `check`'s suggestions.
        env.add_filter(CUSTOM_FILTERS[0], date_long);
        env.add_filter(CUSTOM_FILTERS[1], time_hm);
        Templates { env }
    }

    /// Parses a template; on error returns (message, 1-based line within the template,
    /// byte range within the template).
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), (String, usize, Option<std::ops::Range<usize>>)> {
        self.env
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| {
                (
                    e.detail().unwrap_or("syntax error").to_string(),
                    e.line().unwrap_or(1),
                    e.range(),
                )
            })
    }

    /// The source text of template `name`.
    pub fn source(&self, name: &str) -> Option<String> {
        self.env.get_template(name).ok().map(|t| t.source().to_string())
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    pub fn render(&self, text: &Text, lang: Lang, ctx: &serde_json::Value) -> Result<String, RenderError> {
        self.render_value(text, lang, MjValue::from(minijinja::value::Serde(ctx)))
    }

    /// `render` with a context that is already a template value (a turn's, which shares the
    /// clinic converted once at compile time).
    pub fn render_value(&self, text: &Text, lang: Lang, ctx: MjValue) -> Result<String, RenderError> {
        let name = text.template_for(lang).unwrap_or_default();
        let err = |e: minijinja::Error| RenderError {
            name: name.to_string(),
            message: e.to_string(),
        };
        let tmpl = self.env.get_template(name).map_err(err)?;
        let out = tmpl.render(ctx).map_err(err)?;
        Ok(out.trim().to_string())
    }
}

/// What a template can read where it is used, for `check`.
pub struct Scope<'a> {
    /// Top-level names (the engine's render context).
    pub names: &'a [&'a str],
    /// The slots of the flow using the template; `None` for texts shared by every flow.
    pub slots: Option<&'a [&'a str]>,
    /// Fields of the top-level names that are known at compile time (`clinic`, `now`, …).
    pub fields: &'a [(&'a str, Vec<String>)],
}

/// A name, filter or test that would not work at run time, at a byte offset of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub help: String,
    /// The same help in Spanish.
    pub help_es: String,
    pub offset: usize,
    pub len: usize,
}

impl Templates {
    /// Checks the parsed template `name` against `scope`: unknown top-level names, unknown
    /// fields (`slots.X`, `clinic.X`), unknown filters and tests.
    pub fn check(&self, name: &str, scope: &Scope<'_>) -> Vec<Problem> {
        let Ok(tmpl) = self.env.get_template(name) else {
            return Vec::new();
        };
        let source = tmpl.source();
        let mut out = Vec::new();
        let globals: Vec<&str> = self.env.globals().map(|(n, _)| n).collect();
        let mut vars: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
        vars.sort();
        for var in &vars {
            let mut parts = var.split('.');
            let top = parts.next().unwrap_or_default();
            if scope.names.contains(&top) || globals.contains(&top) {
                let Some(field) = parts.next() else { continue };
                let known: Option<Vec<&str>> = if top == "slots" {
                    scope.slots.map(<[&str]>::to_vec)
                } else {
                    scope
                        .fields
                        .iter()
                        .find(|(n, _)| *n == top)
                        .map(|(_, f)| f.iter().map(String::as_str).collect())
                };
                let Some(known) = known else { continue };
                if known.contains(&field) {
                    continue;
                }
                let what = if top == "slots" {
                    format!("this flow has no slot `{field}`")
                } else {
                    format!("`{top}` has no field `{field}`")
                };
                let close = super::diag::did_you_mean(field, known.iter().copied());
                let list = known.join(", ");
                let (help, help_es) = match &close {
                    Some(h) => (
                        format!("{h} Available: {list}"),
                        format!("{} Hay: {list}", h.replace("did you mean", "¿quiso decir")),
                    ),
                    None if top == "slots" => (
                        format!("slots of this flow: {list}; declare `{field}` under `slots:` or fix the name"),
                        format!("datos de este flujo: {list}; declare `{field}` en `slots:` o corrija el nombre"),
                    ),
                    None => (format!("`{top}` has: {list}"), format!("`{top}` tiene: {list}")),
                };
                let dotted = format!("{top}.{field}");
                let (offset, len) = find_word(source, &dotted).unwrap_or((0, 1));
                out.push(Problem {
                    message: format!("`{{{{ {dotted} }}}}` would print nothing: {what}"),
                    help,
                    help_es,
                    offset,
                    len,
                });
            } else {
                let names = scope.names.join(", ");
                let (help, help_es) = match super::diag::did_you_mean(top, scope.names.iter().copied()) {
                    Some(h) => (
                        format!("{h} Templates can read {names}"),
                        format!(
                            "{} Los textos pueden usar {names}",
                            h.replace("did you mean", "¿quiso decir")
                        ),
                    ),
                    None => (
                        format!("templates can read {names}; write `slots.{top}` for a slot of the flow"),
                        format!("los textos pueden usar {names}; para un dato del flujo escriba `slots.{top}`"),
                    ),
                };
                let (offset, len) = find_word(source, top).unwrap_or((0, 1));
                out.push(Problem {
                    message: format!("unknown name `{top}`: it would print nothing"),
                    help,
                    help_es,
                    offset,
                    len,
                });
            }
        }
        out.extend(self.check_filters_and_tests(&tmpl));
        out
    }

    fn check_filters_and_tests(&self, tmpl: &minijinja::Template<'_, '_>) -> Vec<Problem> {
        use minijinja::machinery::Instruction;
        let code = &minijinja::machinery::get_compiled_template(tmpl).instructions;
        let mut out = Vec::new();
        let mut idx = 0;
        while let Some(instr) = code.get(idx) {
            let (kind, name, probe) = match instr {
                Instruction::ApplyFilter(name, ..) => ("filter", *name, format!("{{{{ none | {name} }}}}")),
                Instruction::PerformTest(name, ..) => ("test", *name, format!("{{{{ none is {name} }}}}")),
                _ => {
                    idx += 1;
                    continue;
                }
            };
            let unknown = matches!(
                self.env.render_str(&probe, ()).map_err(|e| e.kind()),
                Err(minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest)
            );
            if unknown {
                let offset = code
                    .get_span(idx)
                    .map(|s| s.start_offset as usize)
                    .and_then(|o| tmpl.source()[o..].find(name).map(|i| o + i))
                    .or_else(|| find_word(tmpl.source(), name).map(|(o, _)| o))
                    .unwrap_or(0);
                let known = if kind == "filter" { CUSTOM_FILTERS } else { &[][..] };
                let ours = CUSTOM_FILTERS.join(", ");
                let (help, help_es) = match super::diag::did_you_mean(name, known.iter().copied()) {
                    Some(h) => (h.clone(), h.replace("did you mean", "¿quiso decir")),
                    None if kind == "filter" => (
                        format!(
                            "the clinic's filters are {ours}, plus minijinja's (upper, lower, title, default, join, …)"
                        ),
                        format!(
                            "los filtros de la clínica son {ours}, y los de minijinja (upper, lower, title, default, join, …)"
                        ),
                    ),
                    None => (
                        "minijinja's tests are defined, none, number, string, odd, even, …".to_string(),
                        "las pruebas de minijinja son defined, none, number, string, odd, even, …".to_string(),
                    ),
                };
                out.push(Problem {
                    message: format!("unknown {kind} `{name}`: the reply would fail when sent"),
                    help,
                    help_es,
                    offset,
                    len: name.len(),
                });
            }
            idx += 1;
        }
        out
    }
}

/// The filters clinicflow adds to minijinja's.
pub const CUSTOM_FILTERS: &[&str] = &["date_long", "time_hm"];

/// First occurrence of `word` not inside a longer identifier: (byte offset, length).
fn find_word(source: &str, word: &str) -> Option<(usize, usize)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    source.match_indices(word).map(|(i, _)| i).find_map(|i| {
        let before = source[..i].chars().next_back();
        let after = source[i + word.len()..].chars().next();
        (!before.is_some_and(ident) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_'))
            .then_some((i, word.len()))
    })
}

fn lang_of(state: &State) -> Lang {
    state
        .lookup("session")
        .and_then(|s| s.get_attr("lang").ok())
        .and_then(|l| l.as_str().and_then(Lang::parse))
        .unwrap_or_default()
}

const DAYS_ES: [&str; 7] = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "2026-11-26" → "jueves 26 de noviembre" / "Thursday, November 26".
pub fn format_date(date: Date, lang: Lang) -> String {
    let wd = date.weekday().to_monday_zero_offset() as usize;
    let m = (date.month() - 1) as usize;
    match lang {
        Lang::Es => format!("{} {} de {}", DAYS_ES[wd], date.day(), MONTHS_ES[m]),
        Lang::En => format!("{}, {} {}", DAYS_EN[wd], MONTHS_EN[m], date.day()),
    }
}

fn date_long(state: &State, value: MjValue) -> String {
    let s = value.to_string();
    match s.parse::<Date>() {
        Ok(d) => format_date(d, lang_of(state)),
        Err(_) => s,
    }
}

fn time_hm(value: MjValue) -> String {
    let s = value.to_string();
    match crate::flow::clinic::parse_hhmm(&s) {
        Some(t) => format!("{:02}:{:02}", t.hour(), t.minute()),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_with_filters_per_language() {
        let mut t = Templates::new();
        t.add(
            "a",
            "Turno el {{ slots.date | date_long }} a las {{ slots.time | time_hm }}",
        )
        .unwrap();
        let text = Text {
            es: Some("a".into()),
            en: None,
        };
        let ctx = json!({"slots": {"date": "2026-11-26", "time": "9:30"}, "session": {"lang": "es"}});
        assert_eq!(
            t.render(&text, Lang::Es, &ctx).unwrap(),
            "Turno el jueves 26 de noviembre a las 09:30"
        );
        let ctx = json!({"slots": {"date": "2026-11-26", "time": "9:30"}, "session": {"lang": "en"}});
        assert!(
            t.render(&text, Lang::En, &ctx)
                .unwrap()
                .contains("Thursday, November 26")
        );
    }

    #[test]
    fn check_finds_unknown_names_fields_filters_and_tests() {
        let mut t = Templates::new();
        t.add(
            "x",
            "Hola {{ clinica.nombre }} {{ slots.fecha_estudio }} {{ slots.date | fecha_larga }}\n\
             {% if slots.date is fechita %}{{ clinic.name | upper }}{{ clinic.nombre }}{% endif %}\
             {% for d in clinic.days %}{{ d }}{{ loop.index }}{% endfor %}",
        )
        .unwrap();
        let fields = [("clinic", vec!["name".to_string(), "days".to_string()])];
        let scope = Scope {
            names: &["slots", "clinic"],
            slots: Some(&["date"]),
            fields: &fields,
        };
        let src = t.env.get_template("x").unwrap().source().to_string();
        let got: Vec<(String, &str)> = t
            .check("x", &scope)
            .into_iter()
            .map(|p| (p.message, &src[p.offset..p.offset + p.len]))
            .collect();
        let words: Vec<&str> = got.iter().map(|(_, w)| *w).collect();
        assert_eq!(
            words,
            [
                "clinic.nombre",
                "clinica",
                "slots.fecha_estudio",
                "fecha_larga",
                "fechita"
            ],
            "{got:?}"
        );
        // Shared texts do not know the flow, so any slot is accepted there.
        let shared = Scope { slots: None, ..scope };
        assert_eq!(t.check("x", &shared).len(), 4);
    }

    #[test]
    fn syntax_errors_report_line() {
        let mut t = Templates::new();
        let (msg, line, _) = t.add("b", "hola\n{{ slots.x ").unwrap_err();
        assert_eq!(line, 2);
        assert!(!msg.is_empty());
    }

    #[test]
    fn null_values_render_empty() {
        let mut t = Templates::new();
        t.add("n", "[{{ clinic.email }}]").unwrap();
        let text = Text {
            es: Some("n".into()),
            en: None,
        };
        assert_eq!(
            t.render(&text, Lang::Es, &json!({"clinic": {"email": null}})).unwrap(),
            "[]"
        );
    }

    #[test]
    fn missing_values_render_empty() {
        let mut t = Templates::new();
        t.add("c", "[{{ slots.nope.deeper }}]").unwrap();
        let text = Text {
            es: Some("c".into()),
            en: None,
        };
        assert_eq!(t.render(&text, Lang::Es, &json!({"slots": {}})).unwrap(), "[]");
    }
}
