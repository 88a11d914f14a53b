//! Logging staff in: session cookies (HttpOnly, SameSite=Strict, Secure behind HTTPS), a CSRF
//! token per session checked on every form, and a lockout after repeated wrong passwords.
//!
//! Sessions and failed-login counters live in the database (src/store/staff_sessions.rs), so
//! a restart logs nobody out and any replica serves any request.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use poem::http::StatusCode;
use poem::web::{Data, Form, Redirect};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, handler};
use serde::Deserialize;

use super::Page;
use super::accounts::Role;
use crate::server::AppState;
use crate::store::{StaffSession, Store};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cf_session";
/// The login form's double-submit cookie (there is no session yet to hold its token).
const LOGIN_COOKIE: &str = "cf_login";
/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Wrong passwords in a row before the name is locked.
pub const MAX_FAILURES: u32 = 5;
/// How long a locked name stays locked.
pub const LOCK: Duration = Duration::from_secs(15 * 60);

/// The member of staff making a request (a valid session cookie). Pages that need one
/// take it as an argument; without it the browser is sent to the login page.
#[derive(Debug, Clone)]
pub struct Staff {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

impl Staff {
    /// Every form carries the session's CSRF token (hidden field, or the `X-CSRF-Token`
    /// header htmx sends); a form posted from anywhere else is refused.
    pub fn check_csrf(&self, token: &str) -> poem::Result<()> {
        if !token.is_empty() && constant_eq(token, &self.csrf) {
            return Ok(());
        }
        Err(poem::Error::from_string(
            "The form expired or did not come from this console: reload the page and try again.",
            StatusCode::FORBIDDEN,
        ))
    }

    /// Admin pages refuse receptionists.
    pub fn admin(&self) -> poem::Result<()> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Receptionist => Err(poem::Error::from_string(
                "Only an admin can open this page.",
                StatusCode::FORBIDDEN,
            )),
        }
    }
}

impl<'a> FromRequest<'a> for Staff {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        let found = match cookie(req, SESSION_COOKIE) {
            Some(token) => session(&state.service.store, &token).await,
            None => None,
        };
        found.ok_or_else(|| poem::Error::from_response(Redirect::see_other("/console/login").into_response()))
    }
}

/// The staff behind a session token, if it is live (used within [`IDLE`]). A database that
/// does not answer logs nobody in.
async fn session(store: &Store, token: &str) -> Option<Staff> {
    let now = Timestamp::now();
    let found = store.staff_session(token, now, idle_cutoff(now)).await;
    let s = found
        .map_err(|e| tracing::warn!("console: cannot read a session: {e}"))
        .ok()??;
    let role = match s.role.as_str() {
        "admin" => Role::Admin,
        "receptionist" => Role::Receptionist,
        _ => return None,
    };
    Some(Staff {
        name: s.name,
        role,
        csrf: s.csrf,
    })
}

fn idle_cutoff(now: Timestamp) -> Timestamp {
    now.checked_sub(SignedDuration::try_from(IDLE).unwrap_or_default())
        .unwrap_or(now)
}

/// Whether the name is locked now (too many wrong passwords lately). A database that does
/// not answer counts as locked: no password is tried without the count.
async fn locked(store: &Store, name: &str) -> bool {
    store.login_locked(name, Timestamp::now()).await.unwrap_or(true)
}

async fn failed(store: &Store, name: &str) {
    let lock = SignedDuration::try_from(LOCK).unwrap_or_default();
    if let Err(e) = store.login_failed(name, Timestamp::now(), MAX_FAILURES, lock).await {
        tracing::warn!("console: cannot count a failed login: {e}");
    }
}

