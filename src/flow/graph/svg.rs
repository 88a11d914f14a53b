//! A flow as a self-contained SVG: states in rows by distance from the start, arrows down to
//! later rows and curved on the right back to earlier ones, every label as text. No script
//! and no network, so it opens anywhere (a mermaid page would need its JavaScript).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use super::{edge_lines, state_lines};
use crate::flow::bot::{Bot, Flow, Target};

const CHAR_W: f64 = 7.2;
const LINE_H: f64 = 16.0;
const PAD: f64 = 10.0;
const ROW_GAP: f64 = 90.0;
const COL_GAP: f64 = 60.0;
const MARGIN: f64 = 30.0;

struct Node {
    lines: Vec<String>,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    round: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn size(lines: &[String]) -> (f64, f64) {
    let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    (chars * CHAR_W + 2.0 * PAD, lines.len() as f64 * LINE_H + 2.0 * PAD)
}

/// Node keys: `s<i>` for state i, `start`, `end`, `flow:<name>`.
fn key(t: &Target) -> String {
    match t {
        Target::Goto(j) => format!("s{j}"),
        Target::End => "end".into(),
        Target::Flow(f) => format!("flow:{f}"),
    }
}

pub fn svg(bot: &Bot, flow: &Flow) -> String {
    // Edges: (from, to, label lines).
    let mut edges: Vec<(String, String, Vec<String>)> = vec![("start".into(), format!("s{}", flow.start), vec![])];
    for (i, st) in flow.states.iter().enumerate() {
        if st.end && st.next.is_empty() {
            edges.push((format!("s{i}"), "end".into(), vec![]));
        }
        for t in &st.next {
            edges.push((format!("s{i}"), key(&t.target), edge_lines(bot, &st.next, t)));
        }
    }
    // Rows by distance from the start (breadth first); what is never reached goes last.
    let mut rank: HashMap<String, usize> = HashMap::from([("start".to_string(), 0)]);
    let mut queue = VecDeque::from(["start".to_string()]);
    while let Some(n) = queue.pop_front() {
        let r = rank[&n];
        for (from, to, _) in &edges {
            if *from == n && !rank.contains_key(to) {
                rank.insert(to.clone(), r + 1);
                queue.push_back(to.clone());
            }
        }
    }
    let mut keys: Vec<String> = vec!["start".into()];
    keys.extend((0..flow.states.len()).map(|i| format!("s{i}")));
    for (_, to, _) in &edges {
        if !keys.contains(to) {
            keys.push(to.clone());
        }
    }
    let last = rank.values().copied().max().unwrap_or(0) + 1;
    // The end circle goes below everything.
    let bottom = last.max(1);
    let mut nodes: HashMap<String, Node> = HashMap::new();
    for k in &keys {
        let (lines, round) = match k.as_str() {
            "start" => (vec!["start".to_string()], true),
            "end" => (vec!["end".to_string()], true),
            s if s.starts_with("flow:") => (vec![s.replacen("flow:", "→ flow ", 1)], false),
            s => {
                let i: usize = s[1..].parse().unwrap_or(0);
                (state_lines(bot, flow, i), false)
            }
        };
        let (w, h) = size(&lines);
        nodes.insert(
            k.clone(),
            Node {
                lines,
                x: 0.0,
                y: 0.0,
                w,
                h,
                round,
            },
        );
    }
    let row_of = |k: &String| {
        if k == "end" {
            bottom
        } else {
            rank.get(k).copied().unwrap_or(last)
        }
    };
    let rows = bottom.max(last) + 1;
    let mut by_row: Vec<Vec<String>> = vec![Vec::new(); rows];
    for k in &keys {
        by_row[row_of(k)].push(k.clone());
    }
    let widths: Vec<f64> = by_row
        .iter()
        .map(|r| r.iter().map(|k| nodes[k].w).sum::<f64>() + COL_GAP * r.len().saturating_sub(1) as f64)
        .collect();
    let width = widths.iter().copied().fold(0.0, f64::max) + 2.0 * MARGIN + 260.0;
    let mut y = MARGIN;
    for (r, row) in by_row.iter().enumerate() {
        let mut x = MARGIN + (width - 260.0 - 2.0 * MARGIN - widths[r]) / 2.0;
        let h = row.iter().map(|k| nodes[k].h).fold(0.0, f64::max);
        for k in row {
            if let Some(n) = nodes.get_mut(k) {
                n.x = x;
                n.y = y + (h - n.h) / 2.0;
                x += n.w + COL_GAP;
            }
        }
        if !row.is_empty() {
            y += h + ROW_GAP;
        }
    }
    let height = y - ROW_GAP + MARGIN + 20.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"12\">"
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&flow.name));
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n",
    );
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let mut labels = String::new();
    let mut back = 0.0;
    for (from, to, lines) in &edges {
        let (a, b) = (&nodes[from], &nodes[to]);
        let (lx, ly);
        if row_of(to) > row_of(from) {
            let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
            let (x2, y2) = (b.x + b.w / 2.0, b.y);
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1},{y1:.1} L{x2:.1},{y2:.1}\" stroke=\"#555\" fill=\"none\" marker-end=\"url(#arrow)\"/>"
            );
            (lx, ly) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        } else {
            // Back to an earlier row (or the same state): around the right side.
            back += 18.0;
            let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
            let (x2, y2) = (b.x + b.w, b.y + b.h / 2.0 + 6.0);
            let cx = x1.max(x2) + 50.0 + back;
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1},{y1:.1} C{cx:.1},{y1:.1} {cx:.1},{y2:.1} {x2:.1},{y2:.1}\" stroke=\"#555\" \
                 stroke-dasharray=\"5,3\" fill=\"none\" marker-end=\"url(#arrow)\"/>"
            );
            (lx, ly) = (cx - 10.0, (y1 + y2) / 2.0);
        }
        if !lines.is_empty() {
            let (w, h) = size(lines);
            let left = if row_of(to) > row_of(from) {
                lx - w / 2.0
            } else {
                lx - w + 20.0
            };
            let _ = writeln!(
                labels,
                "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"4\" fill=\"#fffbe6\" stroke=\"#d9c77a\"/>",
                ly - h / 2.0
            );
            write_lines(&mut labels, lines, left + PAD, ly - h / 2.0 + PAD, "#333", false);
        }
    }
    for k in &keys {
        let n = &nodes[k];
        let (fill, stroke) = if n.round {
            ("#e8f0fe", "#4a6fa5")
        } else {
            ("#f5f7fa", "#4a6fa5")
        };
        let rx = if n.round { n.h / 2.0 } else { 6.0 };
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{rx:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
            n.x, n.y, n.w, n.h
        );
        write_lines(&mut out, &n.lines, n.x + PAD, n.y + PAD, "#111", !n.round);
    }
    out.push_str(&labels);
    out.push_str("</svg>\n");
    out
}

