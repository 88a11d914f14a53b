//! Logging staff in: session cookies (HttpOnly, SameSite=Strict, Secure behind HTTPS), a CSRF
//! token per session checked on every form, and a lockout after repeated wrong passwords.
//!
//! Sessions live in memory: a restart logs everybody out, and with several replicas a
//! sticky load balancer (or one console replica) is needed. See docs/design-notes.md.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::{Data, Form, Redirect};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, handler};
use serde::Deserialize;

use super::accounts::Role;
use super::{Console, Page};
use crate::api::AppState;

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

#[derive(Debug, Clone)]
pub(super) struct StaffSession {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub seen: Instant,
}

#[derive(Debug, Default)]
pub(super) struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

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
        let found = cookie(req, SESSION_COOKIE).and_then(|token| state.console.session(&token));
        found.ok_or_else(|| poem::Error::from_response(Redirect::see_other("/console/login").into_response()))
    }
}

impl Console {
    pub(super) fn session(&self, token: &str) -> Option<Staff> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.seen) < IDLE);
        let s = sessions.get_mut(token)?;
        s.seen = now;
        Some(Staff {
            name: s.name.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
        })
    }

    /// Whether the name is locked now (too many wrong passwords lately).
    fn locked(&self, name: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(name)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let f = failures.entry(name.to_string()).or_default();
        if f.locked_until.is_some_and(|until| Instant::now() >= until) {
            *f = Failures::default();
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(Instant::now() + LOCK);
        }
    }

    fn logged_in(&self, name: &str, role: Role) -> String {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        let token = random_token();
        let session = StaffSession {
            name: name.to_string(),
            role,
            csrf: random_token(),
            seen: Instant::now(),
        };
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), session);
        token
    }

    fn logout(&self, token: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
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
    if state.console.locked(&name) {
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
            let token = state.console.logged_in(&name, role);
            tracing::info!(role = role.as_str(), "staff logged in to the console");
            let mut resp = Redirect::see_other("/console/inbox").into_response();
            set_cookie(&mut resp, req, &state, SESSION_COOKIE, &token, None);
            set_cookie(&mut resp, req, &state, LOGIN_COOKIE, "", Some(0));
            resp
        }
        None => {
            state.console.failed(&name);
            tracing::warn!("a console login failed");
            let key = if state.console.locked(&name) {
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
pub(super) fn logout(
    state: Data<&AppState>,
    req: &Request,
    staff: Staff,
    form: Form<CsrfOnly>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.0.csrf)?;
    if let Some(token) = cookie(req, SESSION_COOKIE) {
        state.console.logout(&token);
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

pub(super) fn empty_failures() -> HashMap<String, Failures> {
    HashMap::new()
}
