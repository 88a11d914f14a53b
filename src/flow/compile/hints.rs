//! Plain-language help for the mistakes admins make most, in Spanish and English. Each
//! function looks at the raw error and the text around it and, when it recognises the
//! mistake, says what is wrong and the fix in the admin's words (no parser jargon).
//! `Diagnostics::localize` shows the Spanish text first for Spanish-speaking clinics.

use crate::flow::diag::Hint;

fn hint(message_en: String, es: String, en: String) -> (String, Hint) {
    (message_en, Hint { es, en })
}

/// A Rhai condition that failed to compile: (better message, help) when recognisable.
/// `intents` are the flow's intent names, `error` Rhai's message.
pub fn rhai(src: &str, error: &str, intents: &[&str]) -> Option<(String, Hint)> {
    let words: Vec<&str> = src
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let outside_quotes = strip_strings(src);
    for (word, op, es_word) in [("or", "||", "o"), ("and", "&&", "y"), ("not", "!", "no")] {
        let ow: Vec<&str> = outside_quotes
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        if ow.contains(&word) {
            return Some(hint(
                format!("conditions do not understand the word `{word}` in `{src}`"),
                format!(
                    "escriba `{op}` en lugar de `{word}` (\"{es_word}\"), por ejemplo `intent == \"affirm\" {op} intent == \"deny\"`"
                ),
                format!("write `{op}` instead of `{word}`, e.g. `intent == \"affirm\" {op} intent == \"deny\"`"),
            ));
        }
    }
    if src.contains(['“', '”', '‘', '’']) {
        return Some(hint(
            format!("`{src}` uses typographic quotes (“ ”)"),
            "use comillas rectas `\"`: los editores de texto como Word las cambian por “ ”".into(),
            "use straight double quotes `\"`; word processors turn them into “ ”".into(),
        ));
    }
    if let Some(quoted) = single_quoted(src) {
        return Some(hint(
            format!("`'{quoted}'` is in single quotes; text in conditions goes in double quotes"),
            format!(
                "escriba \"{quoted}\" con comillas dobles; si la condición va entre comillas en el YAML, use comillas simples afuera: if: 'intent == \"{quoted}\"'"
            ),
            format!(
                "write \"{quoted}\" in double quotes; if the YAML value itself is quoted, quote it with single quotes: if: 'intent == \"{quoted}\"'"
            ),
        ));
    }
    if (error.contains("Variable not found") || error.contains("Undefined variable"))
        && let Some(name) = words
            .iter()
            .find(|w| intents.contains(w) || crate::flow::bot::BUILTIN_INTENTS.contains(w))
    {
        return Some(hint(
            format!("`{name}` is an intent name, not a value conditions can read"),
            format!("los nombres de intenciones van entre comillas dobles: intent == \"{name}\""),
            format!("intent names go in double quotes: intent == \"{name}\""),
        ));
    }
    if let Some(w) = words
        .iter()
        .find(|w| matches!(**w, "True" | "False" | "None" | "null" | "nil"))
    {
        let fix = match *w {
            "True" => "true",
            "False" => "false",
            _ => "()",
        };
        return Some(hint(
            format!("conditions do not know `{w}`"),
            format!("escriba `{fix}` (en minúsculas) en lugar de `{w}`"),
            format!("write `{fix}` instead of `{w}`"),
        ));
    }
    if !src.contains("==") && single_equals(&outside_quotes) {
        return Some(hint(
            format!("`{src}` assigns with `=`; a condition compares with `==`"),
            "para comparar escriba `==` (dos signos igual), por ejemplo intent == \"affirm\"".into(),
            "compare with `==` (two equals signs), e.g. intent == \"affirm\"".into(),
        ));
    }
    None
}

/// `src` with the contents of "double-quoted" strings blanked out.
fn strip_strings(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut inside = false;
    for c in src.chars() {
        if c == '"' {
            inside = !inside;
        }
        out.push(if inside && c != '"' { ' ' } else { c });
    }
    out
}

fn single_quoted(src: &str) -> Option<&str> {
    let start = src.find('\'')?;
    let rest = &src[start + 1..];
    let end = rest.find('\'')?;
    Some(&rest[..end])
}

