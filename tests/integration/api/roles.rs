//! Scoped keys: every operation × every role. A key never reaches more than its role allows,
//! and the OpenAPI document says, per operation, which roles it accepts.

use clinicflow::api::{self, ApiKeys};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Client, NOW, demo_state};

/// The roles a test server has, one key each, plus a bare key (admin).
const KEYS: &str = "admin:admin-key,staff:staff-key,integrator:integrator-key,metrics:metrics-key,bare-key";

/// Who may call what. Kept in step with the code by `the_spec_marks_every_operation`.
const ADMIN: &[&str] = &["admin"];
const STAFF: &[&str] = &["staff", "admin"];
const INTEGRATOR: &[&str] = &["integrator", "staff", "admin"];
const METRICS: &[&str] = &["metrics", "admin"];

/// (method, path as in the spec, path called, body, roles allowed).
fn operations() -> Vec<(Method, &'static str, &'static str, Value, &'static [&'static str])> {
    let message = json!({ "text": "hola", "now": NOW });
    vec![
        (
            Method::POST,
            "/v1/conversations/{id}/messages",
            "/v1/conversations/web-1/messages",
            message,
            INTEGRATOR,
        ),
        (
            Method::GET,
            "/v1/conversations/{id}",
            "/v1/conversations/web-1",
            Value::Null,
            STAFF,
        ),
        (
            Method::GET,
            "/v1/conversations/{id}/turns",
            "/v1/conversations/web-1/turns",
            Value::Null,
            STAFF,
        ),
        (
            Method::DELETE,
            "/v1/conversations/{id}",
            "/v1/conversations/web-1",
            Value::Null,
            STAFF,
        ),
        (
            Method::GET,
            "/v1/availability",
            "/v1/availability?specialty=cardiologia&date=2026-11-26",
            Value::Null,
            INTEGRATOR,
        ),
        (
            Method::GET,
            "/v1/appointments",
            "/v1/appointments?document=30111222",
            Value::Null,
            STAFF,
        ),
        (
            Method::POST,
            "/v1/appointments",
            "/v1/appointments",
            json!({}),
            INTEGRATOR,
        ),
        (
            Method::GET,
            "/v1/appointments/{id}",
            "/v1/appointments/nope",
            Value::Null,
            STAFF,
        ),
        (
            Method::POST,
            "/v1/appointments/{id}/cancel",
            "/v1/appointments/nope/cancel",
            json!({}),
            STAFF,
        ),
        (
            Method::POST,
            "/v1/appointments/{id}/reschedule",
            "/v1/appointments/nope/reschedule",
            json!({ "date": "2026-11-26", "time": "10:00" }),
            STAFF,
        ),
        (Method::GET, "/v1/reminders", "/v1/reminders", Value::Null, STAFF),
        (Method::GET, "/v1/escalations", "/v1/escalations", Value::Null, STAFF),
        (
            Method::POST,
            "/v1/escalations/{id}/reply",
            "/v1/escalations/nope/reply",
            json!({ "text": "hola" }),
            STAFF,
        ),
        (
            Method::POST,
            "/v1/escalations/{id}/resolve",
            "/v1/escalations/nope/resolve",
            json!({}),
            STAFF,
        ),
        (
            Method::POST,
            "/v1/patients/export",
            "/v1/patients/export",
            json!({ "document": "30111222" }),
            STAFF,
        ),
        (
            Method::POST,
            "/v1/patients/erase",
            "/v1/patients/erase",
            json!({ "document": "30111222" }),
            STAFF,
        ),
        (Method::GET, "/v1/audit", "/v1/audit", Value::Null, STAFF),
        (Method::GET, "/v1/flows", "/v1/flows", Value::Null, ADMIN),
        (
            Method::GET,
            "/v1/flows/{name}",
            "/v1/flows/book_appointment",
            Value::Null,
            ADMIN,
        ),
        (Method::GET, "/v1/reload", "/v1/reload", Value::Null, ADMIN),
        (Method::POST, "/v1/reload", "/v1/reload", json!({}), ADMIN),
        (Method::GET, "/metrics", "/metrics", Value::Null, METRICS),
    ]
}

