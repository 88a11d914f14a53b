//! Clinic data (flows/clinic.yaml): name, time zone, opening hours, specialties with their
//! professionals and weekly schedules, coverages. Editable by the admin like the flows.
//!
//! `RawClinic` is what the file says; `Clinic` is the checked, compiled form the engine,
//! the NLU and the actions read (hours parsed, time zone resolved).

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::lang::Lang;

/// `flows/clinic.yaml`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClinicFile {
    pub clinic: RawClinic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClinic {
    pub name: String,
    pub timezone: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// Weekday (mon..sun) → "08:00-20:00". Days not listed are closed.
    pub hours: BTreeMap<String, String>,
    /// Length of one appointment in minutes (default 30).
    #[serde(default)]
    pub appointment_minutes: Option<u32>,
    /// How many days ahead appointments can be booked (default 60).
    #[serde(default)]
    pub booking_horizon_days: Option<u32>,
    #[serde(default)]
    pub holidays: Vec<String>,
    pub specialties: Vec<RawSpecialty>,
    #[serde(default)]
    pub coverages: Vec<RawCoverage>,
    /// Whether private (paying, no coverage) patients are seen. Default true.
    #[serde(default)]
    pub private_patients: Option<bool>,
    /// The booking flow asks for an email (once, skippable) to send the confirmation to.
    #[serde(default)]
    pub email_confirmations: Option<bool>,
    /// WhatsApp settings: the approved template reminders are sent with.
    #[serde(default)]
    pub whatsapp: Option<RawWhatsApp>,
    /// Phone calls through Twilio: voices, languages, speech recognition, staff number.
    #[serde(default)]
    pub voice: Option<RawVoice>,
    /// How this clinic uses the LLM when one is configured (see docs/llm.md).
    #[serde(default)]
    pub llm: Option<RawClinicLlm>,
    /// How a patient writing from another contact proves who they are (docs/flows.md).
    #[serde(default)]
    pub identity: Option<RawIdentity>,
    /// How long personal data is kept.
    #[serde(default)]
    pub retention: Option<RawRetention>,
    /// The clinic's external calendar, for professionals without their own (docs/calendars.md).
    #[serde(default)]
    pub calendar: Option<crate::calendars::RawCalendar>,
    /// The web chat widget: which websites may embed it.
    #[serde(default)]
    pub web: Option<RawWeb>,
    /// The clinic's own Twilio numbers: messages and calls to them are this clinic's, and
    /// what it sends goes out from them (docs/clinics.md).
    #[serde(default)]
    pub numbers: Option<RawNumbers>,
}

/// `clinic.numbers` as written: phone numbers with the country code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumbers {
    #[serde(default)]
    pub whatsapp: Vec<String>,
    #[serde(default)]
    pub sms: Vec<String>,
    #[serde(default)]
    pub voice: Vec<String>,
}

/// The checked `clinic.numbers`: E.164 (`+` and digits). The first of a channel is the one
/// the clinic sends from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Numbers {
    pub whatsapp: Vec<String>,
    pub sms: Vec<String>,
    pub voice: Vec<String>,
}

impl Numbers {
    /// Every number with the channel it is listed for.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.whatsapp
            .iter()
            .map(|n| ("whatsapp", n.as_str()))
            .chain(self.sms.iter().map(|n| ("sms", n.as_str())))
            .chain(self.voice.iter().map(|n| ("voice", n.as_str())))
    }

    pub fn is_empty(&self) -> bool {
        self.whatsapp.is_empty() && self.sms.is_empty() && self.voice.is_empty()
    }
}

/// `clinic.web` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Origins (`https://www.clinica.com`) whose pages may talk to the assistant.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// `clinic.retention` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Days a turn (what the patient wrote and was answered) is kept in the turn log.
    #[serde(default)]
    pub turn_days: Option<u32>,
}

/// `clinic.identity` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// "code" (the only method today): a one-time code sent to the contact on record.
    #[serde(default)]
    pub verify_with: Option<String>,
    /// How long a code is valid (default 10 minutes).
    #[serde(default)]
    pub code_minutes: Option<u32>,
    /// Wrong codes before the document is locked (default 3).
    #[serde(default)]
    pub max_failures: Option<u32>,
    /// How long a locked document stays locked (default 30 minutes).
    #[serde(default)]
    pub lock_minutes: Option<u32>,
}

/// How patients are verified from a contact other than the one they booked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyWith {
    /// A one-time code sent to the contact on record.
    Code,
}

/// The checked `clinic.identity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub verify_with: VerifyWith,
    pub code_minutes: u32,
    pub max_failures: u32,
    pub lock_minutes: u32,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            verify_with: VerifyWith::Code,
            code_minutes: 10,
            max_failures: 3,
            lock_minutes: 30,
        }
    }
}

/// `whatsapp:` in clinic.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhatsApp {
    /// The template reminders use on WhatsApp (needed outside the 24-hour window).
    #[serde(default)]
    pub reminder_template: Option<RawContentTemplate>,
}

