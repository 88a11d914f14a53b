//! Which clinic a request is for, when a server runs several (docs/clinics.md, Routing):
//!
//! - `/v1/clinics/{clinic}/…` is `/v1/…` of that clinic; `/clinics/{clinic}/…` is any other
//!   route set of that clinic (`/clinics/x/calendars/google/notify`, `/clinics/x/twilio/…`).
//! - `/twilio/…`: the clinic that lists the `To` number (a status callback: the `From`).
//! - `/web/{name}/messages`: the clinic whose web chat that is.
//! - `/metrics` and `/readyz` report every clinic.
//! - Anything else (`/v1/…`, `/console`, `/docs`): the clinic at the top of the folder
//!   (`main`). With one clinic running, every request is that clinic's, whatever it names.
//!
//! The chosen clinic's state is put where the handlers find it (`Data<&AppState>`), and the
//! request runs in the clinic's scope (metric labels, log field).

use std::sync::Arc;

use poem::http::{StatusCode, Uri};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::AppState;
use crate::channels::twilio::params::Params;
use crate::clinics::{Clinics, scope};

pub(super) async fn dispatch<E: Endpoint>(
    clinics: Arc<Clinics>,
    next: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let state = match pick(&clinics, &mut req).await {
        Ok(state) => state,
        Err(refusal) => return Ok(refusal),
    };
    let clinic = state.clinic.clone();
    req.extensions_mut().insert(state);
    scope::scope(
        clinic,
        async move { next.call(req).await.map(IntoResponse::into_response) },
    )
    .await
}

async fn pick(clinics: &Clinics, req: &mut Request) -> Result<AppState, Response> {
    let running = clinics.running();
    let Some(first) = running.first() else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no clinic is running: every clinic's files have problems (see the server's log or `clinicflow check`)"
                .into(),
        ));
    };
    let path = req.uri().path().to_string();

    // A clinic named in the path, for one clinic or many.
    if let Some((slug, rest)) = named(&path) {
        let Some(state) = clinics.get(slug) else {
            return Err(unknown_clinic(slug, clinics));
        };
        rewrite(req, &rest);
        return Ok(state);
    }
    if path == "/metrics" || path == "/readyz" {
        return Ok(clinics.reporting_state().unwrap_or_else(|| first.state.clone()));
    }
    if running.len() == 1 {
        return Ok(first.state.clone());
    }
    if path.starts_with("/twilio/") {
        return by_number(clinics, req).await;
    }
    if let Some(rest) = path.strip_prefix("/web/")
        && let Some((name, _)) = rest.split_once('/')
    {
        return clinics
            .by_web_slug(name)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "no such clinic".into()));
    }
    if path.starts_with("/v1/") && clinics.get(crate::clinics::layout::MAIN).is_none() {
        let names: Vec<String> = running.iter().map(|r| r.slug.to_string()).collect();
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!(
                "this server runs several clinics: use /v1/clinics/{{clinic}}{} (clinics: {})",
                path.trim_start_matches("/v1"),
                names.join(", ")
            ),
        ));
    }
    Ok(clinics.default_state().unwrap_or_else(|| first.state.clone()))
}

/// `/v1/clinics/{slug}/rest` → (slug, `/v1/rest`); `/clinics/{slug}/rest` → (slug, `/rest`).
fn named(path: &str) -> Option<(&str, String)> {
    let (prefix, tail) = if let Some(t) = path.strip_prefix("/v1/clinics/") {
        ("/v1", t)
    } else {
        ("", path.strip_prefix("/clinics/")?)
    };
    let (slug, rest) = tail.split_once('/').unwrap_or((tail, ""));
    Some((slug, format!("{prefix}/{rest}")))
}

/// The path and query a request came with, before `/clinics/{clinic}` was taken off it: what
/// Twilio signed.
#[derive(Clone, Debug)]
pub struct CalledAs(pub String);

/// Points the request at `path`, keeping its query.
fn rewrite(req: &mut Request, path: &str) {
    let called = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    req.extensions_mut().insert(CalledAs(called));
    let target = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    if let Ok(uri) = target.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}

/// A Twilio webhook: the clinic of its `To` number (inbound message or call), else of its
/// `From` (the status callback of a message or call the clinic made).
async fn by_number(clinics: &Clinics, req: &mut Request) -> Result<AppState, Response> {
    // `limit_body` has read the body into memory already; put it back for the handler.
    let body = req.take_body().into_vec().await.unwrap_or_default();
    let params = Params::from_json(&body)
        .filter(|p| p.get("To").is_some())
        .unwrap_or_else(|| Params::parse_form(&body));
    req.set_body(body);
    for field in ["To", "From"] {
        if let Some(state) = params.get(field).and_then(|n| clinics.by_number(n)) {
            return Ok(state);
        }
    }
    // The number may be a patient's (a callback's `To`): only its last digits are logged.
    let to = params.get("To").unwrap_or("");
    let tail: String = to.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    tracing::warn!(
        path = req.uri().path(),
        to_ending = %tail,
        "a Twilio webhook for a number no clinic lists was refused; add it to that clinic's clinic.numbers"
    );
    Err(refuse(
        StatusCode::NOT_FOUND,
        "no clinic here answers this number".into(),
    ))
}

fn unknown_clinic(slug: &str, clinics: &Clinics) -> Response {
    let names: Vec<String> = clinics.running().iter().map(|r| r.slug.to_string()).collect();
    let shown: String = slug.chars().take(60).collect();
    refuse(
        StatusCode::NOT_FOUND,
        format!("there is no clinic `{shown}` here (clinics: {})", names.join(", ")),
    )
}

/// The API's JSON error body (`ErrorBody`), whatever the route set.
fn refuse(status: StatusCode, message: String) -> Response {
    let code = if status == StatusCode::NOT_FOUND {
        "not_found"
    } else {
        "unavailable"
    };
    let body = serde_json::json!({ "error": code, "message": message });
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clinic_in_the_path_is_taken_off_it() {
        assert_eq!(
            named("/v1/clinics/harbor-dental/appointments"),
            Some(("harbor-dental", "/v1/appointments".into()))
        );
        assert_eq!(named("/v1/clinics/main"), Some(("main", "/v1/".into())));
        assert_eq!(
            named("/clinics/harbor-dental/calendars/google/notify"),
            Some(("harbor-dental", "/calendars/google/notify".into()))
        );
        assert_eq!(named("/v1/appointments"), None);
        assert_eq!(named("/twilio/messaging"), None);
    }
}
