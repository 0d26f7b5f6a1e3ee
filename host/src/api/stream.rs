//! Run events as Server-Sent Events: one run's log (replayed, then live), or every
//! run's events as they are committed, optionally of one workflow.

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::engine::Committed;
use crate::engine::state::RunRecord;
use crate::store::StoredEvent;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// Events buffered per stream before its producer waits for the client.
const STREAM_BUFFER: usize = 256;
/// Runs whose workflow a global stream remembers before it starts over.
const WORKFLOW_CACHE: usize = 10_000;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/runs/events",
        Doc::new(
            "Every run's events as Server-Sent Events, from now on",
            Access::Read,
        )
        .query::<AllRunsParams>()
        .returns("text/event-stream")
        .errors(&[400]),
        all_runs,
    )
    .get(
        "/v1/runs/changes",
        Doc::new(
            "A `change` Server-Sent Event per committed change to a run, from now on",
            Access::Read,
        )
        .query::<ChangesParams>()
        .returns("text/event-stream")
        .errors(&[400]),
        changes,
    )
    .get(
        "/v1/runs/{id}/events",
        Doc::new(
            "A run's events as Server-Sent Events: replayed, then live",
            Access::Read,
        )
        .query::<OneRunParams>()
        .headers(&[("Last-Event-ID", "Resume after this sequence number")])
        .returns("text/event-stream")
        .errors(&[400, 404]),
        one_run,
    )
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct OneRunParams {
    /// Start after this sequence number (the `Last-Event-ID` header does the same).
    after: Option<u64>,
}

