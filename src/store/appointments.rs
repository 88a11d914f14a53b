//! Appointments. A booked appointment owns its slot through the UNIQUE `slot_key`
//! ("professional|date|time"); cancelling rewrites the key to "cancelled:<id>", which frees
//! the slot in the same write. Double booking is therefore refused by the database itself,
//! across any number of replicas.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::reminders::Reminder;
use super::sealed::decode_appointments;
use super::time::{fmt_date, fmt_hhmm, fmt_instant};
use super::{PLAIN_ID, SLOT_TAKEN, Store, StoreError, rows, to_doc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    /// The patient came (marked by staff from the agenda).
    Attended,
    /// The patient did not come (marked by staff from the agenda).
    NoShow,
}

impl AppointmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Attended => "attended",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(s: &str) -> Option<AppointmentStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "booked" => Some(AppointmentStatus::Booked),
            "cancelled" | "canceled" => Some(AppointmentStatus::Cancelled),
            "attended" => Some(AppointmentStatus::Attended),
            "no_show" | "noshow" | "no-show" => Some(AppointmentStatus::NoShow),
            _ => None,
        }
    }
}

/// One bookable position: who, when (local date and time in the clinic's zone) and the same
/// moment as an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub professional: String,
    pub date: Date,
    pub time: Time,
    pub starts_at: Timestamp,
    pub minutes: u32,
}

impl Slot {
    /// The value of the UNIQUE index while the slot is booked.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.professional, fmt_date(self.date), fmt_hhmm(self.time))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAppointment {
    pub specialty: String,
    pub slot: Slot,
    pub patient_name: String,
    pub document: String,
    pub coverage: Option<String>,
    /// Where the confirmation and reminders are emailed (src/email.rs); encrypted at rest.
    pub email: Option<String>,
    pub channel: String,
    pub user: String,
    pub session: String,
    pub created_at: Timestamp,
}

/// A stored appointment. Holds personal data (name, document): never log it at info level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub specialty: String,
    pub professional: String,
    pub date: Date,
    #[serde(with = "super::time::hhmm")]
    pub time: Time,
    #[serde(with = "super::time::instant")]
    pub starts_at: Timestamp,
    pub minutes: u32,
    pub patient_name: String,
    pub document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    /// The patient's email, when they gave one (encrypted at rest, never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub status: AppointmentStatus,
    pub channel: String,
    pub user: String,
    pub session: String,
    #[serde(with = "super::time::instant")]
    pub created_at: Timestamp,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    /// When the patient confirmed they will come (answering a reminder).
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<Timestamp>,
    /// When staff marked it attended or no-show, and who.
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub marked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_by: Option<String>,
    pub slot_key: String,
}

/// Filters for [`Store::list_appointments`]; `None` means "any". Results are sorted by
/// start time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppointmentFilter {
    pub document: Option<String>,
    pub date: Option<Date>,
    pub professional: Option<String>,
    pub status: Option<AppointmentStatus>,
    pub session: Option<String>,
    /// Only appointments starting strictly after this instant.
    pub starts_after: Option<Timestamp>,
    pub limit: Option<usize>,
}

/// A thrown tag meaning "the appointment is not booked (any more)".
const NOT_BOOKED: &str = "cf_not_booked";
/// Cancels the outbox rows not yet sent of the appointment `$id`'s reminders: a reminder
/// being retried is not sent for a cancelled appointment, nor with the old time of a moved
/// one (a moved reminder is queued again when its new time comes).
const CANCEL_QUEUED: &str = "UPDATE outbox SET status = 'cancelled', lease_until = NONE, lease_owner = NONE
                 WHERE reminder IN (SELECT VALUE record::id(id) FROM reminder WHERE appointment = $id)
                     AND status = 'pending' RETURN NONE;";

/// A thrown tag meaning "its reminders changed between our read and our write".
const REMINDERS_CHANGED: &str = "cf_reminders_changed";

