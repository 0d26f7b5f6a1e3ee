//! Support code for the `connector!` and `rule!` macros. Not a public API.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wit::types as wit;
use crate::{Call, Decision, Failure};

pub use wit::{CallContext, Decision as WitDecision, Failure as WitFailure};

/// The JSON Schema of `T`, as JSON text.
pub fn schema_of<T: JsonSchema>() -> String {
    schemars::schema_for!(T).as_value().to_string()
}

/// Assemble `describe`'s answer.
pub fn plugin_info(
    name: &str,
    version: &str,
    description: &str,
    actions: Vec<wit::Action>,
    hosts: &[&str],
    secrets: &[&str],
) -> wit::PluginInfo {
    wit::PluginInfo {
        name: name.into(),
        version: version.into(),
        description: description.into(),
        actions,
        capabilities: wit::Capabilities {
            hosts: hosts.iter().map(|h| (*h).into()).collect(),
            secrets: secrets.iter().map(|s| (*s).into()).collect(),
        },
    }
}

/// Describe a connector action; the schemas come from the function's types.
pub fn connector_action<I, O, F>(name: &str, description: &str, _f: F) -> wit::Action
where
    I: JsonSchema,
    O: JsonSchema,
    F: Fn(&Call, I) -> Result<O, Failure>,
{
    wit::Action {
        name: name.into(),
        description: description.into(),
        input_schema: schema_of::<I>(),
        output_schema: schema_of::<O>(),
        outcomes: Vec::new(),
    }
}

/// Describe a rule; the output schema is a decision restricted to `outcomes`.
pub fn rule_action<I, F>(name: &str, description: &str, outcomes: &[&str], _f: F) -> wit::Action
where
    I: JsonSchema,
    F: Fn(I) -> Result<Decision, Failure>,
{
    let output = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Decision",
        "type": "object",
        "properties": {
            "outcome": { "type": "string", "enum": outcomes },
            "reasons": { "type": "array", "items": { "type": "string" } },
        },
        "required": ["outcome", "reasons"],
    });
    wit::Action {
        name: name.into(),
        description: description.into(),
        input_schema: schema_of::<I>(),
        output_schema: output.to_string(),
        outcomes: outcomes.iter().map(|o| (*o).into()).collect(),
    }
}

/// Parse `input` as `I`; on failure, say where and why.
pub fn parse_input<I: DeserializeOwned>(action: &str, input: &str) -> Result<I, Failure> {
    // Fast path without path tracking; redo with it only to explain an error.
    match serde_json::from_str(input) {
        Ok(value) => Ok(value),
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(input);
            let (path, message) = match serde_path_to_error::deserialize::<_, I>(&mut de) {
                Err(e) => (e.path().to_string(), e.into_inner().to_string()),
                Ok(_) => (".".to_string(), plain.to_string()),
            };
            let message = if path == "." {
                format!("invalid input for `{action}`: {message}")
            } else {
                format!("invalid input for `{action}` at `{path}`: {message}")
            };
            Err(Failure::invalid_input(message).with_details(serde_json::json!({ "path": path })))
        }
    }
}

/// Run one connector action: parse, call, serialise.
pub fn run_action<I, O, F>(call: &Call, action: &str, input: &str, f: F) -> Result<String, Failure>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(&Call, I) -> Result<O, Failure>,
{
    let input = parse_input::<I>(action, input)?;
    let output = f(call, input)?;
    serde_json::to_string(&output).map_err(|e| {
        Failure::new(
            "invalid_output",
            format!("the output of `{action}` could not be serialised as JSON: {e}"),
        )
    })
}

/// Run one rule: parse, call, check the outcome is declared.
pub fn run_rule<I, F>(rule: &str, input: &str, outcomes: &[&str], f: F) -> Result<Decision, Failure>
where
    I: DeserializeOwned,
    F: Fn(I) -> Result<Decision, Failure>,
{
    let input = parse_input::<I>(rule, input)?;
    let decision = f(input)?;
    if outcomes.contains(&decision.outcome.as_str()) {
        Ok(decision)
    } else {
        Err(Failure::new(
            "invalid_outcome",
            format!(
                "rule `{rule}` decided `{}`, which is not one of its declared outcomes ({})",
                decision.outcome,
                outcomes.join(", ")
            ),
        )
        .with_details(serde_json::json!({ "decision": decision })))
    }
}

/// The failure for an action (or rule) the plugin does not have.
pub fn unknown_action(action: &str, known: &[&str]) -> Failure {
    Failure::new(
        "unknown_action",
        format!(
            "this plugin has no action `{action}`; it offers: {}",
            known.join(", ")
        ),
    )
    .with_details(serde_json::json!({ "action": action, "known": known }))
}
