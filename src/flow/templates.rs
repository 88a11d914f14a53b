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
        env.add_filter("date_long", date_long);
        env.add_filter("time_hm", time_hm);
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

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    pub fn render(&self, text: &Text, lang: Lang, ctx: &serde_json::Value) -> Result<String, RenderError> {
        let name = text.template_for(lang).unwrap_or_default();
        let err = |e: minijinja::Error| RenderError {
            name: name.to_string(),
            message: e.to_string(),
        };
        let tmpl = self.env.get_template(name).map_err(err)?;
        let out = tmpl.render(MjValue::from(minijinja::value::Serde(ctx))).map_err(err)?;
        Ok(out.trim().to_string())
    }
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
