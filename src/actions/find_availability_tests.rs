//! Now is Monday 2025-06-09 09:10 (see `testutil`).

use serde_json::json;

use crate::actions::testutil::{Env, alts};

fn a(date: &str, time: &str, professional: &str) -> (String, String, String) {
    (date.into(), time.into(), professional.into())
}

const PEREZ: &str = "Dr. Juan Pérez";
const DIAZ: &str = "Dra. Laura Díaz";
const RUIZ: &str = "Dr. Pablo Ruiz";

#[tokio::test]
async fn a_free_slot_is_available_with_its_professional() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "CARDIOLOGIA", "date": "2025-06-10", "time": "9:00" }),
        )
        .await;
    assert_eq!(
        out,
        json!({
            "ok": true, "available": true, "specialty": "Cardiología", "date": "2025-06-10",
            "time": "09:00", "professional": PEREZ, "alternatives": [],
        })
    );
}

#[tokio::test]
async fn a_taken_slot_offers_the_closest_times_that_day() {
    let env = Env::new().await;
    env.book(PEREZ, "2025-06-10", "09:00", "30111222").await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00" }),
        )
        .await;
    assert_eq!(
        (out["ok"].clone(), out["available"].clone(), out["reason"].clone()),
        (json!(true), json!(false), json!("taken"))
    );
    // 08:30 and 09:30 are both 30 min away (earlier first), then 08:00 and 10:00 tie at 60.
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "08:30", PEREZ),
            a("2025-06-10", "09:30", PEREZ),
            a("2025-06-10", "08:00", PEREZ)
        ]
    );
}

#[tokio::test]
async fn past_times_are_refused_and_never_offered() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-09", "time": "09:00" }),
        )
        .await;
    assert_eq!(out["reason"], "past");
    // 09:00 has passed (it is 09:10); 10:00 is Pérez's too (he comes first).
    assert_eq!(
        alts(&out),
        [
            a("2025-06-09", "09:30", PEREZ),
            a("2025-06-09", "10:00", PEREZ),
            a("2025-06-09", "10:30", PEREZ)
        ]
    );
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-02" }),
        )
        .await;
    assert_eq!(out["reason"], "past");
    assert_eq!(alts(&out)[0], a("2025-06-09", "09:30", PEREZ));
}

#[tokio::test]
async fn closed_days_and_holidays_point_to_the_next_open_day() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-15", "time": "10:00" }),
        )
        .await;
    assert_eq!(out["reason"], "closed");
    assert_eq!(
        alts(&out),
        [
            a("2025-06-16", "08:00", PEREZ),
            a("2025-06-16", "08:30", PEREZ),
            a("2025-06-16", "09:00", PEREZ)
        ]
    );
    // Friday 20 June is a holiday; Saturday has no cardiologist; next is Monday 23.
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-20", "time": "10:00" }),
        )
        .await;
    assert_eq!(out["reason"], "closed");
    assert_eq!(alts(&out)[0], a("2025-06-23", "08:00", PEREZ));
}

#[tokio::test]
async fn times_off_the_grid_are_outside_hours() {
    let env = Env::new().await;
    for time in ["13:00", "09:10", "07:30"] {
        let out = env
            .call(
                "find_availability",
                json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": time }),
            )
            .await;
        assert_eq!(
            (out["available"].clone(), out["reason"].clone()),
            (json!(false), json!("outside_hours")),
            "{time}"
        );
    }
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "13:00" }),
        )
        .await;
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "11:30", PEREZ),
            a("2025-06-10", "11:00", PEREZ),
            a("2025-06-10", "10:30", PEREZ)
        ]
    );
    // Ruiz works until 21:00 but the clinic closes at 20:00.
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Clínica Médica", "date": "2025-06-10", "time": "20:00" }),
        )
        .await;
    assert_eq!(out["reason"], "outside_hours");
}

#[tokio::test]
async fn without_a_time_the_first_free_slots_are_listed() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10" }),
        )
        .await;
    assert_eq!(
        (out["available"].clone(), out["time"].clone(), out["reason"].clone()),
        (json!(false), json!(null), json!("no_time"))
    );
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "08:00", PEREZ),
            a("2025-06-10", "08:30", PEREZ),
            a("2025-06-10", "09:00", PEREZ)
        ]
    );
}

#[tokio::test]
async fn alternatives_continue_on_the_following_open_days() {
    let env = Env::new().await;
    for time in ["18:00", "18:30", "19:00"] {
        let out = env
            .call(
                "book_appointment",
                json!({ "specialty": "Clínica Médica", "date": "2025-06-10", "time": time,
                        "patient_name": "Ana Gómez", "document": "30111222" }),
            )
            .await;
        assert_eq!(out["ok"], true, "{out}");
    }
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Clínica Médica", "date": "2025-06-10", "time": "19:00" }),
        )
        .await;
    assert_eq!(out["reason"], "taken");
    // Ruiz only works Tuesday evenings and Saturday mornings.
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "19:30", RUIZ),
            a("2025-06-14", "08:00", RUIZ),
            a("2025-06-14", "08:30", RUIZ)
        ]
    );
    env.call(
        "book_appointment",
        json!({ "specialty": "Clínica Médica", "date": "2025-06-10", "time": "19:30",
                "patient_name": "Ana Gómez", "document": "30111222" }),
    )
    .await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Clínica Médica", "date": "2025-06-10" }),
        )
        .await;
    assert_eq!(out["reason"], "no_slots");
    assert_eq!(alts(&out)[0], a("2025-06-14", "08:00", RUIZ));
}