fn write_lines(out: &mut String, lines: &[String], x: f64, top: f64, color: &str, bold_first: bool) {
    for (i, l) in lines.iter().enumerate() {
        let weight = if bold_first && i == 0 {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"{color}\"{weight} xml:space=\"preserve\">{}</text>",
            top + (i as f64 + 1.0) * LINE_H - 4.0,
            esc(l)
        );
    }
}

/// A page with the flow's diagram, for a browser, offline.
pub fn html(bot: &Bot, flow: &Flow) -> String {
    let description = &flow.description;
    format!(
        "<!DOCTYPE html>\n<html lang=\"es\">\n<head>\n<meta charset=\"utf-8\">\n<title>{name}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;color:#111}} p{{color:#444}} \
         .legend{{font-size:0.9em;color:#555}}</style>\n</head>\n<body>\n<h1>{name}</h1>\n<p>{description}</p>\n\
         <p class=\"legend\">Boxes are states (what they say, ask, do); arrows are transitions, labelled with their \
         condition or “otherwise”; dashed arrows go back to an earlier state.</p>\n{svg}</body>\n</html>\n",
        name = esc(&flow.name),
        description = esc(description),
        svg = svg(bot, flow)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_booking_flow_is_a_well_formed_svg() {
        let bot = crate::flow::compile::compile_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("demo");
        let flow = bot.flow("book_appointment").expect("flow");
        let s = svg(&bot, flow);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(
            !s.contains("http://") || s.matches("http://").count() == 1,
            "only the SVG namespace"
        );
        assert!(!s.contains("<script"), "no script");
        assert!(s.contains("otherwise") && s.contains("does: find_availability"));
        for st in &flow.states {
            assert!(s.contains(&format!(">{}</text>", st.name)), "state {} drawn", st.name);
        }
        let h = html(&bot, flow);
        assert!(h.contains("<svg") && !h.contains("<script"));
    }
}
