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
        "unavailable",
        "No se pudo iniciar la sesión porque la base de datos no responde. Intente de nuevo en un momento.",
        "Could not log you in because the database does not answer. Try again in a moment.",
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
    (
        "edit_files",
        "Editar los archivos de la clínica",
        "Edit the clinic's files",
    ),
    ("files", "Archivos de la clínica", "The clinic's files"),
    ("kind_flow", "Flujos y datos (flows/)", "Flows and data (flows/)"),
    (
        "kind_prompt",
        "Textos y prompts (prompts/)",
        "Texts and prompts (prompts/)",
    ),
    ("kind_schema", "Esquemas (schemas/)", "Schemas (schemas/)"),
    ("edit", "Editar", "Edit"),
    ("history", "Historial", "History"),
    ("check", "Revisar", "Check"),
    ("save", "Guardar", "Save"),
    ("content", "Contenido de", "Content of"),
    (
        "note",
        "Nota sobre el cambio (opcional)",
        "Note about the change (optional)",
    ),
    ("note_title", "Nota", "Note"),
    ("line", "Línea", "Line"),
    ("column", "columna", "column"),
    (
        "editor_help",
        "«Revisar» compila toda la clínica con su cambio, sin guardarlo. «Guardar» revisa lo mismo y, si no hay problemas, lo guarda y lo pone en uso enseguida; si los hay, no guarda nada.",
        "“Check” compiles the whole clinic with your change, without saving it. “Save” runs the same check and, when there are no problems, saves it and puts it in use at once; when there are, it saves nothing.",
    ),
    (
        "check_ok",
        "Revisado: toda la clínica compila con este cambio. Todavía no está guardado.",
        "Checked: the whole clinic compiles with this change. It is not saved yet.",
    ),
    (
        "not_saved_errors",
        "Hay problemas: no se guardó nada y sigue en uso la versión anterior.",
        "There are problems: nothing was saved and the previous version keeps serving.",
    ),
    (
        "stale",
        "Alguien guardó este archivo después de que usted lo abrió, así que no se guardó nada. Copie su cambio, abra la versión nueva y vuelva a hacerlo.",
        "Someone saved this file after you opened it, so nothing was saved. Copy your change, open the new version and make it again.",
    ),
    (
        "stale_rollback",
        "El archivo cambió desde que abrió el historial: no se volvió atrás. Mire el historial de nuevo.",
        "The file changed since you opened the history: nothing was rolled back. Look at the history again.",
    ),
    ("saved_live", "Guardado: ya está en uso.", "Saved: it is live now."),
    (
        "saved_not_live",
        "Guardado, pero la recarga encontró problemas en otros archivos: sigue en uso la versión anterior (vea Flujos).",
        "Saved, but the reload found problems in other files: the previous version keeps serving (see Flows).",
    ),
    (
        "unchanged",
        "No hay cambios: ese es el contenido que ya está en uso.",
        "No changes: that is the content already live.",
    ),
    (
        "rolled_back",
        "Vuelta atrás hecha: esa versión ya está en uso.",
        "Rolled back: that version is live now.",
    ),
    (
        "rollback_refused",
        "Esa versión ya no compila con el resto de la clínica: no se volvió atrás.",
        "That version no longer compiles with the rest of the clinic: nothing was rolled back.",
    ),
    ("problems", "Problemas", "Problems"),
    ("how_to_fix", "Cómo arreglarlo", "How to fix it"),
    ("versions", "Versiones, la más nueva primero", "Versions, newest first"),
    ("version", "Versión", "Version"),
    ("when", "Cuándo", "When"),
    ("who", "Quién", "Who"),
    ("actions", "Acciones", "Actions"),
    ("current", "actual", "current"),
    ("found_on_disk", "encontrada en el disco", "found on disk"),
    ("rollback_to", "vuelta a la v", "rollback to v"),
    ("by", "por", "by"),
    ("rollback", "Volver a", "Roll back to"),
    ("diff_now", "Cambios hasta hoy", "Diff with now"),
    ("diff_prev", "Cambios respecto de la anterior", "Diff with previous"),
    ("diff_title", "Cambios", "Changes"),
    ("no_diff", "Sin diferencias.", "No differences."),
    ("lines_added", "Líneas agregadas", "Lines added"),
    ("lines_removed", "Líneas quitadas", "Lines removed"),
    ("old_line", "Antes", "Before"),
    ("new_line", "Después", "After"),
    ("change", "Cambio", "Change"),
    ("text", "Texto", "Text"),
    ("added_line", "agregada", "added"),
    ("removed_line", "quitada", "removed"),
    ("unified_text", "El mismo diff como texto", "The same diff as text"),
    ("language", "English", "Español"),
    ("other_lang", "en", "es"),
];

/// This table and those of other pages.
fn every() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXTS.iter().chain(super::i18n_pages::TEXTS)
}

/// Every text in `lang`, as a template value (`t.inbox`).
pub fn all(lang: Lang) -> Value {
    let mut m = Map::new();
    for (key, es, en) in every() {
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
    every()
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
        let mut keys: Vec<&str> = super::every().map(|(k, ..)| *k).collect();
        assert!(super::every().all(|(_, es, en)| !es.is_empty() && !en.is_empty()));
        for r in super::super::i18n_pages::REASONS {
            assert!(keys.contains(&format!("reason_{r}").as_str()), "no words for {r}");
        }
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is written twice");
    }
}
