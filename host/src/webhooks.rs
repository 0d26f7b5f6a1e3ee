//! Webhooks: the HMAC-SHA256 signature both directions use, and the dispatcher that
//! delivers run-finished callbacks from a durable outbox, retrying with backoff.
//!
//! A signature is `sha256=` and the hex HMAC-SHA256, keyed with the shared secret, of
//! `TIMESTAMP.BODY` (unix seconds, a dot, the raw body), sent with `Baton-Timestamp`.

use crate::engine::Engine;
use crate::engine::state::RunRecord;
use crate::store::{DeliveryNext, Store};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};

/// Attempts before a delivery is filed as failed.
pub const MAX_ATTEMPTS: u32 = 8;
/// The wait before the second attempt; it doubles each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// An outbound webhook: where run-finished callbacks go.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Only runs of this workflow; all runs when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The signing secret; never shown after creation.
    #[serde(default, skip_serializing)]
    pub secret: String,
    pub created_ms: u64,
    pub created_by: String,
}

/// One callback to deliver.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    pub url: String,
    pub run_id: String,
    /// The JSON body, as sent on every attempt.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A new random shared secret (`whsec_` and 32 random bytes, base64url).
pub fn new_secret() -> String {
    crate::secret::random("whsec_")
}

/// The MAC over `TIMESTAMP.`, ready to take the body.
pub fn mac(secret: &str, timestamp: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac
}

/// The `Baton-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = mac(secret, &timestamp.to_string());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs turned into deliveries per transaction.
const ANNOUNCE_BATCH: usize = 256;

/// Starts the dispatcher: it turns runs announced as finished (by their own commit)
/// into a callback per matching webhook and delivers the outbox, including what an
/// earlier process left, until `closing` turns true.
pub fn start(engine: Engine, closing: watch::Receiver<bool>) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(queue_finished_runs(
        engine.clone(),
        wake.clone(),
        closing.clone(),
    ));
    tokio::spawn(deliver(engine.store().clone(), wake, closing));
}

async fn queue_finished_runs(
    engine: Engine,
    wake: Arc<Notify>,
    mut closing: watch::Receiver<bool>,
) {
    // Status updates only say when to look; the announced-runs table says what.
    let mut updates = engine.subscribe();
    let store = engine.store().clone();
    loop {
        loop {
            let store = store.clone();
            let pass = tokio::task::spawn_blocking(move || {
                store.queue_announced_runs(ANNOUNCE_BATCH, deliveries_for)
            })
            .await;
            let pass = match pass {
                Ok(Ok(pass)) => pass,
                Ok(Err(error)) => {
                    eprintln!("webhooks: queueing run-finished callbacks failed: {error}");
                    break;
                }
                Err(_) => break,
            };
            for problem in &pass.unreadable {
                eprintln!("webhooks: skipped a record that cannot be read: {problem}");
            }
            if pass.deliveries > 0 {
                wake.notify_one();
            }
            if pass.runs < ANNOUNCE_BATCH {
                break;
            }
        }
        loop {
            let update = tokio::select! {
                u = updates.recv() => u,
                _ = closing.changed() => return,
            };
            match update {
                Ok(u) if !u.status.is_finished() => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The callbacks for a finished run: one per webhook that wants its workflow. A run
/// retried since it was announced gets none now; its next finish announces it again.
fn deliveries_for(run: RunRecord, hooks: &[Webhook]) -> Vec<(u64, String, Vec<u8>)> {
    if !run.status.is_finished() {
        return Vec::new();
    }
    let body = serde_json::json!({ "event": "run.finished", "run": run }).to_string();
    let now = crate::engine::duration::now_ms();
    hooks
        .iter()
        .filter(|h| h.workflow.as_ref().is_none_or(|w| *w == run.workflow))
        .map(|h| {
            let id = format!("{}-{}-{}", run.id, h.id, run.finished_ms.unwrap_or(now));
            let delivery = Delivery {
                id: id.clone(),
                webhook: h.id.clone(),
                url: h.url.clone(),
                run_id: run.id.clone(),
                body: body.clone(),
                attempts: 0,
                last_error: None,
            };
            (now, id, serde_json::to_vec(&delivery).expect("plain data"))
        })
        .collect()
}

async fn deliver(store: Store, wake: Arc<Notify>, mut closing: watch::Receiver<bool>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .build()
        .into();
    loop {
        // redb reads, commits and blocking HTTP: off the async workers.
        let (store, agent) = (store.clone(), agent.clone());
        let next_due = tokio::task::spawn_blocking(move || deliver_due(&store, &agent))
            .await
            .ok()
            .flatten();
        let sleep = next_due.map_or(Duration::from_secs(60), |due| {
            Duration::from_millis(due.saturating_sub(crate::engine::duration::now_ms()))
        });
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = closing.changed() => return,
        }
    }
}

/// Attempts every delivery that is due; returns when the next one falls due.
fn deliver_due(store: &Store, agent: &ureq::Agent) -> Option<u64> {
    let now = crate::engine::duration::now_ms();
    let outbox: Vec<(u64, String, Delivery)> = store.outbox().unwrap_or_default();
    for (due, id, delivery) in outbox {
        if due > now {
            break;
        }
        let secret = store
            .webhooks::<Webhook>()
            .ok()
            .and_then(|hooks| hooks.into_iter().find(|h| h.id == delivery.webhook))
            .map(|h| h.secret);
        let Some(secret) = secret else {
            // The webhook was removed: nothing to deliver to.
            let _ = store.settle_delivery(due, &id, DeliveryNext::Done);
            continue;
        };
        let next = match post(agent, &secret, &delivery) {
            Ok(()) => DeliveryNext::Done,
            Err(error) => {
                let mut failed = delivery;
                failed.attempts += 1;
                failed.last_error = Some(error);
                let record = serde_json::to_vec(&failed).expect("plain data");
                if failed.attempts >= MAX_ATTEMPTS {
                    DeliveryNext::Failed(record)
                } else {
                    let wait = FIRST_BACKOFF
                        .saturating_mul(1 << (failed.attempts - 1).min(16))
                        .min(MAX_BACKOFF);
                    DeliveryNext::Retry(now + wait.as_millis() as u64, record)
                }
            }
        };
        let _ = store.settle_delivery(due, &id, next);
    }
    // Read again: the attempts just made may have rescheduled themselves.
    store
        .outbox::<Delivery>()
        .ok()
        .and_then(|o| o.first().map(|(due, _, _)| *due))
}

/// One attempt: a 2xx answer delivers it.
fn post(agent: &ureq::Agent, secret: &str, delivery: &Delivery) -> Result<(), String> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let response = agent
        .post(&delivery.url)
        .header("Content-Type", "application/json")
        .header("Baton-Timestamp", timestamp.to_string())
        .header(
            "Baton-Signature",
            sign(secret, timestamp, delivery.body.as_bytes()),
        )
        .header("Baton-Delivery", &delivery.id)
        .send(delivery.body.as_bytes())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}
