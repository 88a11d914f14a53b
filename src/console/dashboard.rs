//! The dashboard (admins): the last 14 or 30 clinic-local days — conversations, bookings,
//! cancellations, handoffs; containment (conversations started that were not handed over to
//! staff, as a %); where unfinished conversations stopped (drop-off per flow state);
//! reminders sent and, of those, confirmed and cancelled; LLM calls and cost per day. Each
//! figure is an inline SVG chart (chart.rs) with a table of the same numbers beside it. The
//! counting is done by the database (store/stats.rs), on indexes.

use std::sync::OnceLock;

use poem::web::Query;
use poem::{Request, Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use super::chart::{self, Kind, Series};
use super::i18n;
use super::view::{internal, now};
use super::{Page, Staff, State};
use crate::store::DayStats;

/// What LLM tokens cost, in USD per million (input, output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
}

/// gpt-4o-mini's list price, the default model (docs/llm.md).
const DEFAULT_PRICES: Prices = Prices {
    input: 0.15,
    output: 0.60,
};

impl Prices {
    /// `CLINICFLOW_LLM_PRICE_IN` / `CLINICFLOW_LLM_PRICE_OUT` (USD per million tokens) over
    /// the defaults; a value that is not a non-negative number is ignored, with a warning.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Prices {
        let read = |key: &str, default: f64| match get(key) {
            None => default,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 => p,
                _ => {
                    tracing::warn!("{key} is not a price in USD per million tokens (like 0.15); using {default}");
                    default
                }
            },
        };
        Prices {
            input: read("CLINICFLOW_LLM_PRICE_IN", DEFAULT_PRICES.input),
            output: read("CLINICFLOW_LLM_PRICE_OUT", DEFAULT_PRICES.output),
        }
    }

    pub fn cost(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input + tokens_out as f64 * self.output) / 1_000_000.0
    }

    /// "0.0012" (USD), or empty when nothing was spent.
    pub fn cost_text(&self, tokens_in: u64, tokens_out: u64) -> String {
        if tokens_in + tokens_out == 0 {
            return String::new();
        }
        format!("{:.4}", self.cost(tokens_in, tokens_out))
    }
}

/// The prices, read from the environment once.
pub fn prices() -> &'static Prices {
    static PRICES: OnceLock<Prices> = OnceLock::new();
    PRICES.get_or_init(|| Prices::from_lookup(|k| std::env::var(k).ok()))
}

#[derive(Deserialize, Default)]
pub(super) struct Period {
    days: Option<u32>,
}

/// Containment of a day: conversations started and not handed over, as a % (100 on a day
/// with none).
fn containment(conversations: u64, handoffs: u64) -> f64 {
    if conversations == 0 {
        return 100.0;
    }
    let kept = conversations.saturating_sub(handoffs) as f64;
    (kept * 1000.0 / conversations as f64).round() / 10.0
}

/// One figure: its chart and the table beside it.
fn figure(title: &str, svg: String, head: Vec<String>, rows: Vec<Vec<String>>) -> Value {
    json!({ "title": title, "svg": svg, "head": head, "rows": rows })
}

fn series_figure(kind: Kind, title: &str, day_head: &str, labels: &[String], series: Vec<(&str, Vec<f64>)>) -> Value {
    let chart_series: Vec<Series> = series
        .iter()
        .map(|(name, values)| Series {
            name,
            values: values.clone(),
        })
        .collect();
    let svg = chart::chart(kind, title, labels, &chart_series);
    let mut head = vec![day_head.to_string()];
    head.extend(series.iter().map(|(n, _)| n.to_string()));
    let rows = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut row = vec![l.clone()];
            row.extend(series.iter().map(|(_, v)| chart::number(v[i])));
            row
        })
        .collect();
    figure(title, svg, head, rows)
}

