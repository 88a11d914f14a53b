//! The staff console in process, driven like a browser (cookies, forms, redirects): a
//! receptionist handles a handoff that a signed WhatsApp webhook opened, from login to
//! resolve; CSRF and lockout; admin-only pages. The real-browser version is tests/browser.

use std::collections::HashMap;
use std::sync::Mutex;

use clinicflow::console::{Accounts, Console, MAX_FAILURES, Role};
use clinicflow::server::{self, AppState};
use clinicflow::store::EscalationStatus;
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, Request, Response};

use crate::twilio::{Twilio, demo_twilio};

pub const PASSWORD: &str = "una clave larga y buena";

/// Accounts for the tests: ana (receptionist) and root (admin).
pub fn accounts() -> Accounts {
    let mut a = Accounts::default();
    a.set("ana", Role::Receptionist, PASSWORD).expect("ana");
    a.set("root", Role::Admin, PASSWORD).expect("root");
    a
}

/// A browser: keeps cookies, does not follow redirects (the tests look at them).
pub struct Browser {
    ep: poem::endpoint::BoxEndpoint<'static, Response>,
    cookies: Mutex<HashMap<String, String>>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[at..].split('"').next().unwrap_or_default().to_string()
    }
}

impl Browser {
    pub fn new(state: AppState) -> Browser {
        Browser {
            ep: server::app(state).boxed(),
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// The same browser (its cookies) talking to another server, e.g. another replica.
    pub fn to(&self, state: AppState) -> Browser {
        Browser {
            ep: server::app(state).boxed(),
            cookies: Mutex::new(self.cookies.lock().expect("jar").clone()),
        }
    }

    async fn send(&self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = Request::builder().method(method).uri_str(path);
        let jar = self.cookies.lock().expect("jar").clone();
        if !jar.is_empty() {
            let c: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", c.join("; "));
        }
        let body = match form {
            Some(fields) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                serde_urlencoded(fields)
            }
            None => String::new(),
        };
        let resp = self.ep.get_response(req.body(body)).await;
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().expect("cookie");
            assert!(v.contains("SameSite=Strict"), "{v}");
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            if let Some((k, val)) = kv.split_once('=') {
                let mut jar = self.cookies.lock().expect("jar");
                if val.is_empty() {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_string(), val.to_string());
                }
            }
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: resp.into_body().into_string().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    pub async fn login(&self, name: &str, password: &str) -> Page {
        let csrf = self.get("/console/login").await.csrf();
        self.post(
            "/console/login",
            &[("name", name), ("password", password), ("csrf", &csrf)],
        )
        .await
    }
}

fn serde_urlencoded(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_receptionist_handles_a_whatsapp_handoff_from_login_to_resolve() {
    let state = demo_twilio().await.with_console(Console::new(accounts()));
    let tw = Twilio::new(state.clone());
    tw.whatsapp("SMc1", "quiero un turno con dermatología").await;
    tw.whatsapp("SMc2", "quiero hablar con una persona").await;
    let later = tw.whatsapp("SMc3", "¿me atiende alguien?").await;
    assert!(
        later.messages().is_empty(),
        "told once already: {}",
        later.messages().join("|")
    );

    let b = Browser::new(state.clone());
    let first = b.get("/console/inbox").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location.as_deref(), Some("/console/login"));
    let login = b.get("/console/login").await;
    assert!(login.body.contains("Contraseña"), "Spanish by default");
    assert!(
        b.get("/console/login?lang=en").await.body.contains("Password"),
        "English too"
    );
    let wrong = b.login("ana", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = b.login("ana", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);

    let inbox = b.get("/console/inbox?lang=es").await;
    assert_eq!(inbox.status, StatusCode::OK);
    let open = state
        .service
        .store
        .list_escalations(Some(EscalationStatus::Open), 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    let id = open[0].id.clone();
    let link = format!("/console/inbox/{id}");
    assert!(inbox.body.contains(&link), "{}", inbox.body);
    assert!(
        inbox.body.contains("pidió hablar con una persona"),
        "the reason, in Spanish"
    );

    let detail = b.get(&link).await;
    assert!(
        detail.body.contains("¿me atiende alguien?"),
        "messages after the handoff"
    );
    assert!(detail.body.contains("Dermatología"), "the collected slots");
    let csrf = detail.csrf();

    let forged = b
        .post(&format!("{link}/reply"), &[("text", "hola"), ("csrf", "forged")])
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "a form without the session's token"
    );
    let sent = b
        .post(
            &format!("{link}/reply"),
            &[("text", "Hola, soy Ana. ¿Qué día le queda bien?"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(sent.location.as_deref(), Some(format!("{link}?done=sent").as_str()));
    let after = b.get(&format!("{link}?done=sent")).await;
    assert!(after.body.contains("Enviado al paciente"), "{}", after.body);
    assert!(after.body.contains("Hola, soy Ana"), "the reply in the transcript");
    assert!(after.body.contains("Personal · ana"), "with who wrote it");
    let e = state
        .service
        .store
        .get_escalation(&id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(e.taken_by.as_deref(), Some("ana"), "whoever answers has it");

    b.post(&format!("{link}/release"), &[("csrf", &csrf)]).await;
    let e = state
        .service
        .store
        .get_escalation(&id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(e.taken_by, None);

    let resolved = b.post(&format!("{link}/resolve"), &[("csrf", &csrf)]).await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER);
    let e = state
        .service
        .store
        .get_escalation(&id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        (e.status, e.resolved_by.as_deref()),
        (EscalationStatus::Resolved, Some("ana"))
    );
    let back = tw.whatsapp("SMc4", "el jueves 26").await;
    assert!(!back.messages().is_empty(), "the assistant answers again");
    let session = state
        .service
        .store
        .load_session(&open[0].session)
        .await
        .expect("load")
        .expect("session");
    assert!(!session.waiting_for_staff);
    assert_eq!(
        session
            .top()
            .and_then(|f| f.slots.get("specialty"))
            .and_then(|v| v.as_str()),
        Some("Dermatología"),
        "the slots collected before the handoff"
    );
    assert_eq!(b.get("/console/inbox/list").await.status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_name_and_forged_logins_are_refused() {
    let state = demo_twilio().await.with_console(Console::new(accounts()));
    let b = Browser::new(state);
    // A login form not issued by us (no matching cookie token): refused.
    let forged = b
        .post(
            "/console/login",
            &[("name", "ana"), ("password", PASSWORD), ("csrf", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for _ in 0..MAX_FAILURES {
        b.login("ana", "wrong password").await;
    }
    let locked = b.login("ana", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password, while locked"
    );
    assert!(locked.body.contains("bloqueado"), "{}", locked.body);
    // Another name is not affected.
    assert_eq!(b.login("root", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_flows_page_is_for_admins_and_draws_every_flow() {
    let state = demo_twilio().await.with_console(Console::new(accounts()));
    let ana = Browser::new(state.clone());
    ana.login("ana", PASSWORD).await;
    assert_eq!(ana.get("/console/flows").await.status, StatusCode::FORBIDDEN);
    let admin = Browser::new(state);
    admin.login("root", PASSWORD).await;
    let page = admin.get("/console/flows").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg") && page.body.contains("book_appointment"));
    assert!(page.body.contains("Compiló sin problemas"));
    let csrf = page.csrf();
    let out = admin.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/console/login"));
    assert_eq!(
        admin.get("/console/flows").await.status,
        StatusCode::SEE_OTHER,
        "logged out"
    );
    assert_eq!(admin.get("/console/assets/htmx.min.js").await.status, StatusCode::OK);
}

#[tokio::test]
async fn sessions_and_lockouts_hold_across_replicas_on_one_database() {
    // Two replicas: one service and database, each with its own console (its own memory).
    let a = demo_twilio().await.with_console(Console::new(accounts()));
    let b = a.clone().with_console(Console::new(accounts()));
    let on_a = Browser::new(a.clone());
    assert_eq!(on_a.login("root", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let on_b = on_a.to(b.clone());
    let page = on_b.get("/console/flows").await;
    assert_eq!(page.status, StatusCode::OK, "the session made on A is known to B");
    // Logging out on B ends the session on A too.
    on_b.post("/console/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(on_a.get("/console/flows").await.status, StatusCode::SEE_OTHER);

    // Wrong passwords spread over both replicas still lock the name.
    let (x, y) = (Browser::new(a), Browser::new(b));
    for i in 0..MAX_FAILURES {
        let on = if i % 2 == 0 { &x } else { &y };
        on.login("ana", "wrong password").await;
    }
    assert_eq!(x.login("ana", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(y.login("ana", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
}
