//! The check an edit must pass before it is written: the whole clinic compiled with the edited
//! file replaced in memory (the same `compile` that `clinicflow check`, `serve` and the
//! reloader run), and, for a file in flows/, the editor schema (`schemas/flow.schema.json`)
//! as a second net that `compile` does not cast.

use serde_json::Value;

use super::paths::{BotPath, FileKind};
use crate::flow::compile::{Sources, compile};
use crate::flow::diag::{Diagnostic, Diagnostics, Hint};
use crate::flow::yaml;

/// The editor schema's path among the sources.
pub const EDITOR_SCHEMA: &str = "schemas/flow.schema.json";

/// Compiles `sources` with `path` holding `content`. Every problem is returned at once.
pub fn check(mut sources: Sources, path: &BotPath, content: &str) -> Result<(), Diagnostics> {
    sources.insert(path.as_str(), content);
    let mut diags = match compile(&sources) {
        Ok(_) => Diagnostics::default(),
        Err(d) => d,
    };
    // The schema repeats much of what stage one says (an unknown key): only when compile
    // found nothing wrong in this file does it get a say, so each mistake is told once.
    if path.kind() == FileKind::Flow && !diags.0.iter().any(|d| d.file == path.as_str()) {
        for d in editor_schema(&sources, path.as_str(), content) {
            diags.push(d);
        }
    }
    if diags.is_empty() {
        return Ok(());
    }
    diags.sort();
    Err(diags)
}

/// The flow file's problems according to the editor schema (none when the schema itself is
/// missing or broken: compile reports a broken one).
fn editor_schema(sources: &Sources, path: &str, content: &str) -> Vec<Diagnostic> {
    let Ok(schema) = serde_json::from_str::<Value>(sources.text(EDITOR_SCHEMA)) else {
        return Vec::new();
    };
    let Ok(validator) = jsonschema::validator_for(&schema) else {
        return Vec::new();
    };
    let Ok(doc) = yaml::parse(content) else {
        return Vec::new(); // compile has said why already
    };
    validator
        .iter_errors(&doc.value)
        .take(20)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let pos = doc.nearest(&dotted(&doc.value, &pointer));
            Diagnostic::new(
                path,
                content,
                pos,
                format!("this does not match the editor schema ({EDITOR_SCHEMA}): {e}"),
            )
            .with_hint(Hint {
                es:
                    "compare con docs/flows.md: el esquema del editor dice qué claves acepta cada bloque y de qué tipo \
                     es cada valor"
                        .into(),
                en: "compare with docs/flows.md: the editor schema says which keys each block takes and what type \
                     each value is"
                    .into(),
            })
        })
        .collect()
}

/// A JSON pointer (`/states/check/next/0`) as the YAML index writes paths
/// (`states.check.next[0]`).
fn dotted(root: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut at = Some(root);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) if seg.parse::<usize>().is_ok() => {
                let i = seg.parse::<usize>().unwrap_or(0);
                out.push_str(&format!("[{i}]"));
                at = items.get(i);
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&seg);
                at = other.and_then(|v| v.get(&seg));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{EDITOR_SCHEMA, check, dotted};
    use crate::editor::BotPath;
    use crate::flow::compile::Sources;

    fn demo() -> Sources {
        Sources::from_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("the demo")
    }

    #[test]
    fn the_demo_passes_and_a_broken_template_is_found_by_the_full_compile() {
        let path = BotPath::parse("prompts/es/greeting.j2").expect("path");
        let sources = demo();
        let text = sources.text(path.as_str()).to_string();
        assert!(check(sources.clone(), &path, &text).is_ok());
        let diags = check(sources, &path, "{% if %}").expect_err("broken");
        assert!(diags.0.iter().any(|d| d.file == path.as_str()), "{diags}");
    }

    #[test]
    fn the_editor_schema_is_a_second_net_for_flow_files_with_positions() {
        let mut sources = demo();
        // A stricter editor schema than the compiler: short descriptions only.
        sources.insert(
            EDITOR_SCHEMA,
            r#"{"type": "object", "properties": {"description": {"maxLength": 5}}}"#,
        );
        let path = BotPath::parse("flows/thanks.yaml").expect("path");
        let text = sources.text(path.as_str()).to_string();
        let diags = check(sources, &path, &text).expect_err("the schema refuses it");
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        assert_eq!((d.file.as_str(), d.line), ("flows/thanks.yaml", 3), "{diags}");
        assert!(d.message.contains("editor schema"), "{}", d.message);
        assert!(d.help_es.is_some(), "help in Spanish too");
    }

    #[test]
    fn pointers_become_the_yaml_index_paths() {
        let v = json!({ "states": { "check": { "next": [ { "if": "x" } ] } } });
        assert_eq!(dotted(&v, "/states/check/next/0/if"), "states.check.next[0].if");
        assert_eq!(dotted(&v, ""), "");
        assert_eq!(dotted(&v, "/a~1b"), "a/b");
    }
}
