//! The file editor (admins): the clinic's files listed, one opened in a plain textarea,
//! "Check" (the full compile with the edit in memory) and "Save" (check, atomic write, reload
//! now: the page says whether it is live), a history of versions with diffs, and rollback.
//! Everything goes through `crate::editor::FileEditor`; these handlers only draw pages.

use poem::http::StatusCode;
use poem::web::{Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, Staff, State};
use crate::editor::{Against, BotPath, EditError, FileEditor, FileKind};
use crate::flow::diag::Diagnostics;
use crate::lang::Lang;
use crate::server::AppState;
use crate::store::VersionKind;

fn editor(state: &AppState) -> FileEditor {
    FileEditor::new(state.reloader.clone(), state.service.store.clone())
}

/// An editor error as the HTTP answer it deserves (a bad request is a 4xx, never a 5xx).
fn refusal(e: EditError) -> poem::Error {
    let status = match &e {
        EditError::BadPath(_) => StatusCode::BAD_REQUEST,
        EditError::NotFound(_) | EditError::NoSuchVersion(_) => StatusCode::NOT_FOUND,
        EditError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        EditError::Stale => StatusCode::CONFLICT,
        EditError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        EditError::Io(_) => {
            tracing::error!("console editor: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        EditError::Store(_) => {
            tracing::error!("console editor: {e}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    poem::Error::from_string(e.to_string(), status)
}

/// Every diagnostic as the page shows it, help in the page's language (Spanish first, then
/// English, for Spanish).
fn diagnostics(mut diags: Diagnostics, lang: Lang) -> Vec<Value> {
    diags.localize(lang);
    diags
        .0
        .iter()
        .map(|d| {
            // The excerpt alone: the help gets its own paragraph.
            let mut excerpt = d.clone();
            excerpt.help = None;
            json!({
                "file": d.file, "line": d.line, "column": d.col, "message": d.message,
                "help": d.help, "rendered": excerpt.render(),
            })
        })
        .collect()
}

#[handler]
pub(super) async fn files(state: State<'_>, req: &Request, staff: Staff) -> poem::Result<Response> {
    staff.admin()?;
    let files = editor(&state).files().map_err(refusal)?;
    let group =
        |kind: FileKind| -> Vec<&str> { files.iter().filter(|p| p.kind() == kind).map(BotPath::as_str).collect() };
    let groups = json!([
        { "title": "kind_flow", "files": group(FileKind::Flow) },
        { "title": "kind_prompt", "files": group(FileKind::Prompt) },
        { "title": "kind_schema", "files": group(FileKind::Schema) },
    ]);
    let view = Page::new(&state, req, "editor_files.html")
        .staff(&staff)
        .with("groups", groups);
    Ok(state.console.render(view))
}

#[derive(Deserialize)]
pub(super) struct FileQuery {
    #[serde(default)]
    path: String,
    /// What the last action did (after a redirect): `live`, `not_live`, `unchanged`.
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    v: Option<u32>,
}

/// What the editor page shows besides the file.
#[derive(Default)]
struct EditorView {
    notice: Option<&'static str>,
    error: Option<&'static str>,
    problems: Vec<Value>,
}

fn editor_page(
    state: &AppState,
    req: &Request,
    staff: &Staff,
    file: Value,
    view: EditorView,
    status: StatusCode,
) -> Response {
    let page = Page::new(state, req, "editor.html")
        .staff(staff)
        .with("file", file)
        .with("notice", view.notice)
        .with("error", view.error)
        .with("problems", view.problems);
    let mut resp = state.console.render(page);
    resp.set_status(status);
    resp
}

#[handler]
pub(super) async fn open(state: State<'_>, req: &Request, staff: Staff, q: Query<FileQuery>) -> poem::Result<Response> {
    staff.admin()?;
    let opened = editor(&state).open(&q.path).await.map_err(refusal)?;
    let notice = match q.done.as_deref() {
        Some("live") => Some("saved_live"),
        Some("not_live") => Some("saved_not_live"),
        Some("unchanged") => Some("unchanged"),
        _ => None,
    };
    let file = json!({
        "path": opened.path.as_str(), "content": opened.content, "base": opened.hash,
        "version": q.v.unwrap_or(opened.version), "lines": opened.content.lines().count().max(1),
    });
    let view = EditorView {
        notice,
        ..Default::default()
    };
    Ok(editor_page(&state, req, &staff, file, view, StatusCode::OK))
}

#[derive(Deserialize)]
pub(super) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    note: String,
    /// `check` or `save` (the button pressed).
    #[serde(default)]
    action: String,
}

fn file_link(path: &str, done: &str, v: u32) -> String {
    format!("/console/editor/file?path={}&done={done}&v={v}", encode(path))
}

/// Enough for our own paths (letters, digits, `/`, `.`, `-`, `_`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[handler]
pub(super) async fn submit(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    form: Form<EditForm>,
) -> poem::Result<Response> {
    staff.admin()?;
    staff.check_csrf(&form.csrf)?;
    let form = form.0;
    let lang = super::lang_of(&state, req);
    let ed = editor(&state);
    let content = crate::editor::normalize(&form.content);
    let file = json!({
        "path": form.path, "content": content, "base": form.base, "note": form.note,
        "lines": content.lines().count().max(1),
    });
    let result = if form.action == "check" {
        ed.check(&form.path, &content).await.map(|()| None)
    } else {
        ed.save(crate::editor::Edit {
            path: &form.path,
            content: &content,
            base: &form.base,
            author: &staff.name,
            note: Some(&form.note),
        })
        .await
        .map(Some)
    };
    match result {
        Ok(None) => {
            let view = EditorView {
                notice: Some("check_ok"),
                ..Default::default()
            };
            Ok(editor_page(&state, req, &staff, file, view, StatusCode::OK))
        }
        Ok(Some(saved)) => {
            let done = match &saved.report {
                None => "unchanged",
                Some(r) if r.ok => "live",
                Some(_) => "not_live",
            };
            Ok(Redirect::see_other(file_link(&form.path, done, saved.version)).into_response())
        }
        Err(EditError::Invalid(diags)) => {
            let view = EditorView {
                error: Some("not_saved_errors"),
                problems: diagnostics(diags, lang),
                ..Default::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(editor_page(&state, req, &staff, file, view, status))
        }
        Err(EditError::Stale) => {
            let view = EditorView {
                error: Some("stale"),
                ..Default::default()
            };
            Ok(editor_page(&state, req, &staff, file, view, StatusCode::CONFLICT))
        }
        Err(e) => Err(refusal(e)),
    }
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    #[serde(default)]
    path: String,
    /// The version whose diff to show.
    #[serde(default)]
    v: Option<u32>,
    /// `previous` (default: the file now).
    #[serde(default)]
    against: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

async fn history_page(
    state: &AppState,
    req: &Request,
    staff: &Staff,
    path: &str,
    diff_of: Option<(u32, Against)>,
    error: Option<(&'static str, Vec<Value>)>,
    notice: Option<&'static str>,
) -> poem::Result<Response> {
    let ed = editor(state);
    let opened = ed.open(path).await.map_err(refusal)?;
    let tz = state.service.bot().clinic.tz.clone();
    let versions: Vec<Value> = ed
        .history(path)
        .await
        .map_err(refusal)?
        .into_iter()
        .map(|v| {
            json!({
                "n": v.n, "author": v.author, "note": v.note, "hash": v.hash.get(..12),
                "at": v.at.to_zoned(tz.clone()).strftime("%d/%m/%Y %H:%M:%S").to_string(),
                "found": v.kind == VersionKind::Found, "rollback_of": v.rollback_of,
                "current": v.hash == opened.hash,
            })
        })
        .collect();
    let diff = match diff_of {
        Some((n, against)) => {
            let d = ed.diff(path, n, against).await.map_err(refusal)?;
            Some(json!({ "v": n, "previous": against == Against::Previous, "diff": d }))
        }
        None => None,
    };
    let (error, problems) = error.unzip();
    let page = Page::new(state, req, "editor_history.html")
        .staff(staff)
        .with("file", json!({ "path": opened.path.as_str(), "base": opened.hash }))
        .with("versions", versions)
        .with("diff", diff)
        .with("error", error)
        .with("problems", problems.unwrap_or_default())
        .with("notice", notice);
    Ok(state.console.render(page))
}

#[handler]
pub(super) async fn history(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    q: Query<HistoryQuery>,
) -> poem::Result<Response> {
    staff.admin()?;
    let against = match q.against.as_deref() {
        Some("previous") => Against::Previous,
        _ => Against::Current,
    };
    let notice = match q.done.as_deref() {
        Some("rolled_back") => Some("rolled_back"),
        Some("not_live") => Some("saved_not_live"),
        _ => None,
    };
    let diff_of = q.v.map(|n| (n, against));
    history_page(&state, req, &staff, &q.path, diff_of, None, notice).await
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    path: String,
    version: u32,
    #[serde(default)]
    base: String,
}

#[handler]
pub(super) async fn rollback(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    form: Form<RollbackForm>,
) -> poem::Result<Response> {
    staff.admin()?;
    staff.check_csrf(&form.csrf)?;
    let lang = super::lang_of(&state, req);
    let result = editor(&state)
        .rollback(&form.path, form.version, &form.base, &staff.name)
        .await;
    let (key, problems, status) = match result {
        Ok(saved) => {
            let done = match &saved.report {
                Some(r) if !r.ok => "not_live",
                _ => "rolled_back",
            };
            let to = format!("/console/editor/history?path={}&done={done}", encode(&form.path));
            return Ok(Redirect::see_other(to).into_response());
        }
        Err(EditError::Invalid(diags)) => (
            "rollback_refused",
            diagnostics(diags, lang),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(EditError::Stale) => ("stale_rollback", Vec::new(), StatusCode::CONFLICT),
        Err(e) => return Err(refusal(e)),
    };
    let mut resp = history_page(&state, req, &staff, &form.path, None, Some((key, problems)), None).await?;
    resp.set_status(status);
    Ok(resp)
}
