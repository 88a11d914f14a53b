//! The one lease protocol of the tables that background workers share (`reminder`, `outbox`):
//! a worker *claims* rows by setting `lease_owner`, `lease_until` and `lease_token += 1` in
//! one transaction that re-checks the claim condition in the writing statement, so racing
//! claimers collide in the database and each row goes to one of them. The claim's
//! [`Fence`] (owner and token) is what every later write of that claim names: a write
//! succeeds only while the row still holds exactly that claim, so a worker whose lease
//! expired (and whose row someone else, or a later pass of the same worker, claimed since)
//! can record nothing any more. A dead worker's lease simply runs out.

use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::time::fmt_instant;
use super::{PLAIN_ID, Store, StoreError, decode_rows, rows};

/// One claim on one row: the row's id, and the owner and token the claim set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub id: String,
    pub owner: String,
    pub token: u64,
}

/// A leased table: its name and when a row may be claimed.
pub(super) struct Leased {
    pub table: &'static str,
    /// Pending and not leased (never leased, lease expired, or retry time reached), with
    /// `$now` bound.
    pub claimable: &'static str,
    /// What else a claim sets (e.g. `attempts += 1`); empty for nothing.
    pub on_claim: &'static str,
}

/// Which rows a claim picks.
pub(super) enum Pick<'a> {
    /// Up to `limit` rows matching `filter` (besides claimable), ordered by `order` (a field
    /// that is also selected), with extra variables bound.
    Due {
        filter: &'a str,
        order: &'static str,
        limit: usize,
    },
    /// Exactly these rows, if they are claimable.
    Only(&'a [String]),
}

impl Store {
    /// Leases the rows `pick` names to `owner` until `now + lease`; returns them as stored
    /// after the claim (with the new token). `vars` adds variables the filter uses.
    pub(super) async fn claim_leased<T: DeserializeOwned>(
        &self,
        table: &Leased,
        pick: Pick<'_>,
        now: Timestamp,
        lease: SignedDuration,
        owner: &str,
        mut vars: Value,
    ) -> Result<Vec<T>, StoreError> {
        let until = now
            .checked_add(lease)
            .map_err(|e| StoreError::Query(format!("lease end: {e}")))?;
        let (name, claimable) = (table.table, table.claimable);
        let (pick, limit, only) = match pick {
            Pick::Due { filter, order, limit } => (
                format!(
                    "LET $ids = (SELECT id, {order} FROM {name} WHERE {claimable} {filter} \
                     ORDER BY {order} ASC LIMIT $limit).id;"
                ),
                limit,
                &[][..],
            ),
            Pick::Only(ids) => (
                format!("LET $ids = $only.map(|$k| type::record('{name}', $k));"),
                ids.len(),
                ids,
            ),
        };
        let extra = match table.on_claim {
            "" => String::new(),
            set => format!(", {set}"),
        };
        // The second WHERE re-checks the claim condition inside the writing statement; the
        // transaction makes a concurrent claimer of the same rows fail at commit (and retry,
        // by which time the rows are leased and skipped).
        let sql = format!(
            "BEGIN TRANSACTION;
             {pick}
             UPDATE $ids SET lease_until = $until, lease_owner = $owner, lease_token += 1{extra}
                 WHERE {claimable} RETURN {PLAIN_ID};
             COMMIT TRANSACTION;"
        );
        if let Some(map) = vars.as_object_mut() {
            map.insert("now".into(), json!(fmt_instant(now)));
            map.insert("until".into(), json!(fmt_instant(until)));
            map.insert("owner".into(), json!(owner));
            map.insert("limit".into(), json!(limit));
            map.insert("only".into(), json!(only));
        }
        let mut resp = self.run_retry(&sql, vars).await?;
        decode_rows(&mut resp, 2, "leased row")
    }

    /// `set` on the row `fence` claimed, only while it is pending and still holds that claim;
    /// `then` (statements, may be empty) runs in the same transaction only when it does.
    /// False when the claim is no longer the current one.
    pub(super) async fn fenced(
        &self,
        table: &Leased,
        fence: &Fence,
        set: &str,
        then: &str,
        mut vars: Value,
    ) -> Result<bool, StoreError> {
        let name = table.table;
        let held = "status = 'pending' AND lease_owner = $owner AND lease_token = $fence";
        let then = match then {
            "" => "LET $nothing = NONE;".to_string(),
            then => format!("IF array::len($held) > 0 {{ {then} }};"),
        };
        // Read and write in one transaction: a concurrent claim of the row conflicts at commit.
        let sql = format!(
            "BEGIN TRANSACTION;
             LET $held = (SELECT VALUE id FROM type::record('{name}', $id) WHERE {held});
             {then}
             UPDATE type::record('{name}', $id) SET {set} WHERE {held} RETURN {PLAIN_ID};
             COMMIT TRANSACTION;"
        );
        if let Some(map) = vars.as_object_mut() {
            map.insert("id".into(), json!(fence.id));
            map.insert("owner".into(), json!(fence.owner));
            map.insert("fence".into(), json!(fence.token));
        }
        let mut resp = self.run_retry(&sql, vars).await?;
        Ok(!rows(&mut resp, 3)?.is_empty())
    }
}
