//! The console's agenda, conversations and dashboard, in process (tests/integration/console.rs's
//! browser): the data comes from real conversations through the service (a booking, a
//! cancellation, a handoff, one left half way), and every change made from the agenda is
//! checked in the store and, for a booking, through the availability API.

use clinicflow::console::Console;
use clinicflow::server::AppState;
use clinicflow::store::{Appointment, AppointmentFilter, AppointmentStatus, TurnRecord};
use jiff::civil::Date;
use poem::http::StatusCode;
use serde_json::Value;

use crate::console::{Browser, PASSWORD, Page, accounts};
use crate::support::{BOOKING, say_as};
use crate::twilio::{NOW, demo_twilio};

const MARIA: &str = "whatsapp:+5491155550000";
const JUAN: &str = "whatsapp:+5491155550001";

/// The page as a reader sees it (minijinja writes `/` as `&#x2f;`).
trait Html {
    fn html(&self) -> String;
}

impl Html for Page {
    fn html(&self) -> String {
        self.body.replace("&#x2f;", "/")
    }
}

async fn talk(state: &AppState, id: &str, user: &str, lines: &[&str]) {
    for line in lines {
        say_as(&state.service, id, "whatsapp", user, line, NOW).await;
    }
}

/// The demo clinic on 23 Nov 2026 at 10:00 (pinned) after four WhatsApp conversations:
/// María books Thursday 26 at 10:00; Juan books at 11:00 and cancels; Luis asks for a
/// person; Ana starts a dermatology booking and stops.
pub async fn seeded() -> AppState {
    let state = demo_twilio().await.with_console(Console::new(accounts()));
    talk(&state, "wa-maria", MARIA, &BOOKING).await;
    let mut juan = BOOKING;
    juan[3] = "a las 11";
    juan[4] = "Juan Pérez";
    juan[5] = "27.111.222";
    talk(&state, "wa-juan", JUAN, &juan).await;
    talk(&state, "wa-juan", JUAN, &["quiero cancelar mi turno", "27111222", "sí"]).await;
    talk(
        &state,
        "wa-luis",
        "whatsapp:+5491155550002",
        &["quiero hablar con una persona"],
    )
    .await;
    talk(
        &state,
        "wa-ana",
        "whatsapp:+5491155550003",
        &["quiero un turno con dermatología"],
    )
    .await;
    let all = appointments(&state, None).await;
    assert_eq!(all.len(), 2, "two bookings by conversation: {all:?}");
    assert_eq!(
        all.iter().map(|a| a.status).collect::<Vec<_>>(),
        [AppointmentStatus::Booked, AppointmentStatus::Cancelled],
        "María's stands, Juan's is cancelled"
    );
    state
}

async fn appointments(state: &AppState, date: Option<&str>) -> Vec<Appointment> {
    let filter = AppointmentFilter {
        date: date.map(|d| d.parse().expect("date")),
        ..Default::default()
    };
    state.service.store.list_appointments(&filter).await.expect("list")
}

async fn logged_in(state: &AppState, name: &str) -> Browser {
    let b = Browser::new(state.clone());
    assert_eq!(b.login(name, PASSWORD).await.status, StatusCode::SEE_OTHER);
    b
}

#[tokio::test]
async fn the_agenda_shows_a_day_per_professional_and_finds_patients() {
    let state = seeded().await;
    let stranger = Browser::new(state.clone());
    let away = stranger.get("/console/agenda").await;
    assert_eq!(away.location.as_deref(), Some("/console/login"), "staff only");

    let ana = logged_in(&state, "ana").await;
    let today = ana.get("/console/agenda").await;
    assert_eq!(today.status, StatusCode::OK);
    assert!(
        today.html().contains("lunes 23/11/2026"),
        "today by default, in the clinic's zone"
    );
    assert!(today.html().contains("Sin turnos este día"), "nothing booked today");

    let day = ana.get("/console/agenda?date=2026-11-26").await;
    let body = &day.html();
    assert!(body.contains("jueves 26/11/2026"));
    let gomez = body.find("Dra. Laura Gómez").expect("her section");
    let maria = body.find("María López").expect("María's appointment");
    assert!(gomez < maria, "under her professional");
    for shown in [
        "10:00",
        "30123456",
        "+5491155550000",
        "Reservado",
        "Juan Pérez",
        "Cancelado",
    ] {
        assert!(body.contains(shown), "{shown}");
    }
    assert!(
        body.contains("href=\"/console/agenda?date=2026-11-25\""),
        "the day before"
    );
    assert!(
        body.contains("href=\"/console/agenda?date=2026-11-27\""),
        "the day after"
    );

    for q in ["lopez", "30.123.456", "11 5555-0000"] {
        let found = ana.get(&format!("/console/agenda?q={}", q.replace(' ', "+"))).await;
        let html = found.html();
        let results = html.split("id=\"results-h\"").nth(1).expect("results");
        assert!(results.contains("María López"), "{q}: {}", found.body);
        assert!(!results.contains("Juan Pérez"), "{q}");
    }
    let none = ana.get("/console/agenda?q=nadie+asi").await;
    assert!(none.html().contains("Ningún turno coincide"));
    let english = ana.get("/console/agenda?date=2026-11-26&lang=en").await;
    assert!(english.html().contains("Appointments of the day") && english.html().contains("Thursday 26/11/2026"));
}