fn single_equals(src: &str) -> bool {
    let b = src.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'='
            && !matches!(b.get(i.wrapping_sub(1)), Some(b'=' | b'!' | b'<' | b'>'))
            && b.get(i + 1) != Some(&b'=')
    })
}

/// A YAML syntax error at line `line` (1-based): the mistake behind it, when recognisable,
/// with the line it is on (often before the line the parser stopped at).
pub fn yaml(src: &str, line: usize) -> Option<(String, Hint, usize)> {
    yaml_mistake(src, line).map(|(l, (m, h))| (m, h, l))
}

fn yaml_mistake(src: &str, line: usize) -> Option<(usize, (String, Hint))> {
    let lines: Vec<&str> = src.lines().collect();
    // Look at the error line and the few before it: the parser notices late.
    let from = line.saturating_sub(4);
    let to = line.min(lines.len());
    if let Some((n, _)) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.starts_with('\t') || l.trim_start_matches(' ').starts_with('\t'))
    {
        return Some((
            n + 1,
            hint(
                format!("line {} is indented with a tab", n + 1),
                "YAML solo acepta espacios para la sangría: reemplace el tabulador (→) por espacios".into(),
                "YAML indents with spaces only: replace the tab (shown as →) with spaces".into(),
            ),
        ));
    }
    for n in (from..to).rev() {
        let l = lines[n];
        let Some((key, value)) = key_value(l) else { continue };
        let v = value.trim();
        if v.starts_with('"') && unescaped_quotes(v) % 2 == 1 {
            return Some((
                n + 1,
                hint(
                    format!(
                        "the text of `{key}` on line {} opens a quote `\"` that is never closed",
                        n + 1
                    ),
                    "cierre las comillas al final del texto: `\"...\"`".into(),
                    "close the quote at the end of the text: `\"...\"`".into(),
                ),
            ));
        }
        if v.starts_with("{{") {
            return Some((
                n + 1,
                hint(
                    format!(
                        "the text of `{key}` on line {} starts with `{{{{` and YAML reads it as a block",
                        n + 1
                    ),
                    format!("ponga el texto entre comillas dobles: {key}: \"{v}\""),
                    format!("put the text in double quotes: {key}: \"{v}\""),
                ),
            ));
        }
        let plain = !v.starts_with(['"', '\'', '{', '[', '|', '>']);
        if plain && (v.contains(": ") || v.ends_with(':')) {
            let quoted = v.replace('"', "\\\"");
            return Some((
                n + 1,
                hint(
                    format!(
                        "the text of `{key}` on line {} contains `: `, which YAML reads as a new key",
                        n + 1
                    ),
                    format!("ponga el texto entre comillas dobles: {key}: \"{quoted}\""),
                    format!("put the text in double quotes: {key}: \"{quoted}\""),
                ),
            ));
        }
    }
    None
}

/// `  - say: hola` → ("say", " hola").
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    let (key, value) = t.split_once(':')?;
    let ok = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    (ok && (value.is_empty() || value.starts_with(' '))).then_some((key, value))
}

