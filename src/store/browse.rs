//! What the console's agenda and conversation pages look up: conversations by id, channel,
//! day, state or patient, newest first, a page at a time; a conversation's handoffs; and
//! appointments by patient (document, name or phone).
//!
//! Names and phone numbers of appointments are encrypted at rest (store/sealed.rs), so the
//! database cannot match them: a name or phone search reads the appointments of a window of
//! days (one range of the `appointment_date` index) and matches them here, after decryption.
//! Documents are found through their keyed hash on any date.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::escalations::Escalation;
use super::sealed::decode_appointments;
use super::time::{fmt_date, fmt_instant};
use super::{Appointment, AppointmentFilter, PLAIN_ID, Store, StoreError, decode_rows};

/// What to look for; every field given must match. `limit` rows from `offset`, newest
/// activity first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationQuery {
    /// The exact conversation id.
    pub id: Option<String>,
    pub channel: Option<String>,
    /// Conversations with a turn in `[from, to)` (a clinic-local day).
    pub active: Option<(Timestamp, Timestamp)>,
    /// Where it stands: a prefix of `flow.state` ("book_appointment", "idle").
    pub state: Option<String>,
    /// Conversations that booked with this document, or proved it (`verify_patient`).
    pub document: Option<String>,
    /// Digits of the patient's phone number, anywhere in the address.
    pub phone: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

/// One conversation in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub id: String,
    pub channel: String,
    /// The patient's address. Personal data.
    pub user: String,
    #[serde(default)]
    pub updated_at: String,
    /// `flow.state` of the innermost frame, or `idle`.
    pub position: String,
    #[serde(default)]
    pub waiting_for_staff: bool,
    #[serde(default)]
    pub turns: u64,
}

/// `flow.state` of a stored session, computed by the database.
const POSITION: &str =
    "IF array::len(stack) = 0 THEN 'idle' ELSE array::last(stack).flow + '.' + array::last(stack).state END";

/// The days a name or phone search of appointments reads: 60 before `today` to 180 after.
pub fn browse_window(today: Date) -> (Date, Date) {
    let off = |days: i64| today.checked_add(jiff::Span::new().days(days)).unwrap_or(today);
    (off(-60), off(180))
}

impl Store {
    /// Conversations matching `q`, newest activity first; `limit + 1` are read so the caller
    /// knows whether there is a next page.
    pub async fn search_conversations(&self, q: &ConversationQuery) -> Result<Vec<ConversationRow>, StoreError> {
        let mut vars = Map::new();
        let mut sql = String::new();
        // Where the rows come from: one record, the records of a day or a patient, or the table.
        let mut sets = Vec::new();
        if let Some((from, to)) = q.active {
            vars.insert("from".into(), json!(fmt_instant(from)));
            vars.insert("to".into(), json!(fmt_instant(to)));
            sets.push("array::distinct(SELECT VALUE session FROM turn WHERE at >= $from AND at < $to)");
        }
        if let Some(d) = &q.document {
            vars.insert("dh".into(), json!(crate::identity::document_hash(d)));
            sets.push(
                "array::union((SELECT VALUE session FROM appointment WHERE document_hash = $dh),
                    (SELECT VALUE record::id(id) FROM session WHERE patient = $dh))",
            );
        }
        // Several sets: the conversations in all of them.
        let ids = sets.iter().skip(1).fold(sets.first().map(|s| s.to_string()), |acc, s| {
            acc.map(|a| format!("array::intersect({a}, {s})"))
        });
        let mut conds = Vec::new();
        let source = match (&q.id, ids) {
            (Some(id), ids) => {
                vars.insert("id".into(), json!(id));
                if let Some(ids) = ids {
                    sql.push_str(&format!("LET $ids = {ids};"));
                    conds.push("record::id(id) IN $ids".to_string());
                }
                "type::record('session', $id)"
            }
            (None, Some(ids)) => {
                sql.push_str(&format!(
                    "LET $recs = array::map({ids}, |$i| type::record('session', $i));"
                ));
                "$recs"
            }
            (None, None) => "session",
        };
        if let Some(c) = &q.channel {
            vars.insert("channel".into(), json!(c));
            conds.push("channel = $channel".into());
        }
        if let Some(p) = &q.phone {
            vars.insert("phone".into(), json!(p));
            conds.push("string::contains(user, $phone)".into());
        }
        if let Some(s) = &q.state {
            vars.insert("state".into(), json!(s));
            conds.push(format!("string::starts_with({POSITION}, $state)"));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        vars.insert("limit".into(), json!(q.limit + 1));
        vars.insert("start".into(), json!(q.offset));
        sql.push_str(&format!(
            "SELECT record::id(id) AS id, channel, user, updated_at, waiting_for_staff, turns,
                 {POSITION} AS position
             FROM {source} {filter} ORDER BY updated_at DESC LIMIT $limit START $start;"
        ));
        let index = sql.matches(';').count() - 1;
        let mut resp = self.run(&sql, Value::Object(vars)).await?;
        decode_rows(&mut resp, index, "conversation")
    }

