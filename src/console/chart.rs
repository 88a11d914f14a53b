//! Small server-rendered charts: inline SVG (no script, no CDN), bars or lines over labelled
//! points, with a legend. Each chart is a `role="img"` with a title; the page puts a table
//! of the same numbers beside it for screen readers and for reading exact values.

use std::fmt::Write;

/// One line or set of bars.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// Bars (grouped, one per series) or lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bars,
    Lines,
}

/// Colours with at least 4.5:1 contrast on white, told apart by more than hue (the legend
/// names each, and the table beside gives the numbers).
const COLOURS: [&str; 4] = ["#0b5cad", "#a4000f", "#0a6b2d", "#6b3fa0"];

const W: f64 = 680.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// A chart of `series` over `labels` (one value per label in each series).
pub fn chart(kind: Kind, title: &str, labels: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let counts = series
        .iter()
        .flat_map(|s| s.values.iter())
        .all(|v| (v - v.round()).abs() < 1e-9);
    // Counts get whole grid values (0, 1, 2, 3, 4 rather than 0, 1.25, 2.5…).
    let top = if counts {
        nice_ceiling(max / 4.0).ceil().max(1.0) * 4.0
    } else {
        nice_ceiling(max)
    };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1);
    let slot = plot_w / n as f64;
    let y = |v: f64| TOP + plot_h - (v / top) * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    // Grid and the y axis's values.
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let gy = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{gy:.1}" y2="{gy:.1}" stroke="#ccd" stroke-width="1"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="#333">{label}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = gy + 4.0,
            label = number(v)
        );
    }
    // Every label when they fit, else every k-th.
    let every = n.div_ceil(15);
    for (i, l) in labels.iter().enumerate() {
        if i % every == 0 {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{ly}" text-anchor="middle" font-size="11" fill="#333">{l}</text>"##,
                x = LEFT + slot * (i as f64 + 0.5),
                ly = H - BOTTOM + 16.0,
                l = esc(l)
            );
        }
    }
    let groups = series.len().max(1) as f64;
    for (si, s) in series.iter().enumerate() {
        let colour = COLOURS[si % COLOURS.len()];
        match kind {
            Kind::Bars => {
                let bar = (slot * 0.8) / groups;
                for (i, v) in s.values.iter().enumerate() {
                    let x = LEFT + slot * i as f64 + slot * 0.1 + bar * si as f64;
                    let _ = write!(
                        svg,
                        r#"<rect x="{x:.1}" y="{by:.1}" width="{bw:.1}" height="{bh:.1}" fill="{colour}"><title>{l}: {v}</title></rect>"#,
                        by = y(*v),
                        bw = (bar - 1.0).max(1.0),
                        bh = (TOP + plot_h - y(*v)).max(0.0),
                        l = esc(labels.get(i).map_or("", String::as_str)),
                        v = number(*v)
                    );
                }
            }
            Kind::Lines => {
                let points: Vec<String> = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y(*v)))
                    .collect();
                let _ = write!(
                    svg,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{}"/>"#,
                    points.join(" ")
                );
                for (i, v) in s.values.iter().enumerate() {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {}</title></circle>"#,
                        LEFT + slot * (i as f64 + 0.5),
                        y(*v),
                        esc(labels.get(i).map_or("", String::as_str)),
                        number(*v)
                    );
                }
            }
        }
        // Legend along the top.
        let lx = LEFT + 150.0 * si as f64;
        let _ = write!(
            svg,
            r##"<rect x="{lx}" y="6" width="12" height="12" fill="{colour}"/><text x="{tx}" y="16" font-size="12" fill="#111">{name}</text>"##,
            tx = lx + 16.0,
            name = esc(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one per label (the drop-off per state): long labels fit on the left.
pub fn hbars(title: &str, labels: &[String], values: &[f64]) -> String {
    let row = 22.0;
    let left = 260.0;
    let h = TOP + row * labels.len().max(1) as f64 + 8.0;
    let top = nice_ceiling(values.iter().copied().fold(0.0, f64::max));
    let plot_w = W - left - 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, (l, v)) in labels.iter().zip(values).enumerate() {
        let y = TOP + row * i as f64;
        let bw = (v / top * plot_w).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="12" fill="#111">{l}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{bh}" fill="{c}"/><text x="{vx:.1}" y="{ty:.1}" font-size="12" fill="#111">{v}</text>"##,
            tx = left - 6.0,
            ty = y + 14.0,
            l = esc(l),
            bh = row - 6.0,
            c = COLOURS[0],
            vx = left + bw + 4.0,
            v = number(*v)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `max` (so the grid has round values).
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(max)
}

/// Whole numbers as such, others with up to 4 decimals (costs are small).
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_lines_are_svg_with_titles_and_escaped_labels() {
        let labels = vec!["01/11".to_string(), "<b>".to_string()];
        let s = [Series {
            name: "Reservas",
            values: vec![3.0, 7.0],
        }];
        let bars = chart(Kind::Bars, "Reservas & más", &labels, &s);
        assert!(bars.starts_with("<svg") && bars.ends_with("</svg>"));
        assert!(bars.contains("<title>Reservas &amp; más</title>"));
        assert_eq!(bars.matches("<rect").count(), 2 + 1, "two bars and a legend key");
        assert!(bars.contains("&lt;b&gt;") && !bars.contains("<b>"));
        let lines = chart(Kind::Lines, "x", &labels, &s);
        assert!(lines.contains("<polyline") && lines.matches("<circle").count() == 2);
        let h = hbars("Drop-off", &["book.ask".to_string()], &[4.0]);
        assert!(h.contains("book.ask") && h.contains(">4<"));
    }

    #[test]
    fn the_grid_has_round_values() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(18.0), 20.0);
        assert_eq!(nice_ceiling(230.0), 250.0);
        assert_eq!(nice_ceiling(0.003), 0.005);
        assert_eq!(number(3.0), "3");
        let counts = chart(
            Kind::Bars,
            "t",
            &["a".into()],
            &[Series {
                name: "n",
                values: vec![5.0],
            }],
        );
        assert!(
            counts.contains(">8</text>") && counts.contains(">2</text>"),
            "whole steps: {counts}"
        );
        assert_eq!(number(0.01234), "0.0123");
    }
}
