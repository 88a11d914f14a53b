//! flows/clinic.yaml → `Clinic`: time zone, hours and schedules parsed and checked.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde_json::json;

use super::File;
use crate::flow::clinic::{
    Clinic, ClinicLlm, ContentTemplateDef, Coverage, Identity, Professional, RawClinicFile, RawClinicLlm, RawIdentity,
    RawVoice, RawVoiceLang, RawWhatsApp, Specialty, TimeRange, VerifyWith, VoiceLang, VoiceSettings, WeekdayKey,
    WhatsApp, parse_ranges,
};
use crate::flow::diag::did_you_mean;
use crate::flow::templates::Templates;
use crate::lang::Lang;

/// `booking_horizon_days` when clinic.yaml does not say.
const DEFAULT_HORIZON_DAYS: u32 = 60;

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
    let clinic_calendar = raw
        .calendar
        .as_ref()
        .and_then(|c| calendar(file, c, "clinic.calendar", &mut ok));
    let mut calendars = Vec::new();
    let mut specialties = Vec::new();
    for (i, s) in raw.specialties.iter().enumerate() {
        let mut professionals = Vec::new();
        for (j, p) in s.professionals.iter().enumerate() {
            let path = format!("clinic.specialties[{i}].professionals[{j}].schedule");
            let schedule = week(file, &p.schedule, &path, &mut ok);
            let own = p.calendar.as_ref().and_then(|c| {
                let path = format!("clinic.specialties[{i}].professionals[{j}].calendar");
                calendar(file, c, &path, &mut ok)
            });
            if let Some(spec) = own.or_else(|| clinic_calendar.clone()) {
                calendars.push((p.name.clone(), spec));
            }
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
    let needs_email = calendars
        .iter()
        .any(|(_, spec)| !matches!(spec, crate::calendars::CalendarSpec::Google(_)));
    if needs_email && raw.email.is_none() {
        file.err(
            "clinic",
            "Calendly and Cal.com calendars need the clinic's `email`",
            "add `email: turnos@…` under `clinic:`; it is the attendee email of bookings whose patient gave none",
        );
        ok = false;
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
    let identity = compile_identity(file, raw.identity.as_ref(), &mut ok);
    let turn_days = match raw.retention.as_ref().and_then(|r| r.turn_days) {
        Some(d) if !(1..=3650).contains(&d) => {
            file.err(
                "clinic.retention.turn_days",
                format!("turn_days {d} is out of range"),
                "use a number of days from 1 to 3650, or leave it out to keep the turn log",
            );
            ok = false;
            None
        }
        d => d,
    };

    let web_origins = web_origins(file, raw.web.as_ref(), &mut ok);
    let numbers = numbers(file, raw.numbers.as_ref(), &mut ok);

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
        "booking_horizon_days": raw.booking_horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS),
        "specialties": specialties.iter().map(|s| json!({
            "name": s.name,
            "name_en": s.name_en.clone().unwrap_or_else(|| s.name.clone()),
            "professionals": s.professionals.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "coverages": coverages.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "private_patients": raw.private_patients.unwrap_or(true),
        "email_confirmations": raw.email_confirmations.unwrap_or(false),
    });

    let whatsapp = whatsapp(file, raw.whatsapp.as_ref(), &mut ok);
    let voice = match &raw.voice {
        Some(v) => voice(file, v, &mut ok),
        None => VoiceSettings::default(),
    };

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
        booking_horizon_days: raw.booking_horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS).clamp(1, 730),
        holidays,
        specialties,
        coverages,
        private_patients: raw.private_patients.unwrap_or(true),
        email_confirmations: raw.email_confirmations.unwrap_or(false),
        whatsapp,
        voice,
        llm,
        identity,
        turn_days,
        web_origins,
        numbers,
        value,
        calendars: crate::calendars::Calendars::build(calendars),
    })
}

/// A `calendar:` block checked at `path`; every problem is reported at its key.
fn calendar(
    file: &mut File<'_>,
    raw: &crate::calendars::RawCalendar,
    path: &str,
    ok: &mut bool,
) -> Option<crate::calendars::CalendarSpec> {
    match crate::calendars::config::check(raw) {
        Ok(spec) => Some(spec),
        Err(problems) => {
            for p in problems {
                file.err(&format!("{path}.{}", p.key), p.message, p.help);
            }
            *ok = false;
            None
        }
    }
}