/// A new session for `name`; None when it cannot be stored.
async fn logged_in(store: &Store, name: &str, role: Role) -> Option<String> {
    let _ = store.login_cleared(name).await;
    let token = random_token();
    let session = StaffSession {
        name: name.to_string(),
        role: role.as_str().to_string(),
        csrf: random_token(),
    };
    let now = Timestamp::now();
    match store.open_staff_session(&token, &session, now, idle_cutoff(now)).await {
        Ok(()) => Some(token),
        Err(e) => {
            tracing::warn!("console: cannot store a session: {e}");
            None
        }
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(super) fn login_page(state: Data<&AppState>, req: &Request) -> Response {
    login_form(&state, req, None, StatusCode::OK)
}

fn login_form(state: &AppState, req: &Request, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_token();
    let page = Page::new(state, req, "login.html")
        .with("login_csrf", &token)
        .with("error", error);
    let mut resp = state.console.render(page);
    resp.set_status(status);
    set_cookie(&mut resp, req, state, LOGIN_COOKIE, &token, Some(600));
    resp
}

#[handler]
pub(super) async fn login(state: Data<&AppState>, req: &Request, form: Form<LoginForm>) -> Response {
    let form = form.0;
    let lang = super::lang_of(&state, req);
    let expected = cookie(req, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_eq(&expected, &form.csrf) {
        let msg = super::i18n::text(lang, "csrf_refused");
        return login_form(&state, req, Some(msg), StatusCode::FORBIDDEN);
    }
    let name = form.name.trim().to_string();
    let store = &state.service.store;
    if locked(store, &name).await {
        let msg = super::i18n::text(lang, "locked");
        return login_form(&state, req, Some(msg), StatusCode::TOO_MANY_REQUESTS);
    }
    // argon2 is deliberately slow: off the async workers.
    let accounts = state.console.accounts();
    let (n, p) = (name.clone(), form.password);
    let found = tokio::task::spawn_blocking(move || accounts.verify(&n, &p).map(|a| a.role))
        .await
        .ok()
        .flatten();
    match found {
        Some(role) => {
            let Some(token) = logged_in(store, &name, role).await else {
                let msg = super::i18n::text(lang, "unavailable");
                return login_form(&state, req, Some(msg), StatusCode::SERVICE_UNAVAILABLE);
            };
            tracing::info!(role = role.as_str(), "staff logged in to the console");
            let mut resp = Redirect::see_other("/console/inbox").into_response();
            set_cookie(&mut resp, req, &state, SESSION_COOKIE, &token, None);
            set_cookie(&mut resp, req, &state, LOGIN_COOKIE, "", Some(0));
            resp
        }
        None => {
            failed(store, &name).await;
            tracing::warn!("a console login failed");
            let key = if locked(store, &name).await {
                "locked"
            } else {
                "bad_login"
            };
            let status = if key == "locked" {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            login_form(&state, req, Some(super::i18n::text(lang, key)), status)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(super) async fn logout(
    state: Data<&AppState>,
    req: &Request,
    staff: Staff,
    form: Form<CsrfOnly>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.0.csrf)?;
    if let Some(token) = cookie(req, SESSION_COOKIE)
        && let Err(e) = state.service.store.close_staff_session(&token).await
    {
        tracing::warn!("console: cannot close a session: {e}");
    }
    let mut resp = Redirect::see_other("/console/login").into_response();
    set_cookie(&mut resp, req, &state, SESSION_COOKIE, "", Some(0));
    Ok(resp)
}

/// A cookie of the request, by name.
pub(super) fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the browser reached us over HTTPS (directly, or through a proxy that says so).
fn https(req: &Request, state: &AppState) -> bool {
    state.console.secure_cookies
        || req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(resp: &mut Response, req: &Request, state: &AppState, name: &str, value: &str, max_age: Option<u64>) {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(secs) = max_age {
        c.push_str(&format!("; Max-Age={secs}"));
    }
    if https(req, state) {
        c.push_str("; Secure");
    }
    if let Ok(v) = poem::http::HeaderValue::from_str(&c) {
        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
    }
}

/// 32 random bytes, hex: session ids and CSRF tokens.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness no session can be made safely; an empty token matches nothing.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(bytes)
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
