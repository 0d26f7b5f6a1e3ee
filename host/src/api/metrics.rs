//! `GET /metrics`: Prometheus text format.

use super::Shared;
use super::auth::{Access, Caller};
use super::error::ApiError;
use super::openapi::{Doc, Routes};
use crate::metrics::gauge;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/metrics",
        Doc::new("Prometheus metrics", Access::Read).returns("text/plain"),
        metrics,
    )
}

/// Runs by status, queue depths, step latency and plugin call histograms, plugin call
/// failures. Needs a token like every route but `/healthz` (Prometheus: `authorization`
/// with a viewer token).
async fn metrics(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Access::Read)?;
    let runs: Vec<(Option<(&str, &str)>, u64)> = state
        .engine
        .run_counts()?
        .into_iter()
        .map(|(s, n)| (Some(("status", s.as_str())), n))
        .collect();
    let (writer, live, timers) = state.engine.queues();
    let mut out = String::new();
    gauge(&mut out, "baton_runs", "Runs by status.", &runs);
    gauge(
        &mut out,
        "baton_queue_depth",
        "Work waiting: transitions for the writer, runs held in memory, pending timer wake-ups.",
        &[
            (Some(("queue", "writer")), writer as u64),
            (Some(("queue", "live_runs")), live as u64),
            (Some(("queue", "timers")), timers as u64),
        ],
    );
    state.engine.metrics().render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