/// A Twilio Content template: its ContentSid and a minijinja template per placeholder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContentTemplate {
    pub content_sid: String,
    /// Placeholder number ("1", "2"…) → minijinja text rendered with the reminder's context.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// `clinic.voice`: how the assistant sounds and listens on phone calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVoice {
    /// Spanish conversations (default Polly.Mia, es-MX).
    #[serde(default)]
    pub es: Option<RawVoiceLang>,
    /// English conversations (default Polly.Joanna, en-US).
    #[serde(default)]
    pub en: Option<RawVoiceLang>,
    /// Twilio's `speechTimeout`: "auto" (default) or whole seconds of silence.
    #[serde(default)]
    pub speech_timeout: Option<serde_json::Value>,
    /// Where a call goes when the caller asks for a person (E.164, e.g. "+541149015120").
    /// Without it the escalation is recorded and the caller is told staff will call back.
    #[serde(default)]
    pub staff_number: Option<String>,
    /// Words and phrases that help speech recognition (names of specialties, coverages…).
    #[serde(default)]
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVoiceLang {
    /// A Twilio `<Say>` voice, e.g. Polly.Mia.
    #[serde(default)]
    pub voice: Option<String>,
    /// The voice's language, e.g. es-MX.
    #[serde(default)]
    pub language: Option<String>,
    /// The language speech is recognized in (default: `language`), e.g. es-AR.
    #[serde(default)]
    pub speech_language: Option<String>,
}

/// `clinic.llm` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClinicLlm {
    #[serde(default)]
    pub phrase: Option<bool>,
    #[serde(default)]
    pub phrase_on_voice: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub tone: Option<String>,
}

/// The clinic's LLM settings, checked. Without an LLM configured they do nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicLlm {
    /// Rephrase the template replies in the clinic's tone (default false).
    pub phrase: bool,
    /// Also on voice calls, where every second counts (default false).
    pub phrase_on_voice: bool,
    /// Sampling temperature for phrasing and understanding (default 0.2).
    pub temperature: f32,
    /// Free text for the phrasing prompt ("cálido y breve, de usted").
    pub tone: Option<String>,
}

