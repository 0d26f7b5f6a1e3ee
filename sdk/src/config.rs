//! Values the admin set for this plugin, and the secrets granted to it.
//! **Connectors only**: the rule world does not import `config`.
//!
//! ```no_run
//! let base = baton_sdk::config::get("base_url")
//!     .and_then(|v| v.as_str().map(String::from))
//!     .unwrap_or_else(|| "https://erp.example.com".into());
//! let key = baton_sdk::config::secret("api-key"); // None unless requested and granted
//!
//! // Or, for values the connector cannot work without, a failure naming what is missing:
//! # fn f() -> Result<(), baton_sdk::Failure> {
//! let base = baton_sdk::config::require_str("base_url")?; // `invalid_config`
//! let key = baton_sdk::config::require_secret("api-key")?; // `secret_not_granted`
//! # Ok(()) }
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

/// The configuration value for `key` as a non-empty string (trimmed), for values the
/// connector cannot work without, such as a service's `base_url`.
///
/// Not set, not a string, or blank: a failure with code `invalid_config` (not
/// retryable) whose message names the key and whose details are `{"key": KEY}`.
pub fn require_str(key: &str) -> Result<String, Failure> {
    required_str(key, get(key))
}

fn required_str(key: &str, value: Option<Value>) -> Result<String, Failure> {
    let why = match value {
        Some(Value::String(text)) if !text.trim().is_empty() => {
            return Ok(text.trim().to_string());
        }
        Some(Value::String(_)) => "is empty",
        Some(_) => "must be a string",
        None => "is not set",
    };
    Err(Failure::new(
        "invalid_config",
        format!(
            "configuration value `{key}` {why}; an admin sets it with \
             `baton plugin grant PLUGIN --config-value {key}=VALUE`"
        ),
    )
    .with_details(serde_json::json!({ "key": key })))
}

/// The secret `name`, or a failure with code `secret_not_granted` (not retryable,
/// details `{"secret": NAME}`) if it was not requested or not granted.
pub fn require_secret(name: &str) -> Result<String, Failure> {
    secret(name).ok_or_else(|| {
        Failure::new(
            "secret_not_granted",
            format!(
                "secret `{name}` is not granted to this plugin; an admin grants it with \
                 `baton plugin grant PLUGIN --secret {name}=VALUE`"
            ),
        )
        .with_details(serde_json::json!({ "secret": name }))
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_strings_name_the_missing_key() {
        assert_eq!(
            required_str("base_url", Some(json!(" http://x/ "))).unwrap(),
            "http://x/"
        );
        for (value, why) in [
            (None, "is not set"),
            (Some(json!("  ")), "is empty"),
            (Some(json!(42)), "must be a string"),
        ] {
            let f = required_str("base_url", value).unwrap_err();
            assert_eq!(f.code, "invalid_config");
            assert!(!f.retryable);
            assert!(
                f.message.contains("`base_url`") && f.message.contains(why),
                "{f}"
            );
            assert_eq!(f.details, Some(json!({ "key": "base_url" })));
        }
        // Outside a component nothing is configured or granted.
        assert_eq!(require_str("base_url").unwrap_err().code, "invalid_config");
        let f = require_secret("api-key").unwrap_err();
        assert_eq!(f.code, "secret_not_granted");
        assert_eq!(f.details, Some(json!({ "secret": "api-key" })));
    }
}