/// `GET /v1/runs/{id}/events[?after=SEQ]`: the run's log from the start (or after
/// `SEQ`), then its events as they happen, in order. Each SSE event's `id` is the
/// sequence number, so a reconnecting client resumes where it left off.
async fn one_run(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    Params(params): Params<OneRunParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Access::Read)?;
    let after = match params.after {
        Some(seq) => Some(seq),
        None => headers
            .get("last-event-id")
            .map(|v| {
                v.to_str().ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID", "must be an event sequence number")
                })
            })
            .transpose()?,
    };
    // Subscribe before reading the log, so nothing committed in between is missed.
    let mut live = state.engine.events();
    let stored = state.engine.run_log(&id)?;
    let (tx, stream) = channel();
    let mut closing = state.closing.clone();
    tokio::spawn(async move {
        let mut next = after.map_or(0, |s| s + 1);
        let mut backlog = stored;
        loop {
            for event in &backlog {
                if event.seq < next {
                    continue;
                }
                if tx.send(sse(&id, event, false)).await.is_err() {
                    return;
                }
                next = event.seq + 1;
            }
            backlog = tokio::select! {
                received = live.recv() => match received {
                    Ok(batch) if batch.run_id != id => Vec::new(),
                    Ok(batch) if batch.events.first().is_none_or(|e| e.seq <= next) => {
                        batch.events.clone()
                    }
                    // A gap (a commit that raced the subscription) or a lag: what was
                    // missed is in the store.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        match state.engine.run_log(&id) {
                            Ok(events) => events,
                            Err(_) => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closing.changed() => return,
            };
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AllRunsParams {
    /// Only runs of this workflow.
    workflow: Option<String>,
}

/// `GET /v1/runs/events[?workflow=W]`: every run's events from now on, as they are
/// committed; each carries its `run_id`, and its SSE `id` is `RUN:SEQ`. A client that
/// falls too far behind gets a `lagged` event saying how many batches it missed.
async fn all_runs(
    State(state): State<Shared>,
    caller: Caller,
    Params(params): Params<AllRunsParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Access::Read)?;
    let mut workflows: HashMap<String, Option<String>> = HashMap::new();
    let engine = state.engine.clone();
    let stream = follow(&state, move |received| {
        let batch = match received {
            Ok(batch) => batch,
            Err(missed) => {
                let notice = format!("{{\"missed\":{missed}}}");
                return vec![Event::default().event("lagged").data(notice)];
            }
        };
        if let Some(wanted) = &params.workflow {
            if workflows.len() > WORKFLOW_CACHE {
                workflows.clear();
            }
            let workflow = workflows.entry(batch.run_id.clone()).or_insert_with(|| {
                engine
                    .store()
                    .run::<RunRecord>(&batch.run_id)
                    .ok()
                    .flatten()
                    .map(|r| r.workflow)
            });
            if workflow.as_ref() != Some(wanted) {
                return Vec::new();
            }
        }
        batch
            .events
            .iter()
            .map(|event| sse(&batch.run_id, event, true))
            .collect()
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangesParams {
    /// Only this run.
    run: Option<String>,
    /// The engine's commit count when the client read what it shows (a console page
    /// carries it in its stream's URL): if the count has moved since, the stream starts
    /// with a `change`, so a commit between the read and the subscription is not missed.
    seen: Option<u64>,
}

/// `GET /v1/runs/changes[?run=ID][&seen=N]`: one `change` event (data: `{"run_id": …}`)
/// per commit that changed a run, for pages that re-read what changed rather than
/// replay events (the console). A client that falls behind, or whose `seen` count is
/// out of date, gets one `change` with a null `run_id`: anything may have changed.
async fn changes(
    State(state): State<Shared>,
    caller: Caller,
    Params(params): Params<ChangesParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Access::Read)?;
    let change = |run: Option<&str>| {
        let data = serde_json::json!({ "run_id": run }).to_string();
        Event::default().event("change").data(data)
    };
    let only = params.run;
    let stream = follow(&state, move |received| {
        let run = received.as_ref().ok().map(|batch| batch.run_id.as_str());
        if run.is_some() && only.is_some() && run != only.as_deref() {
            return Vec::new();
        }
        vec![change(run)]
    });
    // After `follow` subscribed: a commit not counted yet will be in the stream.
    let missed = params
        .seen
        .is_some_and(|seen| seen != state.engine.commits());
    let first = futures_util::stream::iter(missed.then(|| Ok(change(None))));
    Ok(Sse::new(first.chain(stream)).keep_alive(KeepAlive::default()))
}

/// The events `events_for` makes of each batch committed from now on (`Err(missed)`
/// after falling behind), as a stream that ends when the client leaves or the server
/// closes.
fn follow<F>(
    state: &Shared,
    mut events_for: F,
) -> impl Stream<Item = Result<Event, Infallible>> + use<F>
where
    F: FnMut(Result<Arc<Committed>, u64>) -> Vec<Event> + Send + 'static,
{
    let mut live = state.engine.events();
    let mut closing = state.closing.clone();
    let (tx, stream) = channel();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                received = live.recv() => match received {
                    Ok(batch) => Ok(batch),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Err(missed),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = closing.changed() => return,
            };
            for event in events_for(received) {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    stream
}

/// A bounded channel whose receiving side is the response's event stream.
fn channel() -> (
    mpsc::Sender<Event>,
    impl Stream<Item = Result<Event, Infallible>>,
) {
    let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    (tx, stream)
}

/// One log event as SSE: named by its type, its data the event with the run's id.
fn sse(run: &str, event: &StoredEvent, global: bool) -> Event {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
    }
    let body = std::str::from_utf8(&event.body).unwrap_or("{}");
    let kind = serde_json::from_str::<Kind>(body).map_or("event", |k| k.kind);
    // The stored body is a JSON object: add the run id as its first field.
    let data = format!(
        "{{\"run_id\":{},{}",
        serde_json::Value::from(run),
        body.strip_prefix('{').unwrap_or("}")
    );
    let id = if global {
        format!("{run}:{}", event.seq)
    } else {
        event.seq.to_string()
    };
    Event::default().event(kind).id(id).data(data)
}