fn unescaped_quotes(s: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

/// JSON Schema `type` values.
pub const JSON_TYPES: [&str; 7] = ["string", "integer", "number", "boolean", "object", "array", "null"];

/// An invalid JSON Schema (`schema`): the wrong `type`, or a `pattern` that is not a regex.
pub fn json_schema(schema: &serde_json::Value) -> Option<(String, Hint, &'static str)> {
    let obj = schema.as_object()?;
    if let Some(t) = obj
        .get("type")
        .and_then(|t| t.as_str())
        .filter(|t| !JSON_TYPES.contains(t))
    {
        let spanish = match t {
            "fecha" | "date" => Some("date.json"),
            "hora" | "time" => Some("time.json"),
            "texto" | "text" | "str" => Some("string"),
            "numero" | "número" | "int" | "entero" => Some("integer"),
            _ => None,
        };
        let (es, en) = match spanish {
            Some(f) if f.ends_with(".json") => (
                format!("use el archivo preparado para eso: `schema: {f}`"),
                format!("use the file made for it: `schema: {f}`"),
            ),
            Some(ty) => (format!("escriba `type: {ty}`"), format!("write `type: {ty}`")),
            None => {
                let close = crate::flow::diag::did_you_mean(t, JSON_TYPES)
                    .map(|h| h.replace("did you mean", "¿quiso decir") + " ")
                    .unwrap_or_default();
                let close_en = crate::flow::diag::did_you_mean(t, JSON_TYPES)
                    .map(|h| h + " ")
                    .unwrap_or_default();
                (
                    format!("{close}`type` puede ser: {}", JSON_TYPES.join(", ")),
                    format!("{close_en}`type` takes one of: {}", JSON_TYPES.join(", ")),
                )
            }
        };
        return Some((format!("`{t}` is not a JSON Schema type"), Hint { es, en }, "type"));
    }
    if let Some(p) = obj.get("pattern").and_then(|p| p.as_str())
        && let Err(e) = regex::Regex::new(p)
    {
        let why = e
            .to_string()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        return Some((
            format!("`pattern` is not a valid regular expression: {why}"),
            Hint {
                es: "revise que cada paréntesis y corchete abierto se cierre; dentro de comillas dobles la barra invertida va doble (\\\\d)".into(),
                en: "check that every opened parenthesis and bracket is closed; inside double quotes a backslash is written twice (\\\\d)".into(),
            },
            "pattern",
        ));
    }
    None
}

/// Schema files patients' slots usually want, by the words admins write.
pub fn schema_file_for(name: &str) -> Option<&'static str> {
    let stem = name.trim_end_matches(".json").to_lowercase();
    Some(match stem.as_str() {
        "fecha" | "dia" | "día" | "day" => "date.json",
        "hora" | "horario" | "hour" => "time.json",
        "nombre" | "name" | "paciente" | "nombre_apellido" => "person_name.json",
        "dni" | "documento" | "document" | "doc" => "document_id.json",
        "especialidad" | "specialities" | "speciality" => "specialty.json",
        "cobertura" | "obra_social" | "prepaga" | "insurance" => "coverage.json",
        "opcion" | "opción" | "option" => "choice.json",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhai_mistakes_are_recognised() {
        let m = |src: &str, err: &str| {
            rhai(src, err, &["book_appointment"])
                .map(|(m, _)| m)
                .unwrap_or_default()
        };
        assert!(m("intent == \"affirm\" or intent == \"deny\"", "Unexpected 'or'").contains("`or`"));
        assert!(m("slots.a and slots.b", "").contains("`and`"));
        assert!(m("intent == 'affirm'", "Invalid character").contains("single quotes"));
        assert!(m("intent == affirm", "Variable not found: affirm").contains("intent name"));
        assert!(m("intent == book_appointment", "Undefined variable").contains("intent name"));
        assert!(m("intent = \"affirm\"", "").contains("`==`"));
        assert!(m("slots.x == None", "Variable not found").contains("`None`"));
        // "or" inside a string is not the operator.
        assert!(rhai("intent == \"or\"", "", &[]).is_none());
    }

    #[test]
    fn yaml_mistakes_are_recognised() {
        let m = |src: &str, line| yaml(src, line).map(|(m, _, _)| m).unwrap_or_default();
        assert!(m("a:\n  say: Horario: de 8 a 20\n  b: 1\n", 2).contains("contains `: `"));
        assert!(m("a:\n  say: \"hola\n  b: 1\n", 3).contains("never closed"));
        assert!(m("a:\n  say: {{ slots.x }}\n", 2).contains("starts with `{{`"));
        assert!(m("a:\n\tb: 1\n", 2).contains("tab"));
        assert!(m("a:\n  say: \"ok: fine\"\n", 2).is_empty());
    }

    #[test]
    fn schema_mistakes_are_recognised() {
        let (m, h, at) = json_schema(&serde_json::json!({"type": "fecha"})).expect("hint");
        assert!(m.contains("`fecha`") && h.en.contains("date.json") && at == "type");
        let (m, _, at) = json_schema(&serde_json::json!({"type": "string", "pattern": "^(\\d+$"})).expect("hint");
        assert!(m.contains("regular expression") && at == "pattern");
        assert_eq!(schema_file_for("fecha.json"), Some("date.json"));
    }
}
