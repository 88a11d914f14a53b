//! Draws a flow as a Mermaid or Graphviz diagram, or as a self-contained SVG (no script, no
//! network), for `clinicflow graph` and the API. Labels are for clinic admins: an arrow shows
//! the transition's `when:` description (or a short form of its condition), "otherwise" for
//! the catch-all, and what it says or does; a box shows what its state asks, does and says.

mod svg;

use std::fmt::Write;
use std::sync::LazyLock;

use regex::Regex;

use super::bot::{Bot, Flow, StateKind, Target, Transition};
use super::templates::Text;

pub use svg::{html, svg};

/// The most of a text or condition a label shows.
const MAX: usize = 42;

/// A state's box: its name, then one line per thing it does.
pub fn state_lines(bot: &Bot, flow: &Flow, i: usize) -> Vec<String> {
    let st = &flow.states[i];
    let mut lines = vec![st.name.clone()];
    if let Some(t) = &st.say {
        lines.push(format!("says {}", text(bot, t)));
    }
    match &st.kind {
        StateKind::Collect(list) => lines.push(format!("asks: {}", list.join(", "))),
        StateKind::Action(call) => lines.push(format!("does: {}", call.action.as_str())),
        StateKind::Expect(list) => lines.push(format!("waits for: {}", list.join(", "))),
        StateKind::Plain => {}
    }
    lines
}

/// An arrow's label lines: the condition (or "otherwise"), then what the transition says and
/// does. Empty when it is the state's only, unconditional way out and does nothing.
pub fn edge_lines(bot: &Bot, st_next: &[Transition], t: &Transition) -> Vec<String> {
    let mut lines = Vec::new();
    match (&t.label, &t.guard) {
        (Some(l), _) => lines.push(short(l)),
        (None, Some(g)) => lines.push(short_guard(&g.source)),
        (None, None) if st_next.len() > 1 => lines.push("otherwise".to_string()),
        (None, None) => {}
    }
    if let Some(s) = &t.say {
        lines.push(format!("says {}", text(bot, s)));
    }
    for e in &t.effects {
        lines.push(format!("does: {}", e.action.as_str()));
    }
    lines
}

/// An inline text's first line (Spanish first), shortened and quoted; a template file by
/// its name.
fn text(bot: &Bot, t: &Text) -> String {
    let Some(name) = t.template_for(crate::lang::Lang::Es) else {
        return String::new();
    };
    if name.starts_with("prompts/") {
        return name.rsplit('/').next().unwrap_or(name).to_string();
    }
    let src = bot.templates.source(name).unwrap_or_default();
    format!("“{}”", short(src.lines().find(|l| !l.trim().is_empty()).unwrap_or("")))
}

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= MAX {
        return s;
    }
    let cut: String = s.chars().take(MAX - 1).collect();
    format!("{}…", cut.trim_end())
}

