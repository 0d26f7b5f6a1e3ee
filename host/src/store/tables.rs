//! Every redb table Baton uses, defined in one place.
//!
//! Values are JSON-encoded records (see `store::records`) unless noted; keys are chosen
//! so that the range scans the store needs are prefix scans.

use redb::TableDefinition;

/// Component bytes by digest (`sha256:<hex>`). Content-addressed: many plugin versions
/// (and plugins) may share one blob.
pub const PLUGIN_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_blobs");

/// Native code compiled from a blob, by (digest, engine compatibility key). A new
/// wasmtime or different engine settings give a new key, so stale code is never loaded.
pub const COMPILED_ARTIFACTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("compiled_artifacts");

/// Installed plugin versions by (name, version) → `PluginRecord`.
pub const PLUGIN_VERSIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("plugin_versions");

/// What the admin granted a plugin (all its versions) by name → `GrantRecord`.
pub const PLUGIN_GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_grants");

/// Secret values granted to a plugin, by (plugin name, secret name) → value. Kept apart
/// from grants so no code path that serialises a grant can leak a value.
pub const PLUGIN_SECRETS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("plugin_secrets");

/// Human corrections of plugin outputs by (plugin, action, sequence) → `CorrectionRecord`.
/// The sequence grows, so a reverse scan yields the newest first.
pub const CORRECTIONS: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("corrections");

/// How often people reviewed each plugin action's output, by (plugin, action) →
/// (reviews, reviews that corrected the output).
pub const REVIEW_COUNTS: TableDefinition<(&str, &str), (u64, u64)> =
    TableDefinition::new("review_counts");

/// Database-wide settings, by name. Holds `format_version` (u32, big-endian).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Applied workflow definitions by (name, version) → the engine's workflow record.
/// Versions count up from 1 and are never rewritten.
pub const WORKFLOWS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("workflows");

/// Runs by id → the engine's run record. Run ids sort by start time.
pub const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");

/// Everything a run writes as it goes, by (run id, entry key; see [`run_log`]): its
/// step states, its append-only event log and the log's chain head. One table, so a
/// transition dirties one tree's pages instead of two: on a VM disk each page written is
/// a separate I/O request inside the commit.
pub const RUN_LOG: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("run_log");

/// Entry keys inside [`RUN_LOG`]. Within a run they sort events, head, steps.
pub mod run_log {
    /// `E` ++ the first event's sequence (u64, big-endian) → the events one transition
    /// appended, with consecutive sequences, each as its body's length (u32,
    /// big-endian) ++ 32-byte hash ++ event JSON. One row per transition rather than
    /// per event: each row costs its own walk down the tree.
    pub const EVENTS: u8 = b'E';
    /// `e` ++ sequence (u64, big-endian) → 32-byte hash ++ event JSON: one event per
    /// row, as builds before [`EVENTS`] wrote them. Still read, no longer written.
    pub const EVENT: u8 = b'e';
    /// The chain head: the last sequence (u64, big-endian) ++ its hash, which lets
    /// `audit verify` notice events cut off the end of a log.
    pub const HEAD: &[u8] = b"h";
    /// `s` ++ step path → the engine's step record. A path is the step id, prefixed
    /// inside a for-each iteration (`lines[3].check`).
    pub const STEP: u8 = b's';

    /// The key of the row of `kind` ([`EVENTS`] or [`EVENT`]) that starts at `seq`.
    pub fn event(kind: u8, seq: u64) -> [u8; 9] {
        let mut key = [kind; 9];
        key[1..].copy_from_slice(&seq.to_be_bytes());
        key
    }

    pub fn step(path: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(path.len() + 1);
        key.push(STEP);
        key.extend_from_slice(path.as_bytes());
        key
    }

    /// The bounds of every entry of one kind: `[kind]..[kind + 1]`.
    pub fn section(kind: u8) -> ([u8; 1], [u8; 1]) {
        ([kind], [kind + 1])
    }
}

/// Index: (status, run id).
pub const RUNS_BY_STATUS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("runs_by_status");

/// Index: (workflow name, run id).
pub const RUNS_BY_WORKFLOW: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("runs_by_workflow");

/// Index: (business key, run id).
pub const RUNS_BY_KEY: TableDefinition<(&str, &str), ()> = TableDefinition::new("runs_by_key");

/// Index: steps waiting for a person, by (queue, run id, step path). The queues are
/// `task` (a human task waits for a decision) and `exception` (an escalated step), so
/// the inbox and the exception queue read only the runs that have something in them.
pub const STEP_QUEUES: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("step_queues");

/// Idempotency keys of run starts by (workflow name, key) → run id.
pub const IDEMPOTENCY_KEYS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("idempotency_keys");

/// Durable timers by (due unix ms, run id, step path). Retries, waits and due times.
pub const TIMERS: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("timers");

/// Steps waiting for an external event by (event name, business key, run id, step path).
pub const EVENT_WAITS: TableDefinition<(&str, &str, &str, &str), ()> =
    TableDefinition::new("event_waits");

/// External events that arrived before any step waited for them, by (name, key, sequence)
/// → the engine's event message.
pub const EVENT_BUFFER: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("event_buffer");

/// Messages for a run (operator commands, decisions, events) by (run id, sequence),
/// written durably before the run acts on them and removed in the transition that does.
pub const RUN_INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("run_inbox");

/// Shared secrets of inbound webhooks by workflow name → the secret. Stored as they are:
/// verifying an HMAC needs the key itself.
pub const HOOK_SECRETS: TableDefinition<&str, &str> = TableDefinition::new("hook_secrets");

/// Outbound webhooks (run-finished callbacks) by id → the webhook record.
pub const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");

/// Runs that finished while some outbound webhook existed, by run id. The run's own
/// commit adds the row; the dispatcher turns it into deliveries and removes it in one
/// transaction, so no callback is lost between a run's end and the outbox.
pub const RUNS_TO_ANNOUNCE: TableDefinition<&str, ()> = TableDefinition::new("runs_to_announce");

/// Callbacks to deliver, by (due unix ms, delivery id) → the delivery record.
pub const WEBHOOK_OUTBOX: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("webhook_outbox");

/// Callbacks that failed every attempt, by delivery id → the delivery record.
pub const WEBHOOK_FAILED: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_failed");

/// API tokens by the hex sha256 of the token → the API's token record. The token itself
/// is never stored.
pub const API_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_tokens");
