//! Each run's append-only, hash-chained event log, and its verification.
//!
//! An event's stored bytes are the JSON of [`Event`], whose `prev` field is the hash of
//! the event before it (all zeros for the first). Its hash is the sha256 of exactly
//! those bytes. The run's chain head (last sequence number and hash) is stored beside
//! the log, so editing, reordering, deleting or cutting off events all break the chain.

use crate::runtime::Failure;
use crate::store::{EventHead, Store, StoreError, StoredEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry of a run's log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_ms: u64,
    /// Hex sha256 of the previous event's bytes.
    pub prev: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        workflow: String,
        version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        input: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    StepScheduled {
        path: String,
        generation: u32,
    },
    AttemptStarted {
        path: String,
        attempt: u32,
    },
    StepCompleted {
        path: String,
        output: serde_json::Value,
    },
    AttemptFailed {
        path: String,
        attempt: u32,
        failure: Failure,
    },
    RetryScheduled {
        path: String,
        attempt: u32,
        /// When the attempt is due. (Not `at_ms`: that is the event's own time, and the
        /// flattened JSON would hold the key twice.)
        retry_at_ms: u64,
    },
    StepFailed {
        path: String,
        failure: Failure,
    },
    Parked {
        path: String,
        /// What it waits for: `timer`, `event NAME`, `human task`, `exception`.
        on: String,
    },
    Resumed {
        path: String,
        by: String,
    },
    Decision {
        path: String,
        outcome: String,
        actor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        /// A reviewer changed the reviewed plugin output (it went to the corrections ledger).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        corrected: bool,
    },
    /// One approval of an N-of-M task; `remaining` more are needed.
    Approval {
        path: String,
        actor: String,
        remaining: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    TaskClaimed {
        path: String,
        actor: String,
    },
    TaskUnclaimed {
        path: String,
        actor: String,
    },
    /// The task's due time passed; `to` may now act on it too.
    TaskEscalated {
        path: String,
        to: Vec<String>,
    },
    EventReceived {
        path: String,
        name: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    /// An operator command: cancel, pause, resume, retry, resolve, restart.
    Operator {
        action: String,
        actor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A command that arrived when the run could no longer act on it.
    Refused {
        action: String,
        actor: String,
        reason: String,
    },
    /// Something a person did outside any run (in the system log): a workflow applied,
    /// a token or a plugin managed.
    Admin {
        actor: String,
        action: String,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<serde_json::Value>,
    },
    RunFinished {
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<super::state::RunFailure>,
    },
}

/// The hash-chained log of what people do outside runs, verified with the run logs.
pub const SYSTEM_LOG: &str = "system";

/// Records in the system log that `actor` did `action` to `target`.
pub fn record(
    store: &Store,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    let kind = EventKind::Admin {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    store.append_event(SYSTEM_LOG, |head| {
        chain(head, super::duration::now_ms(), kind)
    })
}

/// A log entry as the audit API and export show it: the event's JSON with the `run_id`
/// of its log and its `hash`. `None` for an unreadable event (`verify` reports those).
pub fn entry(run: &str, event: &StoredEvent) -> Option<serde_json::Value> {
    let serde_json::Value::Object(mut entry) = serde_json::from_slice(&event.body).ok()? else {
        return None;
    };
    entry.insert("run_id".into(), run.into());
    entry.insert("hash".into(), hex_hash(&event.hash).into());
    Some(serde_json::Value::Object(entry))
}

/// What verification reads of an event: its place in the chain. Reading no more keeps
/// every event verifiable whatever its kind holds, including `retry_scheduled` events
/// written before their due time was renamed, which held `at_ms` twice.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    prev: String,
}

/// Builds the next event of a chain whose head is `head` (`None`: the first).
pub fn chain(head: Option<&EventHead>, at_ms: u64, kind: EventKind) -> StoredEvent {
    let (seq, prev) = match head {
        Some(h) => (h.seq + 1, hex_hash(&h.hash)),
        None => (0, hex_hash(&[0; 32])),
    };
    let event = Event {
        seq,
        at_ms,
        prev,
        kind,
    };
    let body = serde_json::to_vec(&event).expect("events are plain data");
    StoredEvent {
        seq,
        hash: Sha256::digest(&body).into(),
        body,
    }
}

/// A hash in hex. `hex::encode` goes through a `char` iterator, which showed in the
/// profile of every event appended.
fn hex_hash(hash: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(hash, &mut out).expect("64 bytes hold 32 in hex");
    String::from_utf8_lossy(&out).into_owned()
}

/// The head after `event`.
pub fn head_of(event: &StoredEvent) -> EventHead {
    EventHead {
        seq: event.seq,
        hash: event.hash,
    }
}

/// The result of checking every run's chain.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditReport {
    /// Runs checked (up to and including a broken one); the system log is checked too.
    pub runs: usize,
    pub events: usize,
    /// The first broken link, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<BrokenLink>,
}

/// Where a chain breaks and how.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BrokenLink {
    pub run: String,
    pub seq: u64,
    pub problem: String,
}

#[derive(Debug)]
enum Stop {
    Broken(BrokenLink),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

/// Checks every run's event chain; stops at the first broken link.
pub fn verify(store: &Store) -> Result<AuditReport, StoreError> {
    let mut events = 0;
    let mut runs = 0;
    let outcome = store.each_event_log(|run, log, head| {
        events += log.len();
        runs += usize::from(run != SYSTEM_LOG);
        check_chain(run, &log, head.as_ref()).map_err(Stop::Broken)
    });
    match outcome {
        Ok(_) => Ok(AuditReport {
            runs,
            events,
            broken: None,
        }),
        Err(Stop::Broken(link)) => Ok(AuditReport {
            runs,
            events,
            broken: Some(link),
        }),
        Err(Stop::Store(e)) => Err(e),
    }
}

fn check_chain(run: &str, log: &[StoredEvent], head: Option<&EventHead>) -> Result<(), BrokenLink> {
    let broken = |seq: u64, problem: String| BrokenLink {
        run: run.to_owned(),
        seq,
        problem,
    };
    let mut prev = [0u8; 32];
    for (expected_seq, event) in (0u64..).zip(log) {
        if event.seq != expected_seq {
            return Err(broken(
                expected_seq,
                format!(
                    "event {expected_seq} is missing (the next stored is {})",
                    event.seq
                ),
            ));
        }
        let actual: [u8; 32] = Sha256::digest(&event.body).into();
        if actual != event.hash {
            return Err(broken(
                event.seq,
                "the event's content does not match its hash (edited)".into(),
            ));
        }
        let parsed: Link = serde_json::from_slice(&event.body)
            .map_err(|e| broken(event.seq, format!("the event is unreadable: {e}")))?;
        if parsed.seq != event.seq {
            return Err(broken(
                event.seq,
                format!("the event says it is number {} (moved)", parsed.seq),
            ));
        }
        if parsed.prev != hex_hash(&prev) {
            return Err(broken(
                event.seq,
                "the event does not follow the one before it (reordered or replaced)".into(),
            ));
        }
        prev = event.hash;
    }
    match (head, log.last()) {
        // Every run starts its log with `run_started` in the transaction that creates it.
        (None, None) => Err(broken(
            0,
            "the run has no events: its log was deleted".into(),
        )),
        (Some(h), Some(last)) if h.seq == last.seq && h.hash == last.hash => Ok(()),
        (Some(h), Some(last)) => Err(broken(
            last.seq,
            format!(
                "the log ends at event {} but its recorded head is event {} (events cut off the end)",
                last.seq, h.seq
            ),
        )),
        (Some(h), None) => Err(broken(
            0,
            format!("the log is empty but its recorded head is event {}", h.seq),
        )),
        (None, Some(_)) => Err(broken(0, "the log has no recorded head".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<StoredEvent> {
        let mut out: Vec<StoredEvent> = Vec::new();
        for i in 0..n {
            let head = out.last().map(head_of);
            out.push(chain(
                head.as_ref(),
                i as u64,
                EventKind::StepScheduled {
                    path: format!("s{i}"),
                    generation: 0,
                },
            ));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_every_tampering_is_found() {
        let events = log(4);
        let head = head_of(events.last().unwrap());
        assert!(check_chain("r", &events, Some(&head)).is_ok());

        let mut edited = events.clone();
        edited[1].body = String::from_utf8(edited[1].body.clone())
            .unwrap()
            .replace("s1", "sX")
            .into_bytes();
        assert_eq!(check_chain("r", &edited, Some(&head)).unwrap_err().seq, 1);

        let mut deleted = events.clone();
        deleted.remove(2);
        assert!(
            check_chain("r", &deleted, Some(&head))
                .unwrap_err()
                .problem
                .contains("missing")
        );

        assert!(
            check_chain("r", &[], None)
                .unwrap_err()
                .problem
                .contains("deleted")
        );

        let cut = &events[..3];
        assert!(
            check_chain("r", cut, Some(&head))
                .unwrap_err()
                .problem
                .contains("cut off")
        );

        let mut swapped = events.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = StoredEvent { seq: 1, ..b };
        swapped[2] = StoredEvent { seq: 2, ..a };
        assert!(check_chain("r", &swapped, Some(&head)).is_err());
    }

    #[test]
    fn a_retry_event_reads_back_and_legacy_ones_with_a_doubled_time_still_verify() {
        let retry = chain(
            None,
            7,
            EventKind::RetryScheduled {
                path: "pay".into(),
                attempt: 2,
                retry_at_ms: 9,
            },
        );
        let read: Event = serde_json::from_slice(&retry.body).expect("reads back");
        assert_eq!(read.at_ms, 7);
        assert!(matches!(
            read.kind,
            EventKind::RetryScheduled { retry_at_ms: 9, .. }
        ));
        assert!(check_chain("r", std::slice::from_ref(&retry), Some(&head_of(&retry))).is_ok());

        // Before the rename, the due time was a second `at_ms` key.
        let body = format!(
            r#"{{"seq":0,"at_ms":7,"prev":"{}","type":"retry_scheduled","path":"pay","attempt":2,"at_ms":9}}"#,
            hex_hash(&[0; 32])
        )
        .into_bytes();
        let legacy = StoredEvent {
            seq: 0,
            hash: Sha256::digest(&body).into(),
            body,
        };
        assert!(check_chain("r", std::slice::from_ref(&legacy), Some(&head_of(&legacy))).is_ok());
    }
}
