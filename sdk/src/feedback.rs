//! Past human corrections of this plugin's outputs, for few-shot learning.
//! **Connectors only**: the rule world does not import `feedback`.
//!
//! ```no_run
//! for c in baton_sdk::feedback::corrections("extract-invoice", 5) {
//!     // c.input produced c.original; a person said it should have been c.corrected
//! }
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One correction a person made to this plugin's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Correction {
    /// The input the plugin saw.
    pub input: Value,
    /// What the plugin returned.
    pub original: Value,
    /// What a person said it should have returned.
    pub corrected: Value,
    /// Who made the correction.
    pub actor: String,
    /// When, in Unix milliseconds.
    pub created_at: u64,
}

/// The most recent corrections for `action`, newest first, at most `limit`.
///
/// Each JSON field is parsed; text that is not valid JSON becomes a JSON string.
pub fn corrections(action: &str, limit: u32) -> Vec<Correction> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wit::feedback::corrections(action, limit)
        .into_iter()
        .map(|c| Correction {
            input: parse(c.input),
            original: parse(c.original),
            corrected: parse(c.corrected),
            actor: c.actor,
            created_at: c.created_at,
        })
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (action, limit);
        Vec::new()
    }
}

#[cfg(target_arch = "wasm32")]
fn parse(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
