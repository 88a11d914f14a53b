//! Several clinics in one server (docs/clinics.md): each number books into its own clinic's
//! database, a key of one clinic opens nothing of another, a broken clinic leaves the others
//! serving, and clinic folders added or removed while the server runs start or stop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clinicflow::api::ApiKeys;
use clinicflow::clinics::{Clinics, Shared};
use clinicflow::limits::LimitsConfig;
use clinicflow::outbound::{Sender, TurnLogOnly};
use clinicflow::server::{self, AppState};
use clinicflow::store::Store;
use poem::EndpointExt;
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Client, NOW};
use crate::support::{BOOKING, copy_tree, next_reload, two_clinics};
use crate::twilio::{PATIENT_WA, Twilio, config};

const SAN_RAFAEL_WA: &str = "whatsapp:+5491149015120";
const HARBOR_WA: &str = "whatsapp:+13125550100";
const MAIN_KEY: &str = "admin@main:main-key-0123456789abcdef";
const HARBOR_KEY: &str = "admin@harbor-dental:harbor-key-0123456789abcdef";
const OPERATOR_KEY: &str = "admin@*:operator-key-0123456789abcdef";

/// Every clinic of `dir` on one fresh mem:// connection, clocks pinned, turn-log senders.
async fn start(dir: &Path, watch: bool) -> Arc<Clinics> {
    let keys = ApiKeys::load(&[MAIN_KEY, HARBOR_KEY, OPERATOR_KEY].join(","), None).expect("keys");
    let shared = Shared {
        root: Store::connect("mem://").await.expect("mem:// store"),
        limits: LimitsConfig::off(),
        llm_budget: None,
        llm: None,
        twilio: config(&[]),
        senders: Arc::new(|_, _| Arc::new(TurnLogOnly) as Arc<dyn Sender>),
        mailer: None,
        watch,
        workers: false,
        finish: Arc::new(move |s: AppState| {
            s.with_keys(keys.clone())
                .with_clock_override(true)
                .with_pinned_now(NOW.parse().expect("datetime"))
        }),
    };
    Clinics::start(dir, shared).await
}

fn slugs(clinics: &Clinics) -> Vec<String> {
    clinics.running().iter().map(|r| r.slug.to_string()).collect()
}

fn client(clinics: &Arc<Clinics>, key: &str) -> Client {
    Client::over(server::app_clinics(clinics.clone()).boxed()).with_key(key.split(':').nth(1).expect("key"))
}

/// A WhatsApp message from the test patient to `to`.
async fn whatsapp(tw: &Twilio, to: &str, sid: &str, body: &str) -> Vec<String> {
    let twiml = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", sid),
                ("From", PATIENT_WA),
                ("To", to),
                ("Body", body),
                ("NumMedia", "0"),
            ],
        )
        .await
        .twiml();
    let messages = twiml.messages();
    assert!(!messages.is_empty(), "{body}: no reply in {}", twiml.xml);
    messages
}

#[tokio::test]
async fn a_whatsapp_booking_to_each_number_lands_in_that_clinics_database_only() {
    let tmp = two_clinics();
    let clinics = start(tmp.path(), false).await;
    assert_eq!(slugs(&clinics), ["main", "harbor-dental"]);
    assert!(clinics.failures().is_empty(), "{:?}", clinics.failures());
    let main = clinics.get("main").expect("main");
    let harbor = clinics.get("harbor-dental").expect("harbor");
    let tw = Twilio::over(server::app_clinics(clinics.clone()).boxed(), main.clone());

    let mut last = Vec::new();
    for (i, text) in BOOKING.iter().enumerate() {
        last = whatsapp(&tw, SAN_RAFAEL_WA, &format!("SMsr{i:030}"), text).await;
    }
    assert!(last.join("\n").contains("Su turno quedó reservado"), "{last:?}");
    let harbor_script = [
        "hiii",
        "i need a cleaninng on tuesday",
        "actualy make it wednesday",
        "the second one",
        "maria gonzalez",
        "312-555-0147",
        "yes",
    ];
    for (i, text) in harbor_script.iter().enumerate() {
        last = whatsapp(&tw, HARBOR_WA, &format!("SMhd{i:030}"), text).await;
    }
    assert!(last.join("\n").contains("booked"), "{last:?}");

    let booked = |state: &AppState| {
        let store = state.service.store.clone();
        async move {
            let list = store
                .list_appointments(&Default::default())
                .await
                .expect("appointments");
            list.into_iter().map(|a| a.specialty).collect::<Vec<_>>()
        }
    };
    assert_eq!(booked(&main).await, ["Cardiología"]);
    assert_eq!(booked(&harbor).await, ["Dental Cleaning"]);
    // Same patient, two clinics: two conversations, each in its own database only.
    let sr = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, SAN_RAFAEL_WA);
    let hd = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, HARBOR_WA);
    assert!(main.service.store.load_session(&sr).await.expect("load").is_some());
    assert!(main.service.store.load_session(&hd).await.expect("load").is_none());
    assert!(harbor.service.store.load_session(&hd).await.expect("load").is_some());
    assert!(harbor.service.store.load_session(&sr).await.expect("load").is_none());

    // A number no clinic lists is refused, and so is a status callback about one.
    let unknown = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMx1"),
                ("From", PATIENT_WA),
                ("To", "whatsapp:+19995550000"),
                ("Body", "hola"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    // A delivery report of Harbor's message: `From` is Harbor's number.
    let status = tw
        .post(
            "/twilio/messaging/status",
            &[
                ("MessageSid", "SMhd0"),
                ("MessageStatus", "delivered"),
                ("From", HARBOR_WA),
                ("To", PATIENT_WA),
            ],
        )
        .await;
    assert_ne!(status.status, StatusCode::NOT_FOUND, "{}", status.body);
}

