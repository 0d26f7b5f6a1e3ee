//! The audit trail over HTTP: query the hash-chained logs (every run's and the system
//! log of admin actions), verify every chain, export them as JSONL.

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::engine::audit::{self, AuditReport};
use crate::store::StoredEvent;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most entries one query returns.
const MAX_LIMIT: usize = 10_000;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/audit",
        Doc::new("Audit log entries", Access::Read)
            .query::<Filter>()
            .gives::<Vec<serde_json::Map<String, Value>>>()
            .errors(&[400]),
        query,
    )
    .get(
        "/v1/audit/verify",
        Doc::new("Check every hash chain", Access::Read).gives::<Verified>(),
        verify,
    )
    .get(
        "/v1/audit/export",
        Doc::new("Audit log entries as JSON Lines", Access::Read)
            .query::<Filter>()
            .returns("application/x-ndjson")
            .errors(&[400]),
        export,
    )
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    /// One run's log (`system`: the log of admin actions).
    run: Option<String>,
    /// Entries whose `actor` is this (`user:ana`).
    actor: Option<String>,
    /// Entries of this type (`decision`, `admin`, …).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Entries at or after this time (unix ms).
    since: Option<u64>,
    /// Entries before this time (unix ms).
    until: Option<u64>,
    /// At most this many (1 to 10,000; default 1,000), the oldest first.
    limit: Option<usize>,
}

impl Filter {
    /// Up to `limit` entries of one run's log and/or by one actor.
    pub(super) fn by(run: Option<String>, actor: Option<String>, limit: usize) -> Filter {
        Filter {
            run,
            actor,
            limit: Some(limit),
            ..Filter::default()
        }
    }

    fn matches(&self, entry: &Value) -> bool {
        let at = entry["at_ms"].as_u64().unwrap_or(0);
        self.actor.as_deref().is_none_or(|a| entry["actor"] == a)
            && self.kind.as_deref().is_none_or(|k| entry["type"] == k)
            && self.since.is_none_or(|s| at >= s)
            && self.until.is_none_or(|u| at < u)
    }

    /// Calls `f` with each matching entry (with its `run_id` and `hash`), log by log,
    /// oldest first, until `f` says stop.
    fn each(&self, state: &Shared, mut f: impl FnMut(Value) -> bool) -> Result<(), ApiError> {
        let mut visit = |run: &str, events: Vec<StoredEvent>| {
            for entry in events.iter().filter_map(|e| audit::entry(run, e)) {
                if self.matches(&entry) && !f(entry) {
                    return false;
                }
            }
            true
        };
        let store = state.engine.store();
        match &self.run {
            Some(run) => {
                let (events, _) = store.run_events(run)?;
                visit(run, events);
            }
            None => {
                // `each_event_log` stops at an error; having enough is one.
                let walked = store.each_event_log(|run, events, _| {
                    if visit(run, events) {
                        Ok(())
                    } else {
                        Err(Stop::Enough)
                    }
                });
                if let Err(Stop::Store(e)) = walked {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

enum Stop {
    Enough,
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        Stop::Store(e)
    }
}

/// `GET /v1/audit[?run=ID][&actor=A][&type=T][&since=MS][&until=MS][&limit=N]`: log
/// entries, each with its `run_id` and `hash`, oldest first within each log.
async fn query(
    State(state): State<Shared>,
    caller: Caller,
    Params(filter): Params<Filter>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(entries(&state, &filter)?))
}

/// The entries matching `filter`, up to its limit, oldest first within each log.
pub(super) fn entries(state: &Shared, filter: &Filter) -> Result<Vec<Value>, ApiError> {
    let limit = filter.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let mut out = Vec::new();
    filter.each(state, |entry| {
        out.push(entry);
        out.len() < limit
    })?;
    Ok(out)
}

/// `GET /v1/audit/verify`: checks every chain; `ok` is false with the first broken link.
/// What verifying every chain found.
#[derive(Serialize, JsonSchema)]
struct Verified {
    /// No chain is broken.
    ok: bool,
    #[serde(flatten)]
    report: AuditReport,
}

async fn verify(State(state): State<Shared>, caller: Caller) -> Result<Json<Verified>, ApiError> {
    caller.require(Access::Read)?;
    let report = audit::verify(state.engine.store())?;
    Ok(Json(Verified {
        ok: report.broken.is_none(),
        report,
    }))
}

/// `GET /v1/audit/export[?run=ID]…` (the query's filters, without a limit): every
/// matching entry as one JSON line, with its hash, so the chains can be checked outside.
async fn export(
    State(state): State<Shared>,
    caller: Caller,
    Params(filter): Params<Filter>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Access::Read)?;
    let mut body = String::new();
    filter.each(&state, |entry| {
        body.push_str(&entry.to_string());
        body.push('\n');
        true
    })?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}
