//! Draws a flow as a Mermaid or Graphviz diagram, for `clinicflow graph` and the API.

use std::fmt::Write;

use super::bot::{Flow, StateKind, Target};

fn label(flow: &Flow, i: usize) -> String {
    let st = &flow.states[i];
    let kind = match &st.kind {
        StateKind::Collect(list) => format!("collect: {}", list.join(", ")),
        StateKind::Action(call) => format!("action: {}", call.action.as_str()),
        StateKind::Expect(list) => format!("expect: {}", list.join(", ")),
        StateKind::Plain => String::new(),
    };
    if kind.is_empty() {
        st.name.clone()
    } else {
        format!("{}<br/>{kind}", st.name)
    }
}

fn edge_label(guard: Option<&str>) -> String {
    guard.map(|g| g.replace('"', "'")).unwrap_or_default()
}

/// Mermaid: node ids are prefixed so a state may be called `end` or `start` (keywords there),
/// and `<`, `>` in labels are written as entity codes so they are not read as HTML.
fn mid(name: &str) -> String {
    format!("s_{name}")
}

fn mtext(s: &str) -> String {
    s.replace('"', "'")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace("#lt;br/#gt;", "<br/>")
}

pub fn mermaid(flow: &Flow) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    __start((start)) --> {}", mid(&flow.states[flow.start].name));
    for (i, st) in flow.states.iter().enumerate() {
        let _ = writeln!(out, "    {}[\"{}\"]", mid(&st.name), mtext(&label(flow, i)));
        if st.end && st.next.is_empty() {
            let _ = writeln!(out, "    {} --> __end((end))", mid(&st.name));
        }
        for t in &st.next {
            let to = match &t.target {
                Target::Goto(j) => mid(&flow.states[*j].name),
                Target::End => "__end((end))".to_string(),
                Target::Flow(f) => format!("flow_{f}[[\"{f}\"]]"),
            };
            match t.guard.as_ref() {
                Some(g) => {
                    let _ = writeln!(out, "    {} -->|\"{}\"| {to}", mid(&st.name), mtext(&g.source));
                }
                None => {
                    let _ = writeln!(out, "    {} --> {to}", mid(&st.name));
                }
            }
        }
    }
    out
}

pub fn dot(flow: &Flow) -> String {
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
            label(flow, i).replace("<br/>", "\\n").replace('"', "'")
        );
        if st.end && st.next.is_empty() {
            has_end = true;
            let _ = writeln!(out, "    \"{}\" -> __end;", st.name);
        }
        for t in &st.next {
            let to = match &t.target {
                Target::Goto(j) => format!("\"{}\"", flow.states[*j].name),
                Target::End => {
                    has_end = true;
                    "__end".to_string()
                }
                Target::Flow(f) => format!("\"flow:{f}\""),
            };
            let l = t
                .guard
                .as_ref()
                .map(|g| edge_label(Some(&g.source)))
                .unwrap_or_default();
            let _ = writeln!(out, "    \"{}\" -> {to} [label=\"{}\"];", st.name, l.replace('"', "'"));
        }
    }
    if has_end {
        out.push_str("    __end [shape=doublecircle,label=\"end\"];\n");
    }
    out.push_str("}\n");
    out
}