    /// Every handoff of a conversation, oldest first.
    pub async fn escalations_of(&self, session_id: &str) -> Result<Vec<Escalation>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM escalation WHERE session = $session_id ORDER BY created_at ASC");
        let mut resp = self.run(&sql, json!({ "session_id": session_id })).await?;
        decode_rows(&mut resp, 0, "escalation")
    }

    /// Appointments of the clinic-local days `from..=to`, soonest first.
    pub async fn appointments_between(&self, from: Date, to: Date) -> Result<Vec<Appointment>, StoreError> {
        let sql =
            format!("SELECT {PLAIN_ID} FROM appointment WHERE date >= $from AND date <= $to ORDER BY starts_at ASC");
        let mut resp = self
            .run(&sql, json!({ "from": fmt_date(from), "to": fmt_date(to) }))
            .await?;
        decode_appointments(&mut resp, 0)
    }

    /// Appointments of a patient, soonest first: by document on any date, and by name or
    /// phone number among those of `window` (see the module docs). At most `limit`.
    pub async fn search_appointments(
        &self,
        query: &str,
        window: (Date, Date),
        limit: usize,
    ) -> Result<Vec<Appointment>, StoreError> {
        let query = query.trim();
        let document = crate::actions::normalize_document(query);
        let digits: String = query.chars().filter(char::is_ascii_digit).collect();
        let mut found = Vec::new();
        if document.len() >= 5 {
            let filter = AppointmentFilter {
                document: Some(document),
                limit: Some(limit),
                ..Default::default()
            };
            found = self.list_appointments(&filter).await?;
        }
        let name = crate::nlu::normalize::fold(query);
        let by_phone = digits.len() >= 6 && digits.len() * 2 >= query.chars().filter(|c| !c.is_whitespace()).count();
        if name.chars().count() >= 2 {
            for a in self.appointments_between(window.0, window.1).await? {
                let hit = if by_phone {
                    a.user
                        .chars()
                        .filter(char::is_ascii_digit)
                        .collect::<String>()
                        .contains(&digits)
                } else {
                    crate::nlu::normalize::fold(&a.patient_name).contains(&name)
                };
                if hit && !found.iter().any(|f: &Appointment| f.id == a.id) {
                    found.push(a);
                }
            }
        }
        found.sort_by_key(|a| a.starts_at);
        found.truncate(limit);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;
    use crate::engine::session::{Frame, Session, Wait};
    use crate::lang::Lang;
    use crate::store::appointments::tests::{booking, slot};
    use crate::store::turns::sample_turn;

    async fn session(store: &Store, id: &str, channel: &str, user: &str, flow: Option<&str>) {
        let mut s = Session::new(id, channel, user, Lang::Es);
        s.version = 1;
        if let Some(flow) = flow {
            s.stack.push(Frame {
                flow: flow.into(),
                state: "details".into(),
                slots: Default::default(),
                wait: Wait::Intent,
                result: Value::Null,
            });
        }
        store.save_session(&s).await.unwrap();
    }

    fn ids(rows: &[ConversationRow]) -> Vec<&str> {
        let mut v: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        v.sort_unstable();
        v
    }

    #[tokio::test]
    async fn conversations_are_found_by_each_field_and_paged() {
        let store = mem().await;
        session(
            &store,
            "wa:1",
            "whatsapp",
            "whatsapp:+5491155550001",
            Some("book_appointment"),
        )
        .await;
        session(&store, "wa:2", "whatsapp", "whatsapp:+5491155550002", None).await;
        session(&store, "sms:3", "sms", "+5491155550003", Some("cancel_appointment")).await;
        let mut t = sample_turn("wa:2", 1, "hola");
        t.at = "2026-11-23T13:00:00Z".parse().unwrap();
        store.append_turn(&t).await.unwrap();
        let mut b = booking(slot("Dr. Juan Pérez", "2026-11-30", "09:00"), "30111222");
        b.session = "sms:3".into();
        store.create_appointment(&b).await.unwrap();

        let all = ConversationQuery {
            limit: 10,
            ..Default::default()
        };
        let found = store.search_conversations(&all).await.unwrap();
        assert_eq!(ids(&found), ["sms:3", "wa:1", "wa:2"]);
        assert_eq!(found.iter().find(|r| r.id == "wa:2").unwrap().position, "idle");
        assert_eq!(
            found.iter().find(|r| r.id == "wa:1").unwrap().position,
            "book_appointment.details"
        );
        let q = |f: fn(&mut ConversationQuery)| {
            let mut q = all.clone();
            f(&mut q);
            q
        };
        let cases: Vec<(ConversationQuery, Vec<&str>)> = vec![
            (q(|q| q.id = Some("wa:1".into())), vec!["wa:1"]),
            (q(|q| q.channel = Some("whatsapp".into())), vec!["wa:1", "wa:2"]),
            (q(|q| q.state = Some("cancel".into())), vec!["sms:3"]),
            (q(|q| q.state = Some("idle".into())), vec!["wa:2"]),
            (q(|q| q.phone = Some("1155550002".into())), vec!["wa:2"]),
            (q(|q| q.document = Some("30111222".into())), vec!["sms:3"]),
            (
                q(|q| {
                    q.active = Some((
                        "2026-11-23T03:00:00Z".parse().unwrap(),
                        "2026-11-24T03:00:00Z".parse().unwrap(),
                    ))
                }),
                vec!["wa:2"],
            ),
            (
                q(|q| {
                    q.active = Some((
                        "2026-11-23T03:00:00Z".parse().unwrap(),
                        "2026-11-24T03:00:00Z".parse().unwrap(),
                    ));
                    q.document = Some("30111222".into());
                }),
                vec![],
            ),
            (
                q(|q| {
                    q.id = Some("wa:1".into());
                    q.document = Some("30111222".into());
                }),
                vec![],
            ),
        ];
        for (query, want) in cases {
            let got = store.search_conversations(&query).await.unwrap();
            assert_eq!(ids(&got), want, "{query:?}");
        }
        // Pages: limit + 1 rows tell that there is more.
        let first = store
            .search_conversations(&ConversationQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(first.len(), 3);
        let last = store
            .search_conversations(&ConversationQuery {
                limit: 2,
                offset: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(last.len(), 1);
    }

    #[tokio::test]
    async fn appointments_are_found_by_document_name_or_phone() {
        let store = mem().await;
        let a = store
            .create_appointment(&booking(slot("Dr. Juan Pérez", "2026-11-30", "09:00"), "30111222"))
            .await
            .unwrap();
        let mut other = booking(slot("Dr. Juan Pérez", "2026-11-30", "09:30"), "27999888");
        other.patient_name = "Martín Ibáñez".into();
        other.user = "whatsapp:+5491166667777".into();
        let b = store.create_appointment(&other).await.unwrap();
        let window = ("2026-11-01".parse().unwrap(), "2026-12-31".parse().unwrap());
        let find = |q: &'static str| {
            let store = store.clone();
            async move {
                store
                    .search_appointments(q, window, 50)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(find("30.111.222").await, [a.id.as_str()]);
        assert_eq!(find("ibanez").await, [b.id.as_str()], "accents and case do not matter");
        assert_eq!(find("+54 9 11 6666-7777").await, [b.id.as_str()]);
        assert_eq!(find("gómez").await, [a.id.as_str()]);
        assert!(find("nadie").await.is_empty());
    }
}