fn thrown(e: &StoreError, tag: &str) -> bool {
    matches!(e, StoreError::Query(msg) if msg.contains(tag))
}

impl Store {
    /// Books a slot. `StoreError::SlotTaken` when someone else holds it, even if they
    /// booked it a microsecond earlier from another replica.
    pub async fn create_appointment(&self, new: &NewAppointment) -> Result<Appointment, StoreError> {
        let appointment = Appointment {
            id: String::new(),
            specialty: new.specialty.clone(),
            professional: new.slot.professional.clone(),
            date: new.slot.date,
            time: new.slot.time,
            starts_at: new.slot.starts_at,
            minutes: new.slot.minutes,
            patient_name: new.patient_name.clone(),
            document: new.document.clone(),
            coverage: new.coverage.clone(),
            email: new.email.clone(),
            status: AppointmentStatus::Booked,
            channel: new.channel.clone(),
            user: new.user.clone(),
            session: new.session.clone(),
            created_at: new.created_at,
            cancelled_at: None,
            confirmed_at: None,
            marked_at: None,
            marked_by: None,
            slot_key: new.slot.key(),
        };
        // The unique index is the guard; the check before it refuses a taken slot without
        // writing anything, which matters inside a turn's transaction (a statement that
        // fails there is not undone on its own).
        let sql = format!(
            "IF (SELECT VALUE id FROM appointment WHERE slot_key = $slot_key LIMIT 1)[0] {{ THROW '{SLOT_TAKEN}' }}
             ELSE {{ CREATE appointment CONTENT $doc RETURN {PLAIN_ID} }};"
        );
        // A lost transaction race is retried: the retry meets the unique index and turns into
        // a clean SlotTaken (or succeeds if the winner rolled back).
        let doc = super::sealed::seal_appointment(to_doc(&appointment)?)?;
        let vars = json!({ "doc": doc, "slot_key": appointment.slot_key });
        let result = self.run_retry(&sql, vars).await;
        match &result {
            Ok(_) => self.slots_changed(),
            // Held since the cache was read (maybe by another replica): what is offered next
            // must come from the database.
            Err(StoreError::SlotTaken) => self.slots.forget(),
            Err(_) => {}
        }
        decode_appointments(&mut result?, 0)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Query("CREATE returned no appointment".into()))
    }

    pub async fn get_appointment(&self, id: &str) -> Result<Option<Appointment>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM ONLY type::record('appointment', $id)");
        let mut resp = self.run(&sql, json!({ "id": id })).await?;
        Ok(decode_appointments(&mut resp, 0)?.into_iter().next())
    }

    pub async fn list_appointments(&self, filter: &AppointmentFilter) -> Result<Vec<Appointment>, StoreError> {
        let mut conditions = Vec::new();
        let mut vars = serde_json::Map::new();
        let mut add = |cond: &str, name: &str, value: serde_json::Value| {
            conditions.push(cond.to_string());
            vars.insert(name.to_string(), value);
        };
        // Documents are encrypted: found by their keyed hash.
        if let Some(d) = &filter.document {
            add(
                "document_hash = $document_hash",
                "document_hash",
                json!(crate::identity::document_hash(d)),
            );
        }
        if let Some(d) = filter.date {
            add("date = $date", "date", json!(fmt_date(d)));
        }
        if let Some(p) = &filter.professional {
            add("professional = $professional", "professional", json!(p));
        }
        if let Some(s) = filter.status {
            add("status = $status", "status", json!(s.as_str()));
        }
        if let Some(s) = &filter.session {
            add("session = $session_id", "session_id", json!(s));
        }
        if let Some(t) = filter.starts_after {
            add("starts_at > $starts_after", "starts_after", json!(fmt_instant(t)));
        }
        let mut sql = format!("SELECT {PLAIN_ID} FROM appointment");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY starts_at ASC");
        if let Some(limit) = filter.limit {
            sql.push_str(" LIMIT $limit");
            vars.insert("limit".into(), json!(limit));
        }
        let mut resp = self.run(&sql, serde_json::Value::Object(vars)).await?;
        decode_appointments(&mut resp, 0)
    }

    /// Cancels a booked appointment and its pending reminders in one transaction, freeing the
    /// slot. `None` when there is no booked appointment with that id.
    pub async fn cancel_appointment(&self, id: &str, now: Timestamp) -> Result<Option<Appointment>, StoreError> {
        let sql = format!(
            "BEGIN TRANSACTION;
             IF (SELECT VALUE status FROM ONLY type::record('appointment', $id)) != 'booked' {{
                 THROW '{NOT_BOOKED}'
             }};
             {CANCEL_QUEUED}
             UPDATE reminder SET status = 'cancelled', lease_until = NONE, lease_owner = NONE
                 WHERE appointment = $id AND status = 'pending' RETURN NONE;
             UPDATE type::record('appointment', $id)
                 SET status = 'cancelled', slot_key = 'cancelled:' + $id, cancelled_at = $now
                 WHERE status = 'booked' RETURN {PLAIN_ID};
             COMMIT TRANSACTION;"
        );
        let vars = json!({ "id": id, "now": fmt_instant(now) });
        let result = self.run_retry(&sql, vars).await;
        self.slots_changed();
        match result {
            Ok(mut resp) => Ok(decode_appointments(&mut resp, 4)?.into_iter().next()),
            Err(e) if thrown(&e, NOT_BOOKED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Marks a booked appointment as confirmed by the patient (the first confirmation's time
    /// is kept). `None` when there is no booked appointment with that id.
    pub async fn confirm_appointment(&self, id: &str, now: Timestamp) -> Result<Option<Appointment>, StoreError> {
        let sql = format!(
            "UPDATE type::record('appointment', $id) SET confirmed_at = confirmed_at ?? $now
                 WHERE status = 'booked' RETURN {PLAIN_ID}"
        );
        let vars = json!({ "id": id, "now": fmt_instant(now) });
        let mut resp = self.run_retry(&sql, vars).await?;
        Ok(decode_appointments(&mut resp, 0)?.into_iter().next())
    }

    /// Marks an appointment that was booked (or already marked) as attended or no-show, and
    /// cancels its pending reminders, in one transaction; the slot stays held. `None` when
    /// there is no such appointment, or it was cancelled.
    pub async fn mark_appointment(
        &self,
        id: &str,
        status: AppointmentStatus,
        by: &str,
        now: Timestamp,
    ) -> Result<Option<Appointment>, StoreError> {
        if !matches!(status, AppointmentStatus::Attended | AppointmentStatus::NoShow) {
            return Err(StoreError::Query("only attended or no_show can be marked".into()));
        }
        let sql = format!(
            "BEGIN TRANSACTION;
             IF (SELECT VALUE status FROM ONLY type::record('appointment', $id)) NOT IN $markable {{
                 THROW '{NOT_BOOKED}'
             }};
             UPDATE reminder SET status = 'cancelled', lease_until = NONE, lease_owner = NONE
                 WHERE appointment = $id AND status = 'pending' RETURN NONE;
             UPDATE type::record('appointment', $id)
                 SET status = $status, marked_at = $now, marked_by = $by
                 WHERE status IN $markable RETURN {PLAIN_ID};
             COMMIT TRANSACTION;"
        );
        let vars = json!({
            "id": id, "status": status.as_str(), "by": by, "now": fmt_instant(now),
            "markable": ["booked", "attended", "no_show"],
        });
        match self.run_retry(&sql, vars).await {
            Ok(mut resp) => Ok(decode_appointments(&mut resp, 3)?.into_iter().next()),
            Err(e) if thrown(&e, NOT_BOOKED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a booked appointment to `to` and its pending reminders with it (a reminder whose
    /// new due time has already passed is cancelled), all in one transaction: if the new slot
    /// is taken (`StoreError::SlotTaken`) nothing changes. `None` when there is no booked
    /// appointment with that id.
    pub async fn reschedule_appointment(
        &self,
        id: &str,
        to: &Slot,
        now: Timestamp,
    ) -> Result<Option<Appointment>, StoreError> {
        for _ in 0..super::RETRIES {
            let result = self.try_reschedule(id, to, now).await;
            match &result {
                Ok(Some(_)) => self.slots_changed(),
                // As for a booking: the cache did not know.
                Err(StoreError::SlotTaken) => self.slots.forget(),
                _ => {}
            }
            match result {
                Err(e) if thrown(&e, REMINDERS_CHANGED) => continue,
                Err(e) if thrown(&e, NOT_BOOKED) => return Ok(None),
                other => return other,
            }
        }
        Err(StoreError::Conflict(
            "reminders kept changing during a reschedule".into(),
        ))
    }

    async fn try_reschedule(&self, id: &str, to: &Slot, now: Timestamp) -> Result<Option<Appointment>, StoreError> {
        let reminders = self.reminders_of(id).await?;
        let pending: Vec<&Reminder> = reminders
            .iter()
            .filter(|r| r.status == super::ReminderStatus::Pending)
            .collect();
        let mut sql = format!(
            "BEGIN TRANSACTION;
             IF (SELECT VALUE status FROM ONLY type::record('appointment', $id)) != 'booked' {{
                 THROW '{NOT_BOOKED}'
             }};
             IF count(SELECT id FROM reminder WHERE appointment = $id AND status = 'pending') != $pending {{
                 THROW '{REMINDERS_CHANGED}'
             }};
             IF (SELECT VALUE id FROM appointment WHERE slot_key = $slot_key
                     AND id != type::record('appointment', $id) LIMIT 1)[0] {{
                 THROW '{SLOT_TAKEN}'
             }} ELSE {{"
        );
        let mut vars = serde_json::Map::new();
        for (i, r) in pending.iter().enumerate() {
            let due = to
                .starts_at
                .checked_sub(jiff::SignedDuration::from_mins(i64::from(r.offset_minutes)))
                .unwrap_or(to.starts_at);
            vars.insert(format!("r{i}"), json!(r.id));
            if due > now {
                vars.insert(format!("d{i}"), json!(fmt_instant(due)));
                sql.push_str(&format!(
                    " UPDATE type::record('reminder', $r{i}) SET due_at = $d{i}, lease_until = NONE,
                      lease_owner = NONE, outbox = NONE WHERE status = 'pending' RETURN NONE;"
                ));
            } else {
                sql.push_str(&format!(
                    " UPDATE type::record('reminder', $r{i}) SET status = 'cancelled', lease_until = NONE,
                      lease_owner = NONE WHERE status = 'pending' RETURN NONE;"
                ));
            }
        }
        // One block after the checks: nothing in it runs when a check throws, also inside a
        // turn's transaction (where the statements after a THROW would still run).
        let last = 3;
        sql.push_str(&format!(
            " {CANCEL_QUEUED}
              UPDATE type::record('appointment', $id)
                  SET professional = $professional, date = $date, time = $time,
                      starts_at = $starts_at, minutes = $minutes, slot_key = $slot_key
                  WHERE status = 'booked' RETURN {PLAIN_ID};
              }};
              COMMIT TRANSACTION;"
        ));
        vars.insert("id".into(), json!(id));
        vars.insert("pending".into(), json!(pending.len()));
        vars.insert("professional".into(), json!(to.professional));
        vars.insert("date".into(), json!(fmt_date(to.date)));
        vars.insert("time".into(), json!(fmt_hhmm(to.time)));
        vars.insert("starts_at".into(), json!(fmt_instant(to.starts_at)));
        vars.insert("minutes".into(), json!(to.minutes));
        vars.insert("slot_key".into(), json!(to.key()));
        let mut resp = self.run_retry(&sql, serde_json::Value::Object(vars)).await?;
        Ok(decode_appointments(&mut resp, last)?.into_iter().next())
    }

    /// Start times already booked for a professional on a date.
    pub async fn booked_slots(&self, professional: &str, date: Date) -> Result<Vec<Time>, StoreError> {
        Ok(self
            .booked_between(&[professional], date, date)
            .await?
            .into_iter()
            .map(|(_, _, t)| t)
            .collect())
    }

    /// The held (professional, date, time) of `professionals` from `want.0` through at least
    /// `want.1`, and the last day the answer covers: the slot cache's entries where they are
    /// current, else one read of the whole `span` (which must contain `want`; the booking
    /// horizon) for the professionals missing, kept for the next search. A transaction that
    /// has written appointments reads `want` from the database, through itself.
    pub async fn held_slots(
        &self,
        professionals: &[&str],
        want: (Date, Date),
        span: (Date, Date),
    ) -> Result<(Vec<(String, Date, Time)>, Date), StoreError> {
        if self.txn.as_ref().is_some_and(|open| open.wrote_slots()) || span.0 > want.0 || span.1 < want.1 {
            return Ok((self.booked_between(professionals, want.0, want.1).await?, want.1));
        }
        let mut out = Vec::new();
        let mut covered = span.1;
        let mut missing = Vec::new();
        for p in professionals {
            match self.slots.get(p, want.0, want.1) {
                Some((held, to)) => {
                    covered = covered.min(to);
                    out.extend(held.into_iter().map(|(d, t)| (p.to_string(), d, t)));
                }
                None => missing.push(*p),
            }
        }
        if missing.is_empty() {
            return Ok((out, covered));
        }
        // Outside the turn's transaction: what is kept must be what is committed now, not
        // the transaction's older snapshot.
        let generation = self.slots.generation();
        let plain = Store {
            txn: None,
            ..self.clone()
        };
        let rows = plain.booked_between(&missing, span.0, span.1).await?;
        for p in &missing {
            let held: Vec<(Date, Time)> = rows.iter().filter(|r| r.0 == *p).map(|r| (r.1, r.2)).collect();
            self.slots.put(p, generation, span.0, span.1, held);
        }
        out.extend(rows.into_iter().filter(|r| r.1 >= want.0));
        Ok((out, covered))
    }

    /// Every held (professional, date, time) — booked, attended or no-show — of `professionals`
    /// with `from <= date <= to`,
    /// in one round trip. Each professional's bookings are a range of the UNIQUE `slot_key`
    /// index ("professional|date|time" sorts by professional, then date, then time; a
    /// cancelled key starts with "cancelled:"), so the cost follows the rows returned, not
    /// the size of the table.
    pub async fn booked_between(
        &self,
        professionals: &[&str],
        from: Date,
        to: Date,
    ) -> Result<Vec<(String, Date, Time)>, StoreError> {
        if professionals.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::new();
        let mut vars = serde_json::Map::new();
        for (i, p) in professionals.iter().enumerate() {
            sql.push_str(&format!(
                "SELECT professional, date, time FROM appointment
                 WHERE slot_key >= $lo{i} AND slot_key <= $hi{i} AND status != 'cancelled';"
            ));
            // "~" sorts after every digit and ":" of a time.
            vars.insert(format!("lo{i}"), json!(format!("{p}|{}", fmt_date(from))));
            vars.insert(format!("hi{i}"), json!(format!("{p}|{}|~", fmt_date(to))));
        }
        let mut resp = self.run(&sql, serde_json::Value::Object(vars)).await?;
        let mut out = Vec::new();
        for (i, p) in professionals.iter().enumerate() {
            for row in rows(&mut resp, i)? {
                let field = |k: &str| row.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                let date = field("date").parse::<Date>();
                let time = crate::flow::clinic::parse_hhmm(field("time"));
                match (date, time) {
                    (Ok(d), Some(t)) if field("professional") == *p => out.push((p.to_string(), d, t)),
                    (Ok(_), Some(_)) => {}
                    _ => {
                        return Err(StoreError::Decode {
                            what: "appointment slot",
                            reason: format!("bad date/time in {row}"),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "appointments_tests.rs"]
pub(crate) mod tests;
