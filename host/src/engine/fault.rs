//! Fault injection for crash tests.
//!
//! `BATON_FAULT_HOLD_AFTER_CALL=PLUGIN/ACTION` makes every call of that action, once the
//! plugin has returned, hold its result forever instead of handing it to the writer, and
//! say so on stderr. A test can then SIGKILL the process inside the one window no timing
//! can hit reliably: after a side effect happened at the far end and before its
//! completion was committed. Unset (always, outside tests), it costs one branch per call.

use std::sync::OnceLock;

/// The environment variable that names the action whose results are held.
pub const HOLD_AFTER_CALL: &str = "BATON_FAULT_HOLD_AFTER_CALL";

fn held_action() -> Option<&'static str> {
    static HELD: OnceLock<Option<String>> = OnceLock::new();
    HELD.get_or_init(|| {
        std::env::var(HOLD_AFTER_CALL)
            .ok()
            .filter(|v| !v.is_empty())
    })
    .as_deref()
}

/// Says on stderr that fault injection is on, if it is: it must never go unnoticed.
pub(super) fn warn_if_set() {
    if let Some(held) = held_action() {
        eprintln!(
            "warning: {HOLD_AFTER_CALL}={held} is set: every successful result of {held} \
             will be held forever (fault injection for tests)"
        );
    }
}

/// Never returns if `plugin/action` is the held action; returns at once otherwise.
pub(super) async fn hold_after_call(plugin: &str, action: &str, step: &str) {
    let Some(held) = held_action() else {
        return;
    };
    if held.split_once('/') == Some((plugin, action)) {
        eprintln!(
            "fault injection: holding the result of {plugin}/{action} for {step} \
             ({HOLD_AFTER_CALL})"
        );
        std::future::pending::<()>().await;
    }
}
