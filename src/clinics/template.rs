//! The clinic `clinicflow init <slug>` creates (docs/clinics.md): a generic clinic that
//! compiles and passes its own scripted conversations as it is. Its flows, prompts (es + en)
//! and schemas are the second demo clinic's (clinics/harbor-dental: no coverage question, the
//! patient's phone number as what identifies their appointments), embedded in the binary; its
//! clinic.yaml and its conversations are its own (`template/`), and the conversations assume no
//! clinic name. `write` puts them in a hidden folder first and renames it, so a server watching
//! the folder never sees half a clinic.

use std::path::{Path, PathBuf};

use super::layout::{CLINICS, Slug};

/// The template's clinic.yaml; `__NAME__` and `__SLUG__` are replaced.
const CLINIC_YAML: &str = include_str!("template/clinic.yaml");

/// The template's own scripted conversations.
const CONVERSATIONS: &[(&str, &str)] = &[
    (
        "tests/conversations/book.yaml",
        include_str!("template/tests/conversations/book.yaml"),
    ),
    (
        "tests/conversations/handoff.yaml",
        include_str!("template/tests/conversations/handoff.yaml"),
    ),
    (
        "tests/conversations/help_and_faq.yaml",
        include_str!("template/tests/conversations/help_and_faq.yaml"),
    ),
    (
        "tests/conversations/my_appointments_english.yaml",
        include_str!("template/tests/conversations/my_appointments_english.yaml"),
    ),
];

/// The editor schema of flow files, the same for every clinic.
const EDITOR_SCHEMA: (&str, &str) = (
    "schemas/flow.schema.json",
    include_str!("../../schemas/flow.schema.json"),
);

