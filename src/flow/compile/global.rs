//! flows/global.yaml → `Global`: help, restart, cancel, handoff, greeting, fallback, reminder.

use super::{Env, File, compile_text};
use crate::flow::bot::{Behaviour, Global};
use crate::flow::diag::did_you_mean;
use crate::flow::raw::{RawBehaviour, RawGlobalFile};

pub(crate) fn compile(file: &mut File<'_>, env: &mut Env<'_>) -> Option<Global> {
    let raw = file.deser::<RawGlobalFile>(&file.doc.value.clone(), "")?.global;
    let n = file.diags.len();
    let mut b = |name: &str, r: &RawBehaviour, file: &mut File<'_>| behaviour(file, env, name, r);
    let greeting = b("greeting", &raw.greeting, file);
    let help = b("help", &raw.help, file);
    let restart = b("restart", &raw.restart, file);
    let cancel = b("cancel", &raw.cancel, file);
    let handoff = b("handoff", &raw.handoff, file);
    let out_of_hours = raw
        .out_of_hours
        .as_ref()
        .map(|t| compile_text(file, env, t, "global.out_of_hours"));
    let waiting_for_staff = compile_text(file, env, &raw.waiting_for_staff, "global.waiting_for_staff");
    let fallback = compile_text(file, env, &raw.fallback.say, "global.fallback.say");
    let escalate_say = compile_text(file, env, &raw.fallback.escalate_say, "global.fallback.escalate_say");
    // The reminder text is rendered with the reminder's context, not a conversation's.
    let names = std::mem::replace(&mut env.names, crate::reminders::text::VARIABLES);
    env.fields.push((
        "appointment",
        super::strings(crate::reminders::text::APPOINTMENT_FIELDS),
    ));
    env.fields
        .push(("reminder", super::strings(crate::reminders::text::REMINDER_FIELDS)));
    let reminder = raw
        .reminder
        .as_ref()
        .map(|t| compile_text(file, env, t, "global.reminder"));
    env.fields.truncate(env.fields.len() - 2);
    env.names = names;
    let max_attempts = raw.fallback.max_attempts.unwrap_or(2);
    if max_attempts == 0 {
        file.err(
            "global.fallback.max_attempts",
            "max_attempts must be at least 1",
            "the default is 2",
        );
    }
    if file.diags.len() > n {
        return None;
    }
    Some(Global {
        greeting,
        help,
        restart,
        cancel,
        handoff,
        out_of_hours,
        waiting_for_staff,
        fallback,
        max_attempts,
        escalate_say,
        reminder,
    })
}

fn behaviour(file: &mut File<'_>, env: &mut Env<'_>, name: &str, raw: &RawBehaviour) -> Behaviour {
    let path = format!("global.{name}");
    for (i, intent) in raw.intents.iter().enumerate() {
        check_intent(file, env, intent, &format!("{path}.intents[{i}]"));
    }
    Behaviour {
        commands: raw.commands.iter().map(|c| c.trim().to_lowercase()).collect(),
        intents: raw.intents.clone(),
        say: compile_text(file, env, &raw.say, &format!("{path}.say")),
    }
}

pub(crate) fn check_intent(file: &mut File<'_>, env: &Env<'_>, intent: &str, path: &str) -> bool {
    if env.intents.contains(&intent) || crate::flow::bot::BUILTIN_INTENTS.contains(&intent) {
        return true;
    }
    let all = env.intents.iter().copied().chain(crate::flow::bot::BUILTIN_INTENTS);
    let help =
        did_you_mean(intent, all).unwrap_or_else(|| "define it in flows/intents.yaml with example phrases".into());
    file.err(path, format!("unknown intent `{intent}`"), help);
    false
}
