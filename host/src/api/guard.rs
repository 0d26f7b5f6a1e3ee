//! The bad-request budget: a client address that keeps sending requests the API
//! refuses as malformed (bad JSON, no or a wrong token, unknown routes, oversized
//! bodies, invalid input) is answered 429 at once, before its token is checked or its
//! body read, until its budget refills. Other clients are not slowed by its flood.
//!
//! The budget is a token bucket per peer address: `burst` refusals at once, refilled at
//! `per_second`. Refusals that a well-formed request can meet in normal work (403, 409)
//! do not count. Behind a reverse proxy every client shares the proxy's address: turn
//! the budget off there (`bad_request_burst = 0`) and limit at the proxy.

use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many malformed requests a client address may send.
#[derive(Clone, Copy, Debug)]
pub struct BadRequestBudget {
    /// Refusals a client may get at once; 0 turns the budget off.
    pub burst: u32,
    /// Refusals per second the budget refills.
    pub per_second: u32,
}

impl Default for BadRequestBudget {
    fn default() -> Self {
        BadRequestBudget {
            burst: 200,
            per_second: 50,
        }
    }
}

/// Addresses kept before those with a full budget are forgotten.
const TRACKED: usize = 4096;

/// The budgets of the client addresses that were refused lately.
#[derive(Clone)]
pub struct Guard {
    budget: BadRequestBudget,
    clients: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Guard {
    pub fn new(budget: BadRequestBudget) -> Guard {
        Guard {
            budget,
            clients: Arc::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.budget.burst > 0 && self.budget.per_second > 0
    }

    /// The client's budget now, refilled for the time since it was last charged.
    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let burst = f64::from(self.budget.burst);
        let refill =
            now.duration_since(bucket.at).as_secs_f64() * f64::from(self.budget.per_second);
        (bucket.tokens + refill).min(burst)
    }

    /// Seconds until `client` may be heard again; `None` while it has budget left.
    fn exhausted(&self, client: IpAddr) -> Option<u64> {
        let clients = self
            .clients
            .lock()
            .expect("the guard's lock is never poisoned");
        let bucket = clients.get(&client)?;
        let tokens = self.refilled(*bucket, Instant::now());
        (tokens < 1.0).then(|| ((1.0 - tokens) / f64::from(self.budget.per_second)).ceil() as u64)
    }

    /// Takes one refusal from `client`'s budget.
    fn charge(&self, client: IpAddr) {
        let now = Instant::now();
        let mut clients = self
            .clients
            .lock()
            .expect("the guard's lock is never poisoned");
        if clients.len() >= TRACKED {
            let burst = f64::from(self.budget.burst);
            clients.retain(|_, b| self.refilled(*b, now) < burst);
        }
        let fresh = Bucket {
            tokens: f64::from(self.budget.burst),
            at: now,
        };
        let bucket = clients.entry(client).or_insert(fresh);
        *bucket = Bucket {
            tokens: self.refilled(*bucket, now) - 1.0,
            at: now,
        };
    }
}

/// Whether a refusal says the request itself was malformed.
fn is_malformed(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::UNAUTHORIZED
            | StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    )
}

/// The middleware: refuses a client whose budget is spent, charges malformed requests.
pub async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let Some(client) = client.filter(|_| guard.enabled()) else {
        return next.run(request).await;
    };
    if let Some(wait) = guard.exhausted(client) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_bad_requests",
            format!(
                "{client} sent more malformed requests than the server accepts \
                 ({} at once, {} a second); wait {wait} s and fix the requests",
                guard.budget.burst, guard.budget.per_second
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return response;
    }
    let response = next.run(request).await;
    if is_malformed(response.status()) {
        guard.charge(client);
    }
    response
}