impl Default for ClinicLlm {
    fn default() -> Self {
        ClinicLlm {
            phrase: false,
            phrase_on_voice: false,
            temperature: 0.2,
            tone: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpecialty {
    pub name: String,
    #[serde(default)]
    pub name_en: Option<String>,
    #[serde(default)]
    pub synonyms: Vec<String>,
    pub professionals: Vec<RawProfessional>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfessional {
    pub name: String,
    /// Weekday (mon..sun) → "08:00-12:00" or several ranges "08:00-12:00, 14:00-18:00".
    pub schedule: BTreeMap<String, String>,
    /// This professional's external calendar (docs/calendars.md).
    #[serde(default)]
    pub calendar: Option<crate::calendars::RawCalendar>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCoverage {
    pub name: String,
    #[serde(default)]
    pub synonyms: Vec<String>,
    #[serde(default)]
    pub plans: Vec<String>,
}

/// A half-open range of clock time within one day: [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub start: Time,
    pub end: Time,
}

/// The checked clinic data.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub name: String,
    pub tz: TimeZone,
    pub tz_name: String,
    pub language: Lang,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    /// Opening hours per weekday (empty = closed).
    pub hours: BTreeMap<WeekdayKey, Vec<TimeRange>>,
    pub appointment_minutes: u32,
    /// Nothing is offered or booked later than this many days from today.
    pub booking_horizon_days: u32,
    pub holidays: Vec<Date>,
    pub specialties: Vec<Specialty>,
    pub coverages: Vec<Coverage>,
    pub private_patients: bool,
    /// `email_confirmations: true`: the booking flow asks for the patient's email (templates
    /// and conditions read it as `clinic.email_confirmations`).
    pub email_confirmations: bool,
    /// WhatsApp settings (`whatsapp:`).
    pub whatsapp: WhatsApp,
    /// Phone call settings (`clinic.voice`, defaults when absent).
    pub voice: VoiceSettings,
    pub llm: ClinicLlm,
    /// Verification of patients from another contact (`clinic.identity`).
    pub identity: Identity,
    /// Days turns are kept in the turn log; `None`: forever (`clinic.retention.turn_days`).
    pub turn_days: Option<u32>,
    /// Origins allowed to use the web chat widget (`clinic.web.allowed_origins`), normalized
    /// (`scheme://host[:port]`, lower case). Empty: the widget is refused everywhere.
    pub web_origins: Vec<String>,
    /// The clinic's Twilio numbers (`clinic.numbers`); empty: the deployment's
    /// `TWILIO_*_FROM` settings, and only a clinic alone on its server receives webhooks.
    pub numbers: Numbers,
    /// The clinic data as a JSON value, handed to templates and Rhai as `clinic`.
    pub value: serde_json::Value,
    /// External calendars by professional (`calendar:` blocks); empty: none.
    pub calendars: crate::calendars::Calendars,
}

/// The checked `clinic.voice`.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSettings {
    pub es: VoiceLang,
    pub en: VoiceLang,
    /// "auto" or a number of seconds.
    pub speech_timeout: String,
    /// E.164, digits only after the `+`.
    pub staff_number: Option<String>,
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoiceLang {
    pub voice: String,
    pub language: String,
    pub speech_language: String,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            es: VoiceLang::default_for(Lang::Es),
            en: VoiceLang::default_for(Lang::En),
            speech_timeout: "auto".into(),
            staff_number: None,
            hints: Vec::new(),
        }
    }
}

impl VoiceSettings {
    pub fn lang(&self, lang: Lang) -> &VoiceLang {
        match lang {
            Lang::Es => &self.es,
            Lang::En => &self.en,
        }
    }
}

impl VoiceLang {
    pub fn default_for(lang: Lang) -> VoiceLang {
        let (voice, language) = match lang {
            Lang::Es => ("Polly.Mia", "es-MX"),
            Lang::En => ("Polly.Joanna", "en-US"),
        };
        VoiceLang {
            voice: voice.into(),
            language: language.into(),
            speech_language: language.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Specialty {
    pub name: String,
    pub name_en: Option<String>,
    pub synonyms: Vec<String>,
    pub professionals: Vec<Professional>,
}

#[derive(Debug, Clone)]
pub struct Professional {
    pub name: String,
    pub schedule: BTreeMap<WeekdayKey, Vec<TimeRange>>,
}

#[derive(Debug, Clone)]
pub struct Coverage {
    pub name: String,
    pub synonyms: Vec<String>,
    pub plans: Vec<String>,
}

/// The checked `whatsapp:` settings.
#[derive(Debug, Clone, Default)]
pub struct WhatsApp {
    pub reminder_template: Option<ContentTemplateDef>,
}

/// A Twilio Content template whose placeholder texts were compiled at bot compile.
#[derive(Clone)]
pub struct ContentTemplateDef {
    pub content_sid: String,
    /// (placeholder, name of its compiled template in `templates`).
    pub variables: Vec<(String, String)>,
    pub templates: std::sync::Arc<crate::flow::templates::Templates>,
}

impl std::fmt::Debug for ContentTemplateDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentTemplateDef")
            .field("content_sid", &self.content_sid)
            .field("variables", &self.variables)
            .finish()
    }
}

impl ContentTemplateDef {
    /// The placeholders' values for one message (`ctx` as for the reminder text).
    pub fn render(
        &self,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, crate::flow::templates::RenderError> {
        let mut out = serde_json::Map::new();
        for (key, name) in &self.variables {
            let text = crate::flow::templates::Text {
                es: Some(name.clone()),
                en: None,
            };
            let value = self.templates.render(&text, Lang::Es, ctx)?;
            out.insert(key.clone(), serde_json::Value::String(value));
        }
        Ok(out)
    }
}

/// Weekday as an ordered key (Monday first), so maps iterate in calendar order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekdayKey(pub u8);

impl WeekdayKey {
    pub const NAMES: [&'static str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    pub fn parse(s: &str) -> Option<WeekdayKey> {
        let s = s.trim().to_ascii_lowercase();
        Self::NAMES.iter().position(|n| *n == s).map(|i| WeekdayKey(i as u8))
    }

    pub fn of(day: Weekday) -> WeekdayKey {
        WeekdayKey(day.to_monday_zero_offset() as u8)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self.0 as usize % 7]
    }
}

impl Clinic {
    pub fn specialty(&self, name: &str) -> Option<&Specialty> {
        self.specialties.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn coverage(&self, name: &str) -> Option<&Coverage> {
        self.coverages.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Opening ranges of that date (empty on closed days and holidays).
    pub fn opening(&self, date: Date) -> &[TimeRange] {
        if self.holidays.contains(&date) {
            return &[];
        }
        self.hours
            .get(&WeekdayKey::of(date.weekday()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the clinic is open at that local date and time.
    pub fn is_open(&self, date: Date, time: Time) -> bool {
        self.opening(date).iter().any(|r| r.start <= time && time < r.end)
    }
}

/// Parses "08:00-12:00" or "08:00-12:00, 14:00-18:00".
pub fn parse_ranges(s: &str) -> Result<Vec<TimeRange>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("`{part}` is not a time range; write it like 08:00-12:00"))?;
        let start = parse_hhmm(a).ok_or_else(|| format!("`{a}` is not a time like 08:00"))?;
        let end = parse_hhmm(b).ok_or_else(|| format!("`{b}` is not a time like 20:00"))?;
        if end <= start {
            return Err(format!("`{part}` ends before it starts"));
        }
        out.push(TimeRange { start, end });
    }
    Ok(out)
}

/// Parses "8:00", "08:00" or "08:00:00".
pub fn parse_hhmm(s: &str) -> Option<Time> {
    let s = s.trim();
    let mut it = s.split(':');
    let h: i8 = it.next()?.parse().ok()?;
    let m: i8 = it.next()?.parse().ok()?;
    let sec: i8 = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    Time::new(h, m, sec, 0).ok()
}
