//! The clinic console under `/console`: server-rendered minijinja pages with htmx (vendored,
//! embedded in the binary: no CDN, works offline), in Spanish and English. Its own route
//! set, mounted by `crate::server` beside the API and taking the same `AppState`, so the
//! server can mount it per clinic unchanged.
//!
//! `accounts` staff and passwords · `auth` sessions, CSRF, lockout · `inbox` handoffs ·
//! `flows` the flows in force and the last reload · `editor` the file editor (history,
//! diff, rollback; through `crate::editor`) · `i18n` the console's texts ·
//! `agenda` + `agenda_slots` the day's appointments, booking, moving, attendance ·
//! `conversations` search and one conversation's turns · `dashboard` + `chart` figures per
//! day as inline SVG · `view` what those pages share · `i18n_pages` their texts.

pub mod accounts;
mod agenda;
mod agenda_slots;
mod auth;
mod chart;
mod conversations;
pub mod dashboard;
mod editor;
mod flows;
mod i18n;
mod i18n_pages;
mod inbox;
mod view;
pub mod widget;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use minijinja::Environment;
use poem::http::StatusCode;
use poem::web::{Data, Redirect};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, get, handler, post};
use serde_json::{Map, Value, json};

use crate::lang::Lang;
use crate::server::AppState;
pub use accounts::{Account, Accounts, Role};
pub use auth::{LOCK, MAX_FAILURES, Staff};

/// The console's own state: accounts and page templates (sessions and failed logins are in
/// the database, src/store/staff_sessions.rs).
pub struct Console {
    accounts: Mutex<Arc<Accounts>>,
    pages: Environment<'static>,
    /// Mark cookies `Secure` even when no proxy says the request came over HTTPS.
    pub secure_cookies: bool,
    /// Where the accounts file is (None: accounts given in memory, as in tests).
    pub accounts_file: Option<PathBuf>,
}

impl Default for Console {
    fn default() -> Self {
        Console::new(Accounts::default())
    }
}

/// The page templates, compiled once at start.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("inbox_list.html", include_str!("templates/inbox_list.html")),
    ("escalation.html", include_str!("templates/escalation.html")),
    ("flows.html", include_str!("templates/flows.html")),
    ("editor_files.html", include_str!("templates/editor_files.html")),
    ("editor.html", include_str!("templates/editor.html")),
    ("editor_problems.html", include_str!("templates/editor_problems.html")),
    ("editor_history.html", include_str!("templates/editor_history.html")),
    ("agenda.html", include_str!("templates/agenda.html")),
    ("agenda_book.html", include_str!("templates/agenda_book.html")),
    ("agenda_move.html", include_str!("templates/agenda_move.html")),
    ("conversations.html", include_str!("templates/conversations.html")),
    ("conversation.html", include_str!("templates/conversation.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
];

impl Console {
    pub fn new(accounts: Accounts) -> Console {
        let mut pages = Environment::new();
        pages.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            if let Err(e) = pages.add_template(name, source) {
                // Our own templates: a broken one is a bug caught by every console test.
                tracing::error!("console template {name}: {e}");
            }
        }
        Console {
            accounts: Mutex::new(Arc::new(accounts)),
            pages,
            secure_cookies: false,
            accounts_file: None,
        }
    }

    /// Reads the accounts file (`clinicflow user add` writes it).
    pub fn from_file(path: PathBuf) -> Result<Console, accounts::AccountError> {
        let mut c = Console::new(Accounts::load(&path)?);
        c.accounts_file = Some(path);
        Ok(c)
    }

    pub fn accounts(&self) -> Arc<Accounts> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn render(&self, page: Page) -> Response {
        let html = self
            .pages
            .get_template(page.template)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&page.ctx))));
        match html {
            Ok(body) => Response::builder()
                .content_type("text/html; charset=utf-8")
                .header("Cache-Control", "no-store")
                .header("X-Frame-Options", "DENY")
                .header("Content-Security-Policy", CSP)
                .body(body),
            Err(e) => {
                tracing::error!("console page {}: {e}", page.template);
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body("the page could not be drawn")
            }
        }
    }
}

/// Only our own scripts and styles; no frames; forms post to us only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'";

/// One page to draw: its template and what it shows.
pub(crate) struct Page {
    template: &'static str,
    ctx: Map<String, Value>,
}

