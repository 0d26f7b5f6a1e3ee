//! The bad-request budget: a client address that keeps sending requests the API
//! refuses as malformed (bad JSON, no or a wrong token, unknown routes, oversized
//! bodies, invalid input) is answered 429 at once, before its token is checked or its
//! body read, until its budget refills. Other clients are not slowed by its flood.
//!
//! The budget is a token bucket per peer address (an IPv6 client's /64): `burst` refusals at once, refilled at
//! `per_second`. Refusals that a well-formed request can meet in normal work (403, 409)
//! do not count. Behind a reverse proxy every client shares the proxy's address: turn
//! the budget off there (`bad_request_burst = 0`) and limit at the proxy.

use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Addresses tracked before those with a full budget again are forgotten.
const SWEEP_ABOVE: usize = 4096;
/// The most addresses tracked at once, so a flood from ever-new addresses cannot grow
/// the map without bound; beyond it, new addresses go untracked until a sweep.
const MAX_TRACKED: usize = 65_536;
/// The least time between two sweeps of the map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The budgets of the client addresses that were refused lately.
#[derive(Clone)]
pub struct Guard {
    budget: BadRequestBudget,
    clients: Arc<Mutex<Clients>>,
}

#[derive(Default)]
struct Clients {
    buckets: HashMap<IpAddr, Bucket>,
    swept: Option<Instant>,
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
        let bucket = clients.buckets.get(&client)?;
        let tokens = self.refilled(*bucket, Instant::now());
        (tokens < 1.0).then(|| ((1.0 - tokens) / f64::from(self.budget.per_second)).ceil() as u64)
    }

    /// Takes one refusal from `client`'s budget.
    fn charge(&self, client: IpAddr) {
        let now = Instant::now();
        let burst = f64::from(self.budget.burst);
        let mut clients = self
            .clients
            .lock()
            .expect("the guard's lock is never poisoned");
        let Clients { buckets, swept } = &mut *clients;
        if buckets.len() >= SWEEP_ABOVE && swept.is_none_or(|at| now - at >= SWEEP_EVERY) {
            buckets.retain(|_, b| self.refilled(*b, now) < burst);
            *swept = Some(now);
        }
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&client) {
            return;
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        // Requests in flight together all pass the check; none drives it below empty.
        *bucket = Bucket {
            tokens: (self.refilled(*bucket, now) - 1.0).max(0.0),
            at: now,
        };
    }
}

/// The key of a client: its IPv4 address (also when mapped into IPv6), or its IPv6 /64,
/// the block one host is usually given.
pub(super) fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
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
    )
}

/// The middleware: refuses a client whose budget is spent, charges malformed requests.
pub async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| client_key(address.ip()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(key("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn a_spent_budget_refuses_and_overdrawing_does_not_lengthen_the_wait() {
        let guard = Guard::new(BadRequestBudget {
            burst: 3,
            per_second: 1,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..2 {
            guard.charge(a);
        }
        assert_eq!(guard.exhausted(a), None, "one refusal left");
        // Ten requests in flight at once all charge; the bucket stops at empty.
        for _ in 0..10 {
            guard.charge(a);
        }
        assert_eq!(guard.exhausted(a), Some(1), "one refill away");
        assert_eq!(guard.exhausted(b), None, "another address is untouched");
    }
}