/// Flows, prompts and schemas shared with clinics/harbor-dental (all of its files but its
/// clinic.yaml; a test checks that none is missing).
pub const SHARED: &[(&str, &str)] = &[
    (
        "flows/book_appointment.yaml",
        include_str!("../../clinics/harbor-dental/flows/book_appointment.yaml"),
    ),
    (
        "flows/cancel_appointment.yaml",
        include_str!("../../clinics/harbor-dental/flows/cancel_appointment.yaml"),
    ),
    (
        "flows/faq_address.yaml",
        include_str!("../../clinics/harbor-dental/flows/faq_address.yaml"),
    ),
    (
        "flows/faq_hours.yaml",
        include_str!("../../clinics/harbor-dental/flows/faq_hours.yaml"),
    ),
    (
        "flows/faq_specialties.yaml",
        include_str!("../../clinics/harbor-dental/flows/faq_specialties.yaml"),
    ),
    (
        "flows/global.yaml",
        include_str!("../../clinics/harbor-dental/flows/global.yaml"),
    ),
    (
        "flows/goodbye.yaml",
        include_str!("../../clinics/harbor-dental/flows/goodbye.yaml"),
    ),
    (
        "flows/intents.yaml",
        include_str!("../../clinics/harbor-dental/flows/intents.yaml"),
    ),
    (
        "flows/my_appointments.yaml",
        include_str!("../../clinics/harbor-dental/flows/my_appointments.yaml"),
    ),
    (
        "flows/reminder_reply.yaml",
        include_str!("../../clinics/harbor-dental/flows/reminder_reply.yaml"),
    ),
    (
        "flows/reschedule_appointment.yaml",
        include_str!("../../clinics/harbor-dental/flows/reschedule_appointment.yaml"),
    ),
    (
        "flows/thanks.yaml",
        include_str!("../../clinics/harbor-dental/flows/thanks.yaml"),
    ),
    (
        "prompts/en/alternatives.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/alternatives.j2"),
    ),
    (
        "prompts/en/appointment_list.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/appointment_list.j2"),
    ),
    (
        "prompts/en/ask_new_date.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/ask_new_date.j2"),
    ),
    (
        "prompts/en/booked.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/booked.j2"),
    ),
    (
        "prompts/en/calendar_unavailable.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/calendar_unavailable.j2"),
    ),
    (
        "prompts/en/cancelled.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/cancelled.j2"),
    ),
    (
        "prompts/en/confirm_booking.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/confirm_booking.j2"),
    ),
    (
        "prompts/en/confirm_cancel.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/confirm_cancel.j2"),
    ),
    (
        "prompts/en/confirm_reschedule.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/confirm_reschedule.j2"),
    ),
    (
        "prompts/en/email_cancelled.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/email_cancelled.j2"),
    ),
    (
        "prompts/en/email_confirmation.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/email_confirmation.j2"),
    ),
    (
        "prompts/en/email_reminder.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/email_reminder.j2"),
    ),
    (
        "prompts/en/email_rescheduled.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/email_rescheduled.j2"),
    ),
    (
        "prompts/en/fallback.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/fallback.j2"),
    ),
    (
        "prompts/en/faq_address.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/faq_address.j2"),
    ),
    (
        "prompts/en/faq_hours.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/faq_hours.j2"),
    ),
    (
        "prompts/en/faq_specialties.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/faq_specialties.j2"),
    ),
    (
        "prompts/en/greeting.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/greeting.j2"),
    ),
    (
        "prompts/en/handoff.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/handoff.j2"),
    ),
    (
        "prompts/en/help.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/help.j2"),
    ),
    (
        "prompts/en/my_appointments.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/my_appointments.j2"),
    ),
    (
        "prompts/en/no_appointments.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/no_appointments.j2"),
    ),
    (
        "prompts/en/no_slots.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/no_slots.j2"),
    ),
    (
        "prompts/en/out_of_hours.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/out_of_hours.j2"),
    ),
    (
        "prompts/en/reminder.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/reminder.j2"),
    ),
    (
        "prompts/en/reminder_confirmed.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/reminder_confirmed.j2"),
    ),
    (
        "prompts/en/rescheduled.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/rescheduled.j2"),
    ),
    (
        "prompts/en/verify_code_sent.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/verify_code_sent.j2"),
    ),
    (
        "prompts/en/verify_locked.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/verify_locked.j2"),
    ),
    (
        "prompts/en/verify_wrong_code.j2",
        include_str!("../../clinics/harbor-dental/prompts/en/verify_wrong_code.j2"),
    ),
    (
        "prompts/es/alternatives.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/alternatives.j2"),
    ),
    (
        "prompts/es/appointment_list.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/appointment_list.j2"),
    ),
    (
        "prompts/es/ask_new_date.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/ask_new_date.j2"),
    ),
    (
        "prompts/es/booked.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/booked.j2"),
    ),
    (
        "prompts/es/calendar_unavailable.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/calendar_unavailable.j2"),
    ),
    (
        "prompts/es/cancelled.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/cancelled.j2"),
    ),
    (
        "prompts/es/confirm_booking.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/confirm_booking.j2"),
    ),
    (
        "prompts/es/confirm_cancel.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/confirm_cancel.j2"),
    ),
    (
        "prompts/es/confirm_reschedule.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/confirm_reschedule.j2"),
    ),
    (
        "prompts/es/email_cancelled.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/email_cancelled.j2"),
    ),
    (
        "prompts/es/email_confirmation.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/email_confirmation.j2"),
    ),
    (
        "prompts/es/email_reminder.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/email_reminder.j2"),
    ),
    (
        "prompts/es/email_rescheduled.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/email_rescheduled.j2"),
    ),
    (
        "prompts/es/fallback.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/fallback.j2"),
    ),
    (
        "prompts/es/faq_address.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/faq_address.j2"),
    ),
    (
        "prompts/es/faq_hours.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/faq_hours.j2"),
    ),
    (
        "prompts/es/faq_specialties.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/faq_specialties.j2"),
    ),
    (
        "prompts/es/greeting.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/greeting.j2"),
    ),
    (
        "prompts/es/handoff.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/handoff.j2"),
    ),
    (
        "prompts/es/help.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/help.j2"),
    ),
    (
        "prompts/es/my_appointments.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/my_appointments.j2"),
    ),
    (
        "prompts/es/no_appointments.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/no_appointments.j2"),
    ),
    (
        "prompts/es/no_slots.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/no_slots.j2"),
    ),
    (
        "prompts/es/out_of_hours.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/out_of_hours.j2"),
    ),
    (
        "prompts/es/reminder.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/reminder.j2"),
    ),
    (
        "prompts/es/reminder_confirmed.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/reminder_confirmed.j2"),
    ),
    (
        "prompts/es/rescheduled.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/rescheduled.j2"),
    ),
    (
        "prompts/es/verify_code_sent.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/verify_code_sent.j2"),
    ),
    (
        "prompts/es/verify_locked.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/verify_locked.j2"),
    ),
    (
        "prompts/es/verify_wrong_code.j2",
        include_str!("../../clinics/harbor-dental/prompts/es/verify_wrong_code.j2"),
    ),
    (
        "prompts/nlu.j2",
        include_str!("../../clinics/harbor-dental/prompts/nlu.j2"),
    ),
    (
        "prompts/phrase.j2",
        include_str!("../../clinics/harbor-dental/prompts/phrase.j2"),
    ),
    (
        "schemas/appointment.json",
        include_str!("../../clinics/harbor-dental/schemas/appointment.json"),
    ),
    (
        "schemas/choice.json",
        include_str!("../../clinics/harbor-dental/schemas/choice.json"),
    ),
    (
        "schemas/date.json",
        include_str!("../../clinics/harbor-dental/schemas/date.json"),
    ),
    (
        "schemas/email.json",
        include_str!("../../clinics/harbor-dental/schemas/email.json"),
    ),
    (
        "schemas/person_name.json",
        include_str!("../../clinics/harbor-dental/schemas/person_name.json"),
    ),
    (
        "schemas/phone.json",
        include_str!("../../clinics/harbor-dental/schemas/phone.json"),
    ),
    (
        "schemas/specialty.json",
        include_str!("../../clinics/harbor-dental/schemas/specialty.json"),
    ),
    (
        "schemas/time.json",
        include_str!("../../clinics/harbor-dental/schemas/time.json"),
    ),
    (
        "schemas/verification_code.json",
        include_str!("../../clinics/harbor-dental/schemas/verification_code.json"),
    ),
    (
        "schemas/window.json",
        include_str!("../../clinics/harbor-dental/schemas/window.json"),
    ),
];