#[handler]
pub(super) async fn page(state: State<'_>, req: &Request, staff: Staff, q: Query<Period>) -> poem::Result<Response> {
    staff.admin()?;
    let lang = super::lang_of(&state, req);
    let t = |k: &str| i18n::text(lang, k);
    let days = if q.days == Some(30) { 30 } else { 14 };
    let today = now(&state).date();
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days - 1)))
        .unwrap_or(today);
    let tz = state.service.bot().clinic.tz.clone();
    let stats = state.service.store.stats(first, today, &tz).await.map_err(internal)?;
    let labels: Vec<String> = stats.days.iter().map(|d| d.day.strftime("%d/%m").to_string()).collect();
    let col = |f: fn(&DayStats) -> u64| stats.days.iter().map(|d| f(d) as f64).collect::<Vec<f64>>();
    let p = prices();
    let cost: Vec<f64> = stats.days.iter().map(|d| p.cost(d.tokens_in, d.tokens_out)).collect();
    let day = t("day");
    let figures = vec![
        series_figure(
            Kind::Bars,
            t("chart_conversations"),
            day,
            &labels,
            vec![
                (t("s_conversations"), col(|d| d.conversations)),
                (t("s_handoffs"), col(|d| d.handoffs)),
            ],
        ),
        series_figure(
            Kind::Lines,
            t("chart_containment"),
            day,
            &labels,
            vec![(
                t("s_containment"),
                stats
                    .days
                    .iter()
                    .map(|d| containment(d.conversations, d.handoffs))
                    .collect(),
            )],
        ),
        series_figure(
            Kind::Bars,
            t("chart_bookings"),
            day,
            &labels,
            vec![
                (t("s_bookings"), col(|d| d.bookings)),
                (t("s_cancellations"), col(|d| d.cancellations)),
            ],
        ),
        series_figure(
            Kind::Bars,
            t("chart_reminders"),
            day,
            &labels,
            vec![
                (t("s_sent"), col(|d| d.reminders_sent)),
                (t("s_confirmed"), col(|d| d.reminders_confirmed)),
                (t("s_cancelled"), col(|d| d.reminders_cancelled)),
            ],
        ),
        series_figure(
            Kind::Bars,
            t("chart_llm_calls"),
            day,
            &labels,
            vec![(t("s_llm_calls"), col(|d| d.llm_calls))],
        ),
        series_figure(
            Kind::Lines,
            t("chart_llm_cost"),
            day,
            &labels,
            vec![(t("s_cost"), cost)],
        ),
    ];
    let drop_labels: Vec<String> = stats
        .drop_off
        .iter()
        .map(|d| format!("{}.{}", d.flow, d.state))
        .collect();
    let drop_values: Vec<f64> = stats.drop_off.iter().map(|d| d.conversations as f64).collect();
    let drop_off = (!stats.drop_off.is_empty()).then(|| {
        figure(
            t("chart_dropoff"),
            chart::hbars(t("chart_dropoff"), &drop_labels, &drop_values),
            vec![t("flow_state").to_string(), t("conversations").to_string()],
            drop_labels
                .iter()
                .zip(&drop_values)
                .map(|(l, v)| vec![l.clone(), chart::number(*v)])
                .collect(),
        )
    });
    let started: u64 = stats.days.iter().map(|d| d.conversations).sum();
    let handed: u64 = stats.days.iter().map(|d| d.handoffs).sum();
    let view = Page::new(&state, req, "dashboard.html")
        .staff(&staff)
        .with("days", days)
        .with("figures", figures)
        .with("drop_off", drop_off)
        .with("containment", chart::number(containment(started, handed)))
        .with("prices", format!("{} / {}", p.input, p.output));
    Ok(state.console.render(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_come_from_the_environment_and_bad_ones_are_ignored() {
        let p = Prices::from_lookup(|k| (k == "CLINICFLOW_LLM_PRICE_IN").then(|| "1.5".to_string()));
        assert_eq!(
            p,
            Prices {
                input: 1.5,
                output: 0.60
            }
        );
        let bad = Prices::from_lookup(|_| Some("cheap".to_string()));
        assert_eq!(bad, DEFAULT_PRICES);
        assert!((p.cost(1_000_000, 1_000_000) - 2.1).abs() < 1e-9);
        assert_eq!(p.cost_text(0, 0), "");
    }

    #[test]
    fn containment_is_the_share_not_handed_over() {
        assert_eq!(containment(0, 0), 100.0);
        assert_eq!(containment(3, 1), 66.7);
        assert_eq!(containment(2, 5), 0.0);
    }
}