/// `clinic.numbers`: each a phone number with its country code, none listed twice for one
/// channel (a number may serve WhatsApp and SMS alike).
fn numbers(
    file: &mut File<'_>,
    raw: Option<&crate::flow::clinic::RawNumbers>,
    ok: &mut bool,
) -> crate::flow::clinic::Numbers {
    let mut out = crate::flow::clinic::Numbers::default();
    let Some(raw) = raw else {
        return out;
    };
    for (channel, given, kept) in [
        ("whatsapp", &raw.whatsapp, &mut out.whatsapp),
        ("sms", &raw.sms, &mut out.sms),
        ("voice", &raw.voice, &mut out.voice),
    ] {
        for (i, n) in given.iter().enumerate() {
            let path = format!("clinic.numbers.{channel}.{i}");
            match e164(n.trim().trim_start_matches("whatsapp:")) {
                Some(n) if kept.contains(&n) => {
                    file.err(&path, format!("`{n}` is listed twice"), "list each number once");
                    *ok = false;
                }
                Some(n) => kept.push(n),
                None => {
                    file.err(
                        &path,
                        format!("`{n}` is not a phone number"),
                        "write it with the country code, like \"+54 11 4901-5120\" (spaces and dashes are fine)",
                    );
                    *ok = false;
                }
            }
        }
    }
    out
}

/// `clinic.web.allowed_origins`: each one `http(s)://host[:port]`, nothing after.
fn web_origins(file: &mut File<'_>, raw: Option<&crate::flow::clinic::RawWeb>, ok: &mut bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, o) in raw
        .map(|w| w.allowed_origins.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let origin = o.trim().trim_end_matches('/').to_ascii_lowercase();
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .unwrap_or("");
        let tame = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if rest.is_empty() || !rest.chars().all(tame) {
            file.err(
                &format!("clinic.web.allowed_origins.{i}"),
                format!("`{o}` is not an origin"),
                "write the website's scheme and host, with the port if it is not the usual one, and nothing after: https://www.clinica.com or http://localhost:8000",
            );
            *ok = false;
        } else {
            out.push(origin);
        }
    }
    out
}