/// `(result.alternatives ?? []).len() > 0 && intent == "affirm"` → `some alternatives and
/// affirm`: the condition without the code around it.
pub fn short_guard(src: &str) -> String {
    static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            (r#"\s*\?\?\s*(\[\]|""|\(\)|0|false)"#, ""),
            (r"\(\s*([\w.]+)\s*\)", "$1"),
            (r"([\w.]+)\.len\(\)\s*(>\s*0|>=\s*1|!=\s*0)", "some $1"),
            (r"([\w.]+)\.len\(\)\s*==\s*0", "no $1"),
            (r#"intent\s*==\s*"(\w+)""#, "$1"),
            (r#"intent\s*!=\s*"(\w+)""#, "not $1"),
            (r"\b(slots|result|session|clinic)\.", ""),
            (r"&&", " and "),
            (r"\|\|", " or "),
            (r"!=", "≠"),
            (r"==", "="),
            (r"!\s*(\w)", "not $1"),
            (r#""([^"]*)""#, "$1"),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("graph label rule"), r))
        .collect()
    });
    let mut s = src.to_string();
    for (re, with) in RULES.iter() {
        s = re.replace_all(&s, *with).into_owned();
    }
    short(&s)
}

fn target_name(flow: &Flow, t: &Target) -> String {
    match t {
        Target::Goto(j) => flow.states[*j].name.clone(),
        Target::End => "end".into(),
        Target::Flow(f) => format!("flow {f}"),
    }
}

/// Mermaid: node ids are prefixed so a state may be called `end` or `start` (keywords there),
/// and `<`, `>` in labels are written as entity codes so they are not read as HTML.
fn mid(name: &str) -> String {
    format!("s_{name}")
}

fn mtext(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;"))
        .collect::<Vec<_>>()
        .join("<br/>")
}

pub fn mermaid(bot: &Bot, flow: &Flow) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    __start((start)) --> {}", mid(&flow.states[flow.start].name));
    for (i, st) in flow.states.iter().enumerate() {
        let _ = writeln!(out, "    {}[\"{}\"]", mid(&st.name), mtext(&state_lines(bot, flow, i)));
        if st.end && st.next.is_empty() {
            let _ = writeln!(out, "    {} --> __end((end))", mid(&st.name));
        }
        for t in &st.next {
            let to = match &t.target {
                Target::Goto(j) => mid(&flow.states[*j].name),
                Target::End => "__end((end))".to_string(),
                Target::Flow(f) => format!("flow_{f}[[\"{f}\"]]"),
            };
            let lines = edge_lines(bot, &st.next, t);
            if lines.is_empty() {
                let _ = writeln!(out, "    {} --> {to}", mid(&st.name));
            } else {
                let _ = writeln!(out, "    {} -->|\"{}\"| {to}", mid(&st.name), mtext(&lines));
            }
        }
    }
    out
}

fn dtext(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
        .collect::<Vec<_>>()
        .join("\\n")
}

pub fn dot(bot: &Bot, flow: &Flow) -> String {
    let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box];\n", flow.name);
    let _ = writeln!(
        out,
        "    __start [shape=circle,label=\"start\"];\n    __start -> \"{}\";",
        flow.states[flow.start].name
    );
    let mut has_end = false;
    for (i, st) in flow.states.iter().enumerate() {
        let _ = writeln!(
            out,
            "    \"{}\" [label=\"{}\"];",
            st.name,
            dtext(&state_lines(bot, flow, i))
        );
        if st.end && st.next.is_empty() {
            has_end = true;
            let _ = writeln!(out, "    \"{}\" -> __end;", st.name);
        }
        for t in &st.next {
            let to = match &t.target {
                Target::End => {
                    has_end = true;
                    "__end".to_string()
                }
                other => format!("\"{}\"", target_name(flow, other).replace("flow ", "flow:")),
            };
            let l = dtext(&edge_lines(bot, &st.next, t));
            let _ = writeln!(out, "    \"{}\" -> {to} [label=\"{l}\"];", st.name);
        }
    }
    if has_end {
        out.push_str("    __end [shape=doublecircle,label=\"end\"];\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_shown_without_code() {
        assert_eq!(
            short_guard("(result.alternatives ?? []).len() > 0"),
            "some alternatives"
        );
        assert_eq!(short_guard("intent == \"affirm\" && result.ok"), "affirm and ok");
        assert_eq!(short_guard("!result.available"), "not available");
        assert_eq!(short_guard("slots.coverage != \"Particular\""), "coverage ≠ Particular");
        assert!(short_guard(&"x || ".repeat(30)).ends_with('…'));
    }

    #[test]
    fn the_demo_booking_diagram_is_readable() {
        let bot = crate::flow::compile::compile_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("demo");
        let flow = bot.flow("book_appointment").expect("flow");
        let m = mermaid(&bot, flow);
        assert!(m.contains("otherwise"), "{m}");
        assert!(m.contains("says “"), "{m}");
        assert!(m.contains("does: find_availability"), "{m}");
        assert!(!m.contains("?? []"), "{m}");
        assert!(m.contains("hay alternativas"), "the `when:` description: {m}");
        assert!(m.contains("some alternatives"), "a short form without one: {m}");
        let d = dot(&bot, flow);
        assert!(d.contains("otherwise") && d.starts_with("digraph"), "{d}");
    }
}
