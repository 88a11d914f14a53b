//! The console's texts in Spanish and English. One table: a key missing in a language is a
//! test failure, not a blank on screen.

use serde_json::{Map, Value};

use crate::lang::Lang;

/// (key, Spanish, English)
const TEXTS: &[(&str, &str, &str)] = &[
    ("console", "Consola", "Console"),
    ("login", "Ingresar", "Log in"),
    ("logout", "Salir", "Log out"),
    ("name", "Usuario", "User name"),
    ("password", "Contraseña", "Password"),
    (
        "bad_login",
        "Usuario o contraseña incorrectos.",
        "Wrong user name or password.",
    ),
    (
        "locked",
        "Demasiados intentos fallidos: el usuario queda bloqueado 15 minutos.",
        "Too many failed attempts: this user is locked for 15 minutes.",
    ),
    (
        "csrf_refused",
        "El formulario venció o no salió de esta consola: recargue la página e intente de nuevo.",
        "The form expired or did not come from this console: reload the page and try again.",
    ),
    ("inbox", "Bandeja", "Inbox"),
    ("flows", "Flujos", "Flows"),
    ("waiting", "Esperan al personal", "Waiting for staff"),
    (
        "none_waiting",
        "Nadie espera al personal ahora.",
        "Nobody is waiting for staff now.",
    ),
    ("reason", "Motivo", "Reason"),
    ("channel", "Canal", "Channel"),
    ("last_activity", "Última actividad", "Last activity"),
    ("taken_by", "Atiende", "Taken by"),
    ("nobody", "nadie", "nobody"),
    ("transcript", "Conversación", "Conversation"),
    ("patient", "Paciente", "Patient"),
    ("assistant", "Asistente", "Assistant"),
    ("staff", "Personal", "Staff"),
    ("slots", "Datos ya reunidos", "Collected so far"),
    ("no_slots", "Todavía ningún dato.", "Nothing collected yet."),
    ("reply", "Responder", "Reply"),
    (
        "reply_placeholder",
        "Escriba la respuesta al paciente…",
        "Write your answer to the patient…",
    ),
    ("take", "Tomar", "Take"),
    ("release", "Soltar", "Release"),
    (
        "resolve",
        "Resolver y devolver al asistente",
        "Resolve and hand back to the assistant",
    ),
    (
        "resolved",
        "Resuelta: el asistente retoma la conversación.",
        "Resolved: the assistant has the conversation again.",
    ),
    ("sent", "Enviado al paciente.", "Sent to the patient."),
    (
        "queued",
        "El canal no respondió: el mensaje quedó en cola y se reintenta solo.",
        "The channel did not answer: the message is queued and will be retried.",
    ),
    (
        "not_delivered",
        "No se pudo entregar el mensaje",
        "The message could not be delivered",
    ),
    ("empty_reply", "La respuesta está vacía.", "The reply is empty."),
    (
        "not_found",
        "No existe esa conversación derivada.",
        "There is no such handoff.",
    ),
    ("new_handoff", "Nueva derivación", "New handoff"),
    ("back", "Volver", "Back"),
    ("flows_in_force", "Flujos en uso", "Flows in force"),
    ("last_reload", "Última recarga", "Last reload"),
    ("reload_ok", "Compiló sin problemas.", "Compiled with no problems."),
    (
        "reload_failed",
        "La última edición tiene errores: siguen en uso los últimos flujos buenos.",
        "The last edit has errors: the last good flows keep serving.",
    ),
    (
        "problems_talking",
        "Problemas al conversar",
        "Problems met while talking",
    ),
    (
        "no_problems",
        "Ninguno desde la última recarga.",
        "None since the last reload.",
    ),
    (
        "admin_only",
        "Solo un administrador puede abrir esta página.",
        "Only an admin can open this page.",
    ),
    ("language", "English", "Español"),
    ("other_lang", "en", "es"),
];

/// Every text in `lang`, as a template value (`t.inbox`).
pub fn all(lang: Lang) -> Value {
    let mut m = Map::new();
    for (key, es, en) in TEXTS {
        let v = match lang {
            Lang::Es => es,
            Lang::En => en,
        };
        m.insert((*key).into(), Value::String((*v).into()));
    }
    Value::Object(m)
}

/// One text in `lang` (the key itself when unknown, which a test would catch).
pub fn text(lang: Lang, key: &str) -> &'static str {
    TEXTS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, es, en)| match lang {
            Lang::Es => *es,
            Lang::En => *en,
        })
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_text_is_written_in_both_languages_once() {
        let mut keys: Vec<&str> = super::TEXTS.iter().map(|(k, ..)| *k).collect();
        assert!(super::TEXTS.iter().all(|(_, es, en)| !es.is_empty() && !en.is_empty()));
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is written twice");
    }
}