#[tokio::test]
async fn a_requested_professional_narrows_the_search() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-11", "time": "10:00", "professional": "díaz" }),
        )
        .await;
    assert_eq!(
        (out["available"].clone(), out["professional"].clone()),
        (json!(true), json!(DIAZ))
    );
    env.book(DIAZ, "2025-06-11", "10:00", "30111222").await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-11", "time": "10:00", "professional": "Díaz" }),
        )
        .await;
    assert_eq!(
        (out["reason"].clone(), out["professional"].clone()),
        (json!("taken"), json!(DIAZ))
    );
    assert_eq!(
        alts(&out),
        [
            a("2025-06-11", "10:30", DIAZ),
            a("2025-06-11", "11:00", DIAZ),
            a("2025-06-11", "11:30", DIAZ)
        ]
    );
    // Anyone will do: Pérez is free then.
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-11", "time": "10:00" }),
        )
        .await;
    assert_eq!(
        (out["available"].clone(), out["professional"].clone()),
        (json!(true), json!(PEREZ))
    );
}

#[tokio::test]
async fn unusable_arguments_are_reported_not_raised() {
    let env = Env::new().await;
    let cases = [
        (json!({ "date": "2025-06-10" }), "missing_specialty"),
        (
            json!({ "specialty": "Dermatología", "date": "2025-06-10" }),
            "unknown_specialty",
        ),
        (json!({ "specialty": "Cardiología" }), "missing_date"),
        (json!({ "specialty": "Cardiología", "date": "mañana" }), "invalid_date"),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "25:00" }),
            "invalid_time",
        ),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "professional": "House" }),
            "unknown_professional",
        ),
        (json!({ "specialty": ["x"], "date": 20250610 }), "missing_specialty"),
    ];
    for (args, reason) in cases {
        let out = env.call("find_availability", args.clone()).await;
        assert_eq!(
            (out["ok"].clone(), out["available"].clone(), out["reason"].clone()),
            (json!(false), json!(false), json!(reason)),
            "{args}"
        );
    }
}

#[tokio::test]
async fn a_window_offers_free_times_inside_it_that_day_then_the_next() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "window": { "from": "11:00", "to": "13:00" } }),
        )
        .await;
    assert_eq!(out["reason"], json!("no_time"));
    assert_eq!(out["window"], json!({ "from": "11:00", "to": "13:00" }));
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "11:00", PEREZ),
            a("2025-06-10", "11:30", PEREZ),
            a("2025-06-11", "11:00", PEREZ)
        ]
    );
}

#[tokio::test]
async fn nothing_inside_a_window_says_so_and_offers_the_nearest_outside() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "window": { "from": "14:00", "to": "18:00" } }),
        )
        .await;
    assert_eq!(out["reason"], json!("outside_window"));
    assert_eq!(
        alts(&out),
        [
            a("2025-06-10", "10:30", PEREZ),
            a("2025-06-10", "11:00", PEREZ),
            a("2025-06-10", "11:30", PEREZ)
        ]
    );
}

#[tokio::test]
async fn an_exact_time_wins_over_a_window_and_a_bad_window_is_refused() {
    let env = Env::new().await;
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00", "window": { "from": "14:00", "to": "18:00" } }),
        )
        .await;
    assert_eq!(
        (out["available"].clone(), out["time"].clone()),
        (json!(true), json!("09:00"))
    );
    let out = env
        .call(
            "find_availability",
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "window": { "from": "12:00", "to": "10:00" } }),
        )
        .await;
    assert_eq!(
        (out["ok"].clone(), out["reason"].clone()),
        (json!(false), json!("invalid_window"))
    );
}

/// The search reads 14 days of bookings first (`NEAR_DAYS`); when they are all taken it must
/// search again over the whole horizon rather than answer from what it did not read.
#[tokio::test]
async fn a_full_fortnight_sends_the_search_to_the_rest_of_the_horizon() {
    let env = Env::new().await;
    let mut booked = 0;
    let first_free = loop {
        let out = env
            .call(
                "find_availability",
                json!({ "specialty": "Clínica Médica", "date": "2025-06-10" }),
            )
            .await;
        let first = alts(&out)
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("nothing offered: {out}"));
        if first.0.as_str() > "2025-06-23" {
            break first;
        }
        let out = env
            .call(
                "book_appointment",
                json!({ "specialty": "Clínica Médica", "date": first.0, "time": first.1,
                        "patient_name": "Ana Gómez", "document": format!("3{booked:07}") }),
            )
            .await;
        assert_eq!(out["ok"], true, "{out}");
        booked += 1;
        assert!(booked < 100, "the search keeps offering the same slot: {out}");
    };
    // Ruiz: Tuesdays 10 and 17 (18:00–19:30) and Saturdays 14 and 21 (mornings), all taken.
    assert!(booked >= 8, "{booked} bookings");
    assert_eq!(first_free, a("2025-06-24", "18:00", RUIZ));
}
