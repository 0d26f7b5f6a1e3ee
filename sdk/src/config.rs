//! Values the admin set for this plugin, and the secrets granted to it.
//! **Connectors only**: the rule world does not import `config`.
//!
//! ```no_run
//! let base = baton_sdk::config::get("base_url")
//!     .and_then(|v| v.as_str().map(String::from))
//!     .unwrap_or_else(|| "https://erp.example.com".into());
//! let key = baton_sdk::config::secret("api-key"); // None unless requested and granted
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Failure;

/// The admin-set configuration value for `key`, if any.
///
/// Values are JSON; a value that is not valid JSON is returned as a JSON string.
pub fn get(key: &str) -> Option<Value> {
    let raw = raw_get(key)?;
    Some(serde_json::from_str(&raw).unwrap_or(Value::String(raw)))
}

/// The configuration value for `key` parsed as `T`; `Ok(None)` if it is not set, and a
/// failure with code `invalid_config` (not retryable) if it does not fit `T`.
pub fn get_as<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Failure> {
    match get(key) {
        None => Ok(None),
        Some(value) => serde_json::from_value(value).map(Some).map_err(|e| {
            Failure::new(
                "invalid_config",
                format!("configuration value `{key}` is invalid: {e}"),
            )
        }),
    }
}

/// The secret `name`, if the plugin requested it in `describe` and the admin granted it.
///
/// The host redacts granted secret values from logs, outputs and failures; still, never
/// return or log them.
pub fn secret(name: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wit::config::secret(name);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = name;
        None
    }
}

fn raw_get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::wit::config::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}