fn compile_identity(file: &mut File<'_>, raw: Option<&RawIdentity>, ok: &mut bool) -> Identity {
    let mut out = Identity::default();
    let Some(raw) = raw else { return out };
    match raw.verify_with.as_deref().map(str::trim) {
        None | Some("code") => out.verify_with = VerifyWith::Code,
        Some(other) => {
            file.err(
                "clinic.identity.verify_with",
                format!("unknown verification method `{other}`"),
                "use `code`: a one-time code sent to the phone the appointment was booked from",
            );
            *ok = false;
        }
    }
    let mut minutes = |value: Option<u32>, key: &str, range: std::ops::RangeInclusive<u32>, default: u32| match value {
        None => default,
        Some(v) if range.contains(&v) => v,
        Some(v) => {
            file.err(
                &format!("clinic.identity.{key}"),
                format!("{key} {v} is out of range"),
                format!("use a number from {} to {}", range.start(), range.end()),
            );
            *ok = false;
            default
        }
    };
    out.code_minutes = minutes(raw.code_minutes, "code_minutes", 1..=60, out.code_minutes);
    out.max_failures = minutes(raw.max_failures, "max_failures", 1..=10, out.max_failures);
    out.lock_minutes = minutes(raw.lock_minutes, "lock_minutes", 1..=1440, out.lock_minutes);
    out
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

/// `whatsapp:`: the reminder template's ContentSid is checked and its placeholder texts are
/// compiled here, once; a reminder only renders them.
fn whatsapp(file: &mut File<'_>, raw: Option<&RawWhatsApp>, ok: &mut bool) -> WhatsApp {
    let Some(t) = raw.and_then(|w| w.reminder_template.as_ref()) else {
        return WhatsApp::default();
    };
    let base = "clinic.whatsapp.reminder_template";
    let sid = t.content_sid.trim();
    if !(sid.len() == 34 && sid.starts_with("HX") && sid[2..].chars().all(|c| c.is_ascii_hexdigit())) {
        file.err(
            &format!("{base}.content_sid"),
            format!("`{sid}` is not a Twilio ContentSid"),
            "copy the template's SID from Twilio's Content Template Builder: HX followed by 32 letters and digits",
        );
        *ok = false;
    }
    let mut templates = Templates::new();
    let mut variables = Vec::new();
    for (key, text) in &t.variables {
        let path = format!("{base}.variables.{key}");
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_digit()) {
            file.err_key(
                &path,
                format!("`{key}` is not a placeholder number"),
                "Twilio templates number their placeholders: write \"1\", \"2\"… as in {{1}}, {{2}}",
            );
            *ok = false;
            continue;
        }
        let name = format!("clinic.yaml#{path}");
        if let Err((msg, _, _)) = templates.add(&name, text) {
            file.err(
                &path,
                format!("template error: {msg}"),
                "placeholders see `appointment` (specialty, professional, date, time, patient_name, day), `reminder`, `clinic` and `now`",
            );
            *ok = false;
            continue;
        }
        variables.push((key.clone(), name));
    }
    WhatsApp {
        reminder_template: Some(ContentTemplateDef {
            content_sid: sid.to_string(),
            variables,
            templates: std::sync::Arc::new(templates),
        }),
    }
}
/// `clinic.voice`: defaults for what is left out; a staff number must be dialable.
fn voice(file: &mut File<'_>, raw: &RawVoice, ok: &mut bool) -> VoiceSettings {
    let mut out = VoiceSettings::default();
    for (lang, given) in [(Lang::Es, &raw.es), (Lang::En, &raw.en)] {
        let Some(given) = given else { continue };
        let path = format!("clinic.voice.{}", lang.code());
        let v = voice_lang(file, &path, given, VoiceLang::default_for(lang), ok);
        match lang {
            Lang::Es => out.es = v,
            Lang::En => out.en = v,
        }
    }
    match &raw.speech_timeout {
        None => {}
        Some(serde_json::Value::String(s)) if s.trim() == "auto" => {}
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|s| (1..=60).contains(&s)) => {
            out.speech_timeout = n.to_string();
        }
        Some(other) => {
            file.err(
                "clinic.voice.speech_timeout",
                format!("`{other}` is not a speech timeout"),
                "write `auto` (Twilio decides when the caller stopped talking) or whole seconds from 1 to 60",
            );
            *ok = false;
        }
    }
    if let Some(number) = &raw.staff_number {
        match e164(number) {
            Some(n) => out.staff_number = Some(n),
            None => {
                file.err(
                    "clinic.voice.staff_number",
                    format!("`{number}` is not a phone number calls can be passed to"),
                    "write it with the country code, like \"+54 11 4901-5120\" (spaces and dashes are fine)",
                );
                *ok = false;
            }
        }
    }
    out.hints = raw
        .hints
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    out
}

fn voice_lang(file: &mut File<'_>, path: &str, raw: &RawVoiceLang, default: VoiceLang, ok: &mut bool) -> VoiceLang {
    let mut tag = |key: &str, value: &Option<String>, fallback: &str| -> String {
        match value.as_deref().map(str::trim) {
            None => fallback.to_string(),
            Some(v) if is_language_tag(v) => v.to_string(),
            Some(v) => {
                file.err(
                    &format!("{path}.{key}"),
                    format!("`{v}` is not a language code"),
                    "write a language and region like es-MX, es-AR or en-US",
                );
                *ok = false;
                fallback.to_string()
            }
        }
    };
    let language = tag("language", &raw.language, &default.language);
    let speech_language = tag("speech_language", &raw.speech_language, &language);
    let voice = match raw.voice.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => default.voice,
    };
    VoiceLang {
        voice,
        language,
        speech_language,
    }
}

/// "es-MX", "en-US": two or three letters, a dash, a region.
fn is_language_tag(s: &str) -> bool {
    match s.split_once('-') {
        Some((l, r)) => {
            (2..=3).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphabetic())
                && (2..=3).contains(&r.len())
                && r.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// "+54 11 4901-5120" → "+541149015120"; None unless it is + and 8 to 15 digits.
pub(crate) fn e164(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    ((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(compact)
}