/// Why `init` refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Slug(#[from] super::SlugError),
    #[error(
        "`main` is the name of the clinic at the top of the folder (its flows/, prompts/ and \
         schemas/); choose another name for the new clinic"
    )]
    Main,
    #[error("{0} already exists: choose another name, or remove that folder first")]
    Exists(PathBuf),
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Every file of a new clinic `slug`, as (path inside the clinic's folder, content).
pub fn files(slug: &Slug) -> Vec<(&'static str, String)> {
    let clinic = CLINIC_YAML
        .replace("__NAME__", &display_name(slug))
        .replace("__SLUG__", slug.as_str());
    let mut out = vec![
        ("flows/clinic.yaml", clinic),
        (EDITOR_SCHEMA.0, EDITOR_SCHEMA.1.to_string()),
    ];
    out.extend(SHARED.iter().chain(CONVERSATIONS).map(|(p, c)| (*p, c.to_string())));
    out
}

/// A first name for the clinic from its slug: `dental-norte` → `Dental Norte`.
pub fn display_name(slug: &Slug) -> String {
    slug.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates `dir/clinics/<slug>/` from the template. Returns the new folder.
pub fn write(dir: &Path, slug: &str) -> Result<PathBuf, InitError> {
    let slug = Slug::parse(slug)?;
    if slug.is_main() {
        return Err(InitError::Main);
    }
    let clinics = dir.join(CLINICS);
    let target = clinics.join(slug.as_str());
    if target.exists() {
        return Err(InitError::Exists(target));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Write { path, source }
    };
    // Hidden (discover skips it) until complete.
    let staging = clinics.join(format!(".{}.init-{}", slug, std::process::id()));
    for (rel, content) in files(&slug) {
        let path = staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, content).map_err(io(&path))?;
    }
    if target.exists() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(InitError::Exists(target));
    }
    std::fs::rename(&staging, &target).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        io(&target)(e)
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_slug() {
        let s = Slug::parse("dental-norte").unwrap();
        assert_eq!(display_name(&s), "Dental Norte");
        let yaml = &files(&s)[0].1;
        assert!(yaml.contains("name: Dental Norte") && yaml.contains("--clinic dental-norte"));
        assert!(!yaml.contains("__"));
    }

    #[test]
    fn refusals_say_why_in_plain_words() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(write(dir.path(), "main"), Err(InitError::Main)));
        let bad = write(dir.path(), "Dental Norte").unwrap_err().to_string();
        assert!(bad.contains("lowercase letters"), "{bad}");
        let made = write(dir.path(), "norte").unwrap();
        assert!(made.join("flows/clinic.yaml").is_file());
        let again = write(dir.path(), "norte").unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        // Nothing half-written is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path().join(CLINICS)).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
    }

    /// Every flow, prompt and schema of harbor-dental is in the template (a file added there
    /// and forgotten here would make the template's clinic differ from the demo's).
    #[test]
    fn the_template_has_every_shared_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("clinics/harbor-dental");
        let mut on_disk = Vec::new();
        for sub in ["flows", "prompts", "schemas"] {
            collect(&root, &root.join(sub), &mut on_disk);
        }
        on_disk.retain(|p| p != "flows/clinic.yaml" && p != EDITOR_SCHEMA.0);
        on_disk.sort();
        let mut listed: Vec<String> = SHARED.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
}