#[tokio::test]
async fn every_operation_accepts_exactly_its_roles() {
    let state = demo_state().await.with_keys(ApiKeys::parse(KEYS));
    let mut checked = 0;
    for (method, _, path, body, allowed) in operations() {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        for (role, key) in [
            ("admin", Some("admin-key")),
            ("admin", Some("bare-key")),
            ("staff", Some("staff-key")),
            ("integrator", Some("integrator-key")),
            ("metrics", Some("metrics-key")),
            ("none", None),
            ("none", Some("wrong-key")),
        ] {
            let client = match key {
                Some(k) => Client::new(state.clone()).with_key(k),
                None => Client::new(state.clone()),
            };
            let (status, answer) = client.raw(method.clone(), path, body.clone(), &[]).await;
            let what = format!("{method} {path} as {role} ({key:?}): {status} {answer}");
            if allowed.contains(&role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN && !status.is_server_error(),
                    "{what}"
                );
            } else if role == "none" {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(answer["error"], "unauthorized", "{what}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(answer["error"], "forbidden", "{what}");
                let message = answer["message"].as_str().unwrap_or_default();
                assert!(message.contains(&format!("`{role}`")), "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations().len() * 7);
    // Probes and the documents stay open to anyone.
    let anonymous = Client::new(state);
    for open in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        assert_eq!(anonymous.get(open).await.0, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn metrics_are_refused_without_their_key_and_served_on_their_own_address() {
    let state = demo_state().await.with_keys(ApiKeys::parse(KEYS));
    let (status, body) = Client::new(state.clone()).get("/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.to_string().contains("clinicflow_"), "{body}");
    let (status, body) = Client::new(state.clone()).with_key("metrics-key").get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str().is_some_and(|m| m.contains("clinicflow_open_escalations")),
        "{body}"
    );
    // The metrics key opens nothing else.
    let (status, _) = Client::new(state.clone())
        .with_key("metrics-key")
        .get("/v1/escalations")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The separate address: /metrics without a key, nothing else at all.
    use poem::{Endpoint, EndpointExt};
    let ep = api::metrics_app(move || Some(state.clone())).boxed();
    let get = |path: &'static str| {
        let ep = &ep;
        async move {
            let resp = ep.get_response(poem::Request::builder().uri_str(path).finish()).await;
            let status = resp.status();
            (status, resp.into_body().into_string().await.unwrap_or_default())
        }
    };
    let (status, text) = get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("clinicflow_open_escalations"), "{text}");
    assert_eq!(get("/v1/escalations").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_integrator_cannot_act_as_a_whatsapp_patient() {
    let state = demo_state().await.with_keys(ApiKeys::parse(KEYS));
    let integrator = Client::new(state.clone()).with_key("integrator-key");
    let staff = Client::new(state.clone()).with_key("staff-key");
    let whatsapp_id = "whatsapp:+5491155550000:+14155238886";
    // A WhatsApp conversation exists (the patient wrote).
    let (status, _) = staff
        .post(
            &format!("/v1/conversations/{whatsapp_id}/messages"),
            json!({ "text": "hola", "now": NOW, "channel": "whatsapp", "user": "whatsapp:+5491155550000" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let attempts = [
        (
            whatsapp_id.to_string(),
            json!({ "text": "quiero ver mis turnos", "now": NOW }),
        ),
        (
            "web-2".to_string(),
            json!({ "text": "hola", "now": NOW, "channel": "whatsapp", "user": "whatsapp:+5491155550000" }),
        ),
        (
            "sms:+5491155550000:+1".to_string(),
            json!({ "text": "hola", "now": NOW }),
        ),
    ];
    for (id, body) in attempts {
        let got = integrator.post(&format!("/v1/conversations/{id}/messages"), body).await;
        assert_eq!(got.0, StatusCode::FORBIDDEN, "{id}: {}", got.1);
        assert!(
            got.1["message"].as_str().is_some_and(|m| m.contains("integrator")),
            "{}",
            got.1
        );
    }
    // A staff-created conversation on another id but a WhatsApp channel is closed too.
    staff
        .post(
            "/v1/conversations/front-desk-1/messages",
            json!({ "text": "hola", "now": NOW, "channel": "whatsapp", "user": "whatsapp:+5491100000000" }),
        )
        .await;
    let got = integrator
        .post(
            "/v1/conversations/front-desk-1/messages",
            json!({ "text": "hola", "now": NOW }),
        )
        .await;
    assert_eq!(got.0, StatusCode::FORBIDDEN, "{}", got.1);
    // Its own web conversations work.
    let (status, turn) = integrator
        .post(
            "/v1/conversations/web-9/messages",
            json!({ "text": "hola", "now": NOW, "channel": "web" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{turn}");
    // And it cannot read the turn log of anybody (its own included: that is staff's).
    let (status, _) = integrator.get("/v1/conversations/web-9/turns").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Every /v1 operation and /metrics lists in the OpenAPI document exactly the roles the table
/// above proves, and the table covers every operation (a new endpoint must be added to it).
#[test]
fn the_spec_marks_every_operation() {
    let spec: Value = serde_json::from_str(&api::spec()).expect("spec");
    let schemes = spec["components"]["securitySchemes"].as_object().expect("schemes");
    let mut names: Vec<&str> = schemes.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["admin", "integrator", "metrics", "staff"]);
    let table = operations();
    let mut seen = 0;
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let secured = path.starts_with("/v1/") || path == "/metrics";
            let row = table
                .iter()
                .find(|(m, p, ..)| m.as_str().eq_ignore_ascii_case(method) && p == path);
            match row {
                Some((.., roles)) => {
                    let want: Vec<Value> = roles.iter().map(|r| json!({ *r: [] })).collect();
                    assert_eq!(op["security"], Value::Array(want), "{method} {path}");
                    seen += 1;
                }
                None => assert!(
                    !secured,
                    "{method} {path} is not in tests/integration/api/roles.rs: add it with its roles"
                ),
            }
        }
    }
    assert_eq!(seen, table.len());
}
