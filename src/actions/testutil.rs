//! A small, fixed clinic and a pinned clock for the action tests.
//!
//! Monday 9 June 2025, 09:10 in Buenos Aires (UTC-3, no DST). Clinic open Mon–Fri
//! 08:00–20:00 and Sat 08:00–12:00; Friday 20 June is a holiday; appointments last 30 min.
//! - Cardiología: Dr. Juan Pérez Mon–Fri 08:00–12:00; Dra. Laura Díaz Mon and Wed 10:00–13:00.
//! - Clínica Médica: Dr. Pablo Ruiz Tue 18:00–21:00 (clipped to 20:00 by the clinic), Sat
//!   08:00–12:00.

use std::collections::BTreeMap;

use jiff::Zoned;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::{ActionContext, ActionName, ActionRequest, perform};
use crate::engine::session::Session;
use crate::flow::clinic::{Clinic, Professional, Specialty, TimeRange, WeekdayKey, parse_ranges};
use crate::lang::Lang;
use crate::store::Store;

fn week(days: &[(&str, &str)]) -> BTreeMap<WeekdayKey, Vec<TimeRange>> {
    days.iter()
        .map(|(d, r)| (WeekdayKey::parse(d).unwrap(), parse_ranges(r).unwrap()))
        .collect()
}

fn pro(name: &str, days: &[(&str, &str)]) -> Professional {
    Professional {
        name: name.into(),
        schedule: week(days),
    }
}

pub(crate) fn clinic() -> Clinic {
    let weekdays = ["mon", "tue", "wed", "thu", "fri"];
    let mut hours: Vec<(&str, &str)> = weekdays.iter().map(|d| (*d, "08:00-20:00")).collect();
    hours.push(("sat", "08:00-12:00"));
    let perez: Vec<(&str, &str)> = weekdays.iter().map(|d| (*d, "08:00-12:00")).collect();
    Clinic {
        name: "Clínica Test".into(),
        tz: TimeZone::get("America/Argentina/Buenos_Aires").unwrap(),
        tz_name: "America/Argentina/Buenos_Aires".into(),
        language: Lang::Es,
        address: None,
        phone: None,
        email: None,
        website: None,
        hours: week(&hours),
        appointment_minutes: 30,
        booking_horizon_days: 60,
        holidays: vec!["2025-06-20".parse().unwrap()],
        specialties: vec![
            Specialty {
                name: "Cardiología".into(),
                name_en: Some("Cardiology".into()),
                synonyms: vec!["cardiologo".into()],
                professionals: vec![
                    pro("Dr. Juan Pérez", &perez),
                    pro("Dra. Laura Díaz", &[("mon", "10:00-13:00"), ("wed", "10:00-13:00")]),
                ],
            },
            Specialty {
                name: "Clínica Médica".into(),
                name_en: None,
                synonyms: vec![],
                professionals: vec![pro("Dr. Pablo Ruiz", &[("tue", "18:00-21:00"), ("sat", "08:00-12:00")])],
            },
        ],
        coverages: vec![],
        private_patients: true,
        email_confirmations: false,
        whatsapp: Default::default(),
        voice: Default::default(),
        llm: Default::default(),
        identity: Default::default(),
        turn_days: None,
        calendars: Default::default(),
        web_origins: Vec::new(),
        numbers: Default::default(),
        value: Value::Null,
    }
}

pub(crate) fn now() -> Zoned {
    "2025-06-09T09:10:00-03:00[America/Argentina/Buenos_Aires]"
        .parse()
        .unwrap()
}

pub(crate) fn session() -> Session {
    Session::new(
        "whatsapp:+5491100000000",
        "whatsapp",
        "whatsapp:+5491100000000",
        Lang::Es,
    )
}

/// A store, clinic, session and clock to run actions against.
pub(crate) struct Env {
    pub store: Store,
    pub clinic: Clinic,
    pub session: Session,
    pub now: Zoned,
}

impl Env {
    pub async fn new() -> Env {
        Env {
            store: crate::store::testing::mem().await,
            clinic: clinic(),
            session: session(),
            now: now(),
        }
    }

    pub async fn call(&self, action: &str, args: Value) -> Value {
        let ctx = ActionContext {
            store: &self.store,
            clinic: &self.clinic,
            session: &self.session,
            now: &self.now,
            staff: false,
        };
        let req = ActionRequest {
            action: ActionName::parse(action).unwrap(),
            args: args.as_object().cloned().unwrap_or_default(),
        };
        perform(&ctx, &req).await.unwrap()
    }

    /// Books for `document` and returns the appointment id.
    pub async fn book(&self, professional: &str, date: &str, time: &str, document: &str) -> String {
        let out = self
            .call(
                "book_appointment",
                serde_json::json!({
                    "specialty": "Cardiología", "professional": professional, "date": date,
                    "time": time, "patient_name": "Ana Gómez", "document": document,
                }),
            )
            .await;
        assert_eq!(out["ok"], true, "{out}");
        out["appointment"]["id"].as_str().unwrap().to_string()
    }
}

/// `[(date, time, professional)]` of a result's alternatives, for compact assertions.
pub(crate) fn alts(out: &Value) -> Vec<(String, String, String)> {
    out["alternatives"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("date"), s("time"), s("professional"))
        })
        .collect()
}