/// The value of the free-slot radio for a time, if the page offers it.
fn offers(page: &str, slot: &str) -> bool {
    page.contains(&format!("value=\"{slot}\""))
}

#[tokio::test]
async fn booking_moving_and_cancelling_from_the_agenda_go_through_the_actions() {
    let state = seeded().await;
    let ana = logged_in(&state, "ana").await;
    let book = ana
        .get("/console/agenda/book?specialty=Cardiolog%C3%ADa&professional=&date=2026-11-26")
        .await;
    assert_eq!(book.status, StatusCode::OK);
    assert!(
        offers(&book.html(), "2026-11-26|10:30|Dra. Laura Gómez"),
        "{}",
        book.body
    );
    assert!(
        !offers(&book.html(), "2026-11-26|10:00|Dra. Laura Gómez"),
        "María has 10:00"
    );
    assert!(
        offers(&book.html(), "2026-11-26|11:00|Dra. Laura Gómez"),
        "Juan's cancelled slot is free"
    );
    let csrf = book.csrf();
    let form = |slot: &'static str, name: &'static str, csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("specialty", "Cardiología".to_string()),
            ("date", "2026-11-26".to_string()),
            ("slot", slot.to_string()),
            ("patient_name", name.to_string()),
            ("document", "28.555.666".to_string()),
            ("phone", "+54 9 11 5555-0009".to_string()),
            ("notify", "sms".to_string()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let ana = &ana;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ana.post("/console/agenda/book", &pairs).await
        }
    };
    let forged = post(form("2026-11-26|10:30|Dra. Laura Gómez", "Rosa Díaz", "forged")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "CSRF on the booking form");

    let taken = post(form("2026-11-26|10:00|Dra. Laura Gómez", "Rosa Díaz", &csrf)).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.html().contains("Ese horario ya está ocupado"), "{}", taken.body);
    assert!(taken.html().contains("value=\"Rosa Díaz\""), "what was typed is kept");
    let past = post(form("2026-11-20|09:00|Dra. Laura Gómez", "Rosa Díaz", &csrf)).await;
    assert_eq!(past.status, StatusCode::CONFLICT);
    assert!(past.html().contains("Ese horario ya pasó"), "{}", past.body);
    let nameless = post(form("2026-11-26|10:30|Dra. Laura Gómez", "", &csrf)).await;
    assert_eq!(nameless.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nameless.html().contains("Falta el nombre"));
    assert_eq!(
        appointments(&state, Some("2026-11-26")).await.len(),
        2,
        "no refusal wrote anything"
    );

    let booked = post(form("2026-11-26|10:30|Dra. Laura Gómez", "Rosa Díaz", &csrf)).await;
    assert_eq!(
        booked.location.as_deref(),
        Some("/console/agenda?date=2026-11-26&done=booked")
    );
    let rosa = appointments(&state, Some("2026-11-26"))
        .await
        .into_iter()
        .find(|a| a.patient_name == "Rosa Díaz")
        .expect("Rosa's appointment");
    assert_eq!(
        (
            rosa.status,
            rosa.document.as_str(),
            rosa.channel.as_str(),
            rosa.user.as_str()
        ),
        (AppointmentStatus::Booked, "28555666", "sms", "+5491155550009"),
        "booked by book_appointment, with her contact"
    );
    let day = ana.get("/console/agenda?date=2026-11-26&done=booked").await;
    assert!(day.html().contains("Turno reservado") && day.html().contains("Rosa Díaz"));

    // Move her to 11:30, then cancel.
    let link = format!("/console/agenda/{}/move", rosa.id);
    let move_page = ana.get(&link).await;
    assert!(move_page.html().contains("10:30") && offers(&move_page.html(), "2026-11-26|11:30|Dra. Laura Gómez"));
    let taken = ana
        .post(&link, &[("csrf", &csrf), ("slot", "2026-11-26|10:00|Dra. Laura Gómez")])
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert!(taken.html().contains("ya está ocupado"));
    let moved = ana
        .post(&link, &[("csrf", &csrf), ("slot", "2026-11-26|11:30|Dra. Laura Gómez")])
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    let now = state
        .service
        .store
        .get_appointment(&rosa.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(clinicflow::store::time::fmt_hhmm(now.time), "11:30");

    let cancel = format!("/console/agenda/{}/cancel", rosa.id);
    assert_eq!(
        ana.post(&cancel, &[("csrf", "forged")]).await.status,
        StatusCode::FORBIDDEN
    );
    let done = ana.post(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(
        done.location.as_deref(),
        Some("/console/agenda?date=2026-11-26&done=cancelled")
    );
    let gone = state
        .service
        .store
        .get_appointment(&rosa.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(gone.status, AppointmentStatus::Cancelled);
    let again = ana.post(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/console/agenda?date=2026-11-26&refused=not_found")
    );
    let refused = ana.get(again.location.as_deref().unwrap_or_default()).await;
    assert!(refused.html().contains("ya no está reservado"), "in plain words");
    let odd = ana.get("/console/agenda?refused=%3Cscript%3E").await;
    assert!(odd.html().contains("No se pudo hacer") && !odd.html().contains("<script>"));
}

#[tokio::test]
async fn attendance_is_recorded_from_the_day_on_and_shows_in_the_api() {
    let state = seeded().await;
    let ana = logged_in(&state, "ana").await;
    let csrf = ana.get("/console/agenda").await.csrf();
    let maria = appointments(&state, Some("2026-11-26")).await.remove(0);
    let mark = format!("/console/agenda/{}/mark", maria.id);
    let early = ana.post(&mark, &[("csrf", &csrf), ("status", "no_show")]).await;
    assert_eq!(
        early.location.as_deref(),
        Some("/console/agenda?date=2026-11-26&refused=not_yet"),
        "Thursday has not come (today is Monday 23)"
    );
    let forged = ana.post(&mark, &[("csrf", "x"), ("status", "no_show")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Booked for later today from the agenda, then marked.
    let fields = [
        ("csrf", csrf.as_str()),
        ("specialty", "Cardiología"),
        ("date", "2026-11-23"),
        ("slot", "2026-11-23|11:30|Dra. Laura Gómez"),
        ("patient_name", "Pedro Gil"),
        ("document", "20111333"),
    ];
    let booked = ana.post("/console/agenda/book", &fields).await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.body);
    let pedro = appointments(&state, Some("2026-11-23")).await.remove(0);
    let mark = format!("/console/agenda/{}/mark", pedro.id);
    let bad = ana.post(&mark, &[("csrf", &csrf), ("status", "cancelled")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let marked = ana.post(&mark, &[("csrf", &csrf), ("status", "no_show")]).await;
    assert_eq!(
        marked.location.as_deref(),
        Some("/console/agenda?date=2026-11-23&done=marked")
    );
    let stored = state
        .service
        .store
        .get_appointment(&pedro.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        (stored.status, stored.marked_by.as_deref()),
        (AppointmentStatus::NoShow, Some("ana"))
    );
    let api: Value =
        serde_json::from_str(&ana.get(&format!("/v1/appointments/{}", pedro.id)).await.body).expect("json");
    assert_eq!(
        (api["status"].as_str(), api["marked_by"].as_str()),
        (Some("no_show"), Some("ana"))
    );
    let page = ana.get("/console/agenda").await;
    assert!(page.html().contains("No vino"), "the status in words");
    // A mistake is corrected; the slot stays held either way.
    ana.post(&mark, &[("csrf", &csrf), ("status", "attended")]).await;
    let stored = state
        .service
        .store
        .get_appointment(&pedro.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(stored.status, AppointmentStatus::Attended);
    let book = ana
        .get("/console/agenda/book?specialty=Cardiolog%C3%ADa&date=2026-11-23")
        .await;
    assert!(!offers(&book.html(), "2026-11-23|11:30|Dra. Laura Gómez"), "still held");
}

/// The next Monday at least a week after today (Dra. Gómez sees patients on Mondays).
fn a_monday_ahead() -> Date {
    let mut d = jiff::Zoned::now().date() + jiff::Span::new().days(7);
    while d.weekday() != jiff::civil::Weekday::Monday {
        d = d.tomorrow().expect("tomorrow");
    }
    d
}

#[tokio::test]
async fn a_booking_from_the_agenda_is_seen_by_the_availability_api() {
    // The real clock (the API's availability has no pinned time).
    let state = crate::api::demo_state().await.with_console(Console::new(accounts()));
    let ana = logged_in(&state, "ana").await;
    let day = a_monday_ahead();
    let ask = format!(
        "/v1/availability?specialty=Cardiolog%C3%ADa&date={day}&time=09:00&professional=Dra.%20Laura%20G%C3%B3mez"
    );
    let before: Value = serde_json::from_str(&ana.get(&ask).await.body).expect("json");
    assert_eq!(before["available"], true, "{before}");
    let csrf = ana.get("/console/agenda").await.csrf();
    let slot = format!("{day}|09:00|Dra. Laura Gómez");
    let day_s = day.to_string();
    let fields = [
        ("csrf", csrf.as_str()),
        ("specialty", "Cardiología"),
        ("date", day_s.as_str()),
        ("slot", slot.as_str()),
        ("patient_name", "Lucía Torres"),
        ("document", "33444555"),
        ("phone", "11 5555 0010"),
    ];
    let booked = ana.post("/console/agenda/book", &fields).await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.body);
    let after: Value = serde_json::from_str(&ana.get(&ask).await.body).expect("json");
    assert_eq!(
        (after["available"].clone(), after["reason"].clone()),
        (false.into(), "taken".into())
    );
}

#[tokio::test]
async fn conversations_are_for_admins_searched_and_opened_with_their_turns() {
    let state = seeded().await;
    // A problem met while talking, as the service records it on the turn.
    let mut broken = TurnRecord::new(
        &clinicflow::engine::session::Session::new(
            "wa-rota",
            "whatsapp",
            "whatsapp:+5491155550004",
            clinicflow::lang::Lang::Es,
        ),
        crate::support::local(NOW),
        "idle".into(),
    );
    broken.seq = 1;
    broken.input = "hola".into();
    broken.problems = vec!["greeting.j2: unknown filter `shout`".into()];
    state.service.store.append_turn(&broken).await.expect("turn");

    let ana = logged_in(&state, "ana").await;
    for page in [
        "/console/conversations",
        "/console/conversations/wa-maria",
        "/console/dashboard",
    ] {
        assert_eq!(ana.get(page).await.status, StatusCode::FORBIDDEN, "{page}");
    }
    let root = logged_in(&state, "root").await;
    let all = root.get("/console/conversations").await;
    assert_eq!(all.status, StatusCode::OK);
    for id in ["wa-maria", "wa-juan", "wa-luis", "wa-ana"] {
        assert!(
            all.html().contains(&format!("href=\"/console/conversations/{id}\"")),
            "{id}"
        );
    }
    let cases = [
        ("?document=30.123.456", "wa-maria", "wa-juan"),
        ("?phone=1155550001", "wa-juan", "wa-maria"),
        ("?state=book_appointment", "wa-ana", "wa-maria"),
        ("?id=wa-luis", "wa-luis", "wa-ana"),
        (
            "?channel=whatsapp&date=2026-11-23&document=30123456",
            "wa-maria",
            "wa-juan",
        ),
    ];
    for (q, shown, hidden) in cases {
        let found = root.get(&format!("/console/conversations{q}")).await;
        assert!(
            found.html().contains(&format!("/console/conversations/{shown}\"")),
            "{q}: {shown}"
        );
        assert!(
            !found.html().contains(&format!("/console/conversations/{hidden}\"")),
            "{q}: {hidden}"
        );
    }
    let none = root.get("/console/conversations?date=2026-11-24").await;
    assert!(none.html().contains("Ninguna conversación coincide"));

    let maria = root.get("/console/conversations/wa-maria").await;
    assert_eq!(maria.status, StatusCode::OK);
    for shown in [
        "María López",
        "quiero un turno con cardiología",
        "book_appointment",
        "rules",
        "book_appointment (2026-11-26 10:00 Dra. Laura Gómez)",
        "Recorrido",
        "23/11 10:00",
    ] {
        assert!(maria.html().contains(shown), "{shown}");
    }
    let luis = root.get("/console/conversations/wa-luis").await;
    assert!(luis.html().contains("Con el personal") && luis.html().contains("/console/inbox/"));
    let rota = root.get("/console/conversations/wa-rota").await;
    assert!(rota.html().contains("has-problem") && rota.html().contains("unknown filter `shout`"));
    assert_eq!(
        root.get("/console/conversations/nadie").await.status,
        StatusCode::NOT_FOUND
    );
}

/// The cells of the table row of `day` that follows the figure titled `title`.
fn table_row(body: &str, title: &str, day: &str) -> Vec<String> {
    let figure = body.split(&format!(">{title}</h2>")).nth(1).expect(title);
    let row = figure
        .split(&format!("<th scope=\"row\">{day}</th>"))
        .nth(1)
        .expect("the day's row");
    let row = row.split("</tr>").next().unwrap_or_default();
    row.split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_dashboard_plots_the_days_figures() {
    let state = seeded().await;
    let root = logged_in(&state, "root").await;
    let page = root.get("/console/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.html();
    assert!(
        body.matches("<svg class=\"chart\"").count() >= 6,
        "charts, not just tables"
    );
    assert_eq!(
        table_row(body, "Conversaciones y derivaciones al personal por día", "23/11"),
        ["4", "1"],
        "four conversations started, one handed over"
    );
    assert_eq!(table_row(body, "Reservas y cancelaciones por día", "23/11"), ["2", "1"]);
    assert_eq!(
        table_row(body, "Contención: conversaciones resueltas sin personal (%)", "23/11"),
        ["75"]
    );
    assert!(body.contains("<th scope=\"row\">10/11</th>"), "14 days back");
    assert!(!body.contains("<th scope=\"row\">09/11</th>"));
    assert!(
        body.contains("book_appointment."),
        "Ana's booking stopped half way: {body}"
    );
    let month = root.get("/console/dashboard?days=30&lang=en").await;
    assert!(
        month.html().contains("<th scope=\"row\">25/10</th>")
            && month.html().contains("Where unfinished conversations stopped")
    );
}

#[tokio::test]
async fn a_booking_from_the_agenda_with_a_phone_gets_reminders_in_the_patients_conversation() {
    let sms_from = "+15550001111";
    let state = seeded()
        .await
        .with_twilio(crate::twilio::config(&[("TWILIO_SMS_FROM", sms_from)]));
    let ana = logged_in(&state, "ana").await;
    let csrf = ana
        .get("/console/agenda/book?specialty=Cardiolog%C3%ADa&date=2026-11-26")
        .await
        .csrf();
    let booked = ana
        .post(
            "/console/agenda/book",
            &[
                ("csrf", &csrf),
                ("specialty", "Cardiología"),
                ("date", "2026-11-26"),
                ("slot", "2026-11-26|10:30|Dra. Laura Gómez"),
                ("patient_name", "Rosa Díaz"),
                ("document", "28555666"),
                ("phone", "+54 9 11 5555-0009"),
                ("notify", "sms"),
            ],
        )
        .await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.body);
    let rosa = appointments(&state, Some("2026-11-26"))
        .await
        .into_iter()
        .find(|a| a.patient_name == "Rosa Díaz")
        .expect("Rosa's appointment");
    let conversation = clinicflow::channels::twilio::session_id("sms", "+5491155550009", sms_from);
    assert_eq!(rosa.session, conversation, "her SMS conversation with the clinic");
    let reminders = state.service.store.reminders_of(&rosa.id).await.expect("reminders");
    let mut kinds: Vec<_> = reminders
        .iter()
        .map(|r| (r.kind.as_str(), r.session.as_str(), r.channel.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("24h", conversation.as_str(), "sms"),
            ("2h", conversation.as_str(), "sms")
        ]
    );
}
