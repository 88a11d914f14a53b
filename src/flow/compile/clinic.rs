//! flows/clinic.yaml → `Clinic`: time zone, hours and schedules parsed and checked.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde_json::json;

use super::File;
use crate::flow::clinic::{
    Clinic, ClinicLlm, Coverage, Professional, RawClinicFile, RawClinicLlm, Specialty, TimeRange, WeekdayKey,
    parse_ranges,
};
use crate::flow::diag::did_you_mean;
use crate::lang::Lang;

pub(crate) fn compile(file: &mut File<'_>) -> Option<Clinic> {
    let raw = file.deser::<RawClinicFile>(&file.doc.value.clone(), "")?.clinic;
    let mut ok = true;

    let tz = match jiff::tz::TimeZone::get(&raw.timezone) {
        Ok(tz) => Some(tz),
        Err(_) => {
            file.err(
                "clinic.timezone",
                format!("unknown time zone `{}`", raw.timezone),
                "use an IANA name such as America/Argentina/Buenos_Aires",
            );
            None
        }
    };
    let language = match raw.language.as_deref() {
        None => Lang::Es,
        Some(l) => Lang::parse(l).unwrap_or_else(|| {
            file.err("clinic.language", format!("unknown language `{l}`"), "use `es` or `en`");
            ok = false;
            Lang::Es
        }),
    };
    let hours = week(file, &raw.hours, "clinic.hours", &mut ok);
    let mut holidays = Vec::new();
    for (i, h) in raw.holidays.iter().enumerate() {
        match h.parse::<Date>() {
            Ok(d) => holidays.push(d),
            Err(_) => {
                file.err(
                    &format!("clinic.holidays[{i}]"),
                    format!("`{h}` is not a date"),
                    "write dates like 2026-12-25",
                );
                ok = false;
            }
        }
    }
    let mut specialties = Vec::new();
    for (i, s) in raw.specialties.iter().enumerate() {
        let mut professionals = Vec::new();
        for (j, p) in s.professionals.iter().enumerate() {
            let path = format!("clinic.specialties[{i}].professionals[{j}].schedule");
            let schedule = week(file, &p.schedule, &path, &mut ok);
            professionals.push(Professional {
                name: p.name.clone(),
                schedule,
            });
        }
        if professionals.is_empty() {
            file.err(
                &format!("clinic.specialties[{i}]"),
                format!("`{}` has no professionals", s.name),
                "add at least one professional with a schedule",
            );
            ok = false;
        }
        specialties.push(Specialty {
            name: s.name.clone(),
            name_en: s.name_en.clone(),
            synonyms: s.synonyms.clone(),
            professionals,
        });
    }
    let coverages: Vec<Coverage> = raw
        .coverages
        .iter()
        .map(|c| Coverage {
            name: c.name.clone(),
            synonyms: c.synonyms.clone(),
            plans: c.plans.clone(),
        })
        .collect();

    let llm = compile_llm(file, raw.llm.as_ref(), &mut ok);

    let value = json!({
        "name": raw.name,
        "timezone": raw.timezone,
        "language": language.code(),
        "address": raw.address,
        "phone": raw.phone,
        "email": raw.email,
        "website": raw.website,
        "hours": raw.hours,
        "appointment_minutes": raw.appointment_minutes.unwrap_or(30),
        "specialties": specialties.iter().map(|s| json!({
            "name": s.name,
            "name_en": s.name_en.clone().unwrap_or_else(|| s.name.clone()),
            "professionals": s.professionals.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "coverages": coverages.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "private_patients": raw.private_patients.unwrap_or(true),
    });

    let tz = tz?;
    if !ok {
        return None;
    }
    Some(Clinic {
        name: raw.name,
        tz,
        tz_name: raw.timezone,
        language,
        address: raw.address,
        phone: raw.phone,
        email: raw.email,
        website: raw.website,
        hours,
        appointment_minutes: raw.appointment_minutes.unwrap_or(30).clamp(5, 240),
        holidays,
        specialties,
        coverages,
        private_patients: raw.private_patients.unwrap_or(true),
        llm,
        value,
    })
}

fn compile_llm(file: &mut File<'_>, raw: Option<&RawClinicLlm>, ok: &mut bool) -> ClinicLlm {
    let mut llm = ClinicLlm::default();
    let Some(raw) = raw else { return llm };
    llm.phrase = raw.phrase.unwrap_or(llm.phrase);
    llm.phrase_on_voice = raw.phrase_on_voice.unwrap_or(llm.phrase_on_voice);
    llm.tone = raw.tone.clone().filter(|t| !t.trim().is_empty());
    if let Some(t) = raw.temperature {
        if (0.0..=2.0).contains(&t) {
            llm.temperature = t;
        } else {
            file.err(
                "clinic.llm.temperature",
                format!("temperature {t} is out of range"),
                "use a number from 0 to 2; 0.2 keeps replies close to the templates",
            );
            *ok = false;
        }
    }
    llm
}

fn week(
    file: &mut File<'_>,
    raw: &BTreeMap<String, String>,
    path: &str,
    ok: &mut bool,
) -> BTreeMap<WeekdayKey, Vec<TimeRange>> {
    let mut out = BTreeMap::new();
    for (day, ranges) in raw {
        let p = format!("{path}.{day}");
        let Some(key) = WeekdayKey::parse(day) else {
            let help = did_you_mean(day, WeekdayKey::NAMES)
                .unwrap_or_else(|| format!("days are {}", WeekdayKey::NAMES.join(", ")));
            file.err_key(&p, format!("`{day}` is not a day of the week"), help);
            *ok = false;
            continue;
        };
        match parse_ranges(ranges) {
            Ok(r) => {
                out.insert(key, r);
            }
            Err(e) => {
                file.err(&p, e, "write hours like 08:00-12:00, or 08:00-12:00, 14:00-18:00");
                *ok = false;
            }
        }
    }
    out
}