/// A path of the OpenAPI document with its `{parameters}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "x1" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn a_key_of_one_clinic_is_refused_on_every_endpoint_of_another() {
    let tmp = two_clinics();
    let clinics = start(tmp.path(), false).await;
    let harbor = client(&clinics, HARBOR_KEY);
    let (status, spec) = harbor.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, ops) in paths.iter().filter(|(p, _)| p.starts_with("/v1/")) {
        for method in ops.as_object().expect("operations").keys() {
            let method: Method = method.to_uppercase().parse().expect("method");
            let body = if method == Method::GET {
                Vec::new()
            } else {
                b"{}".to_vec()
            };
            // San Rafael's endpoint in both forms: named, and the single-clinic `/v1/…`.
            let named = format!("/v1/clinics/main{}", concrete(path.trim_start_matches("/v1")));
            for url in [named, concrete(path)] {
                let (status, answer) = harbor.raw(method.clone(), &url, body.clone(), &[]).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {url}: {answer}");
                assert!(
                    answer["message"].as_str().unwrap_or("").contains("main"),
                    "{method} {url}: {answer}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} endpoints in the document");

    // Its own clinic, and an operator key on both.
    let (status, _) = harbor.get("/v1/clinics/harbor-dental/appointments").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = client(&clinics, MAIN_KEY)
        .get("/v1/clinics/harbor-dental/escalations")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let operator = client(&clinics, OPERATOR_KEY);
    for url in [
        "/v1/appointments",
        "/v1/clinics/main/reload",
        "/v1/clinics/harbor-dental/reminders",
    ] {
        let (status, answer) = operator.get(url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {answer}");
    }
    let (status, answer) = operator.get("/v1/clinics/nowhere/appointments").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["message"].as_str().unwrap_or("").contains("harbor-dental"),
        "{answer}"
    );

    // /metrics counts every clinic: a one-clinic key may not read it; each turn is labelled.
    let (status, _) = harbor.get("/metrics").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, turn) = operator
        .post(
            "/v1/clinics/harbor-dental/conversations/m1/messages",
            json!({ "text": "hi", "now": NOW }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{turn}");
    let (status, text) = operator.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap_or("");
    assert!(
        text.lines()
            .any(|l| l.starts_with("clinicflow_turns_total") && l.contains("clinic=\"harbor-dental\"")),
        "{text}"
    );
}

/// Waits (bounded) for a pass that starts or stops a clinic.
async fn next_change(rx: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("a clinic started or stopped within 20 s")
        .expect("registry alive");
}

fn say(reply: &Value) -> String {
    crate::api::replies(reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_clinic_leaves_the_others_serving_and_folders_come_and_go_while_running() {
    let tmp = two_clinics();
    let broken = tmp.path().join("clinics/north-side/flows");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("clinic.yaml"), "clinic:\n  name: North\n  timezone: [\n").expect("write");
    let clinics = start(tmp.path(), true).await;
    assert_eq!(
        slugs(&clinics),
        ["main", "harbor-dental"],
        "the broken clinic does not start"
    );
    let failures = clinics.failures();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].message.contains("clinics/north-side/flows/clinic.yaml:"),
        "{}",
        failures[0].message
    );
    let operator = client(&clinics, OPERATOR_KEY);
    let (status, ready) = operator.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "stale", "{ready}");
    let north = ready["clinics"]
        .as_array()
        .expect("clinics")
        .iter()
        .find(|c| c["clinic"] == "north-side")
        .cloned();
    assert_eq!(north.expect("north-side listed")["status"], "not_started");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut changes = clinics.subscribe();
    let rescan = clinics.watch(Duration::from_millis(100), stopped);

    // Break Harbor's flows: it keeps its last good version; San Rafael reloads normally.
    let harbor = clinics.get("harbor-dental").expect("harbor");
    let mut harbor_reloads = harbor.reloader.subscribe();
    let hours = tmp.path().join("clinics/harbor-dental/flows/clinic.yaml");
    let good = std::fs::read_to_string(&hours).expect("read");
    std::fs::write(&hours, format!("{good}\n  oops: [\n")).expect("write");
    next_reload(&mut harbor_reloads).await;
    assert!(!harbor.reloader.last().ok, "the broken edit is reported");
    let main = clinics.get("main").expect("main");
    let mut main_reloads = main.reloader.subscribe();
    let faq = tmp.path().join("flows/faq_hours.yaml");
    let text = std::fs::read_to_string(&faq).expect("read");
    std::fs::write(&faq, format!("{text}\n# edited while Harbor is broken\n")).expect("write");
    next_reload(&mut main_reloads).await;
    assert!(main.reloader.last().ok, "{:?}", main.reloader.last().diagnostics);
    for (clinic, hello) in [("main", "hola"), ("harbor-dental", "hi")] {
        let (status, turn) = operator
            .post(
                &format!("/v1/clinics/{clinic}/conversations/b1/messages"),
                json!({ "text": hello, "now": NOW }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{clinic}: {turn}");
        assert!(!say(&turn).is_empty(), "{clinic}: {turn}");
    }

    // A third clinic folder, added while the server runs, answers.
    clinicflow::clinics::template::write(tmp.path(), "lakeside").expect("init lakeside");
    while clinics.get("lakeside").is_none() {
        next_change(&mut changes).await;
    }
    let (status, turn) = operator
        .post(
            "/v1/clinics/lakeside/conversations/n1/messages",
            json!({ "text": "hola", "now": NOW }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{turn}");
    assert!(!say(&turn).is_empty(), "{turn}");

    // The broken one, once fixed, starts; a folder deleted stops its clinic.
    std::fs::remove_dir_all(tmp.path().join("clinics/north-side")).expect("rm");
    clinicflow::clinics::template::write(tmp.path(), "north-side").expect("init north-side");
    while clinics.get("north-side").is_none() {
        next_change(&mut changes).await;
    }
    assert!(clinics.failures().is_empty(), "{:?}", clinics.failures());
    std::fs::remove_dir_all(tmp.path().join("clinics/lakeside")).expect("rm");
    while clinics.get("lakeside").is_some() {
        next_change(&mut changes).await;
    }
    let (status, _) = operator.get("/v1/clinics/lakeside/appointments").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let _ = stop.send(true);
    rescan.await.expect("rescan stops");
    clinics.stop_all().await;
}

#[tokio::test]
async fn two_clinics_may_not_share_a_number() {
    let tmp = two_clinics();
    let twin = tmp.path().join("clinics/harbor-twin");
    copy_tree(&tmp.path().join("clinics/harbor-dental"), &twin);
    let clinics = start(tmp.path(), false).await;
    assert_eq!(slugs(&clinics), ["main", "harbor-dental"]);
    let failures = clinics.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].message.contains("clinics/harbor-twin/flows/clinic.yaml")
            && failures[0].message.contains("+13125550100")
            && failures[0].message.contains("harbor-dental"),
        "{}",
        failures[0].message
    );
}

/// `clinicflow serve` as an agency runs it: both demo clinics in one process, WhatsApp routed
/// by the number written to, a clinic created with `init` while it runs, a clean stop.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_both_demo_clinics_and_picks_up_a_new_one() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let tmp = two_clinics();
    let dir = tmp.path().display().to_string();
    let mut child = tokio::process::Command::new(crate::support::bin())
        .args(["serve", "--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
        .env_remove("CLINICFLOW_API_KEYS")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_ACCOUNT_SID")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let banner = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("serving http://") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("serve starts within 60 s");
    assert!(
        banner.contains("main (") && banner.contains("harbor-dental ("),
        "{banner}"
    );
    let base = banner
        .split("serving ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("address")
        .to_string();

    let http = reqwest::Client::new();
    for (to, says) in [(SAN_RAFAEL_WA, "San Rafael"), (HARBOR_WA, "Harbor Dental")] {
        let reply = http
            .post(format!("{base}/twilio/messaging"))
            .form(&[
                ("MessageSid", format!("SM{to}")),
                ("From", PATIENT_WA.into()),
                ("To", to.into()),
                ("Body", "hola".into()),
            ])
            .send()
            .await
            .expect("webhook");
        assert_eq!(reply.status().as_u16(), 200);
        let xml = reply.text().await.expect("body");
        assert!(xml.contains(says), "{to}: {xml}");
    }
    let ready: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["clinics"].as_array().map(Vec::len), Some(2), "{ready}");

    let init = tokio::process::Command::new(crate::support::bin())
        .args(["init", "lakeside", "--dir", &dir])
        .output()
        .await
        .expect("init");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    // Bounded wait for the condition (the folder is looked at every 2 s).
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = http
                .get(format!("{base}/v1/clinics/lakeside/flows"))
                .send()
                .await
                .expect("flows");
            if r.status().as_u16() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(answered.is_ok(), "the new clinic did not answer within 20 s");

    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve stops within 30 s")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}