impl Page {
    fn new(state: &AppState, req: &Request, template: &'static str) -> Page {
        let lang = lang_of(state, req);
        let mut ctx = Map::new();
        ctx.insert("t".into(), i18n::all(lang));
        ctx.insert("lang".into(), json!(lang.code()));
        ctx.insert("clinic".into(), json!(state.service.bot().clinic.name));
        Page { template, ctx }
    }

    fn staff(mut self, staff: &Staff) -> Page {
        self.ctx.insert(
            "staff".into(),
            json!({ "name": staff.name, "role": staff.role.as_str(), "admin": staff.role == Role::Admin }),
        );
        self.ctx.insert("csrf".into(), json!(staff.csrf));
        self
    }

    fn with(mut self, key: &str, value: impl serde::Serialize) -> Page {
        self.ctx
            .insert(key.into(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }
}

/// The console's language: `?lang=en|es` (kept in a cookie), else the browser's
/// Accept-Language, else the clinic's.
fn lang_of(state: &AppState, req: &Request) -> Lang {
    let from_query = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
        .map(str::to_string);
    let chosen = from_query.or_else(|| auth::cookie(req, "cf_lang"));
    if let Some(l) = chosen.as_deref().and_then(Lang::parse) {
        return l;
    }
    let accept = req
        .headers()
        .get(poem::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match accept.get(..2) {
        Some("en") => Lang::En,
        Some("es") => Lang::Es,
        _ => state.service.bot().clinic.language,
    }
}

#[handler]
fn home() -> Redirect {
    Redirect::see_other("/console/inbox")
}

/// Embedded files: htmx, the console's style and script, the widget.
fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match name {
        "htmx.min.js" => ("text/javascript", include_bytes!("assets/htmx.min.js")),
        "console.js" => ("text/javascript", include_bytes!("assets/console.js")),
        "console.css" => ("text/css", include_bytes!("assets/console.css")),
        "editor.js" => ("text/javascript", include_bytes!("assets/editor.js")),
        "editor.css" => ("text/css", include_bytes!("assets/editor.css")),
        _ => return None,
    })
}

#[handler]
fn assets(name: poem::web::Path<String>) -> Response {
    match asset(&name) {
        Some((mime, bytes)) => Response::builder()
            .content_type(mime)
            .header("Cache-Control", "public, max-age=3600")
            .body(bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sets the language cookie when `?lang=` is given.
async fn remember_lang<E: poem::Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let chosen = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
        .and_then(Lang::parse);
    let mut resp = next.call(req).await?.into_response();
    if let Some(l) = chosen
        && let Ok(v) = poem::http::HeaderValue::from_str(&format!(
            "cf_lang={}; Path=/console; SameSite=Strict; Max-Age=31536000",
            l.code()
        ))
    {
        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The console's routes, to be nested at `/console` (they need `Data<AppState>`).
pub fn routes() -> impl poem::Endpoint<Output = Response> {
    Route::new()
        .at("/", get(home))
        .at("/login", get(auth::login_page).post(auth::login))
        .at("/logout", post(auth::logout))
        .at("/inbox", get(inbox::page))
        .at("/inbox/list", get(inbox::list))
        .at("/inbox/:id", get(inbox::show))
        .at("/inbox/:id/reply", post(inbox::reply))
        .at("/inbox/:id/take", post(inbox::take))
        .at("/inbox/:id/release", post(inbox::release))
        .at("/inbox/:id/resolve", post(inbox::resolve))
        .at("/events", get(inbox::events))
        .at("/flows", get(flows::page))
        .at("/editor", get(editor::files))
        .at("/editor/file", get(editor::open).post(editor::submit))
        .at("/editor/history", get(editor::history))
        .at("/editor/rollback", post(editor::rollback))
        .at("/agenda", get(agenda::page))
        .at("/agenda/book", get(agenda_slots::book_form).post(agenda_slots::book))
        .at("/agenda/:id/cancel", post(agenda::cancel))
        .at("/agenda/:id/mark", post(agenda::mark))
        .at(
            "/agenda/:id/move",
            get(agenda_slots::move_form).post(agenda_slots::move_to),
        )
        .at("/conversations", get(conversations::list))
        .at("/conversations/:id", get(conversations::show))
        .at("/dashboard", get(dashboard::page))
        .at("/assets/:name", get(assets))
        .around(remember_lang)
        // The console answers its own errors (a redirect to the login page keeps its
        // Location; a refusal is a plain sentence), not the API's JSON.
        .catch_all_error(|err| async move { err.into_response() })
}

/// `_data` helper for handlers.
type State<'a> = Data<&'a AppState>;
