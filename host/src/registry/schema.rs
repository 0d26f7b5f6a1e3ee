//! JSON Schema checks of action inputs and outputs, with errors that name the field.

use jsonschema::Validator;
use serde_json::Value;

/// Compiled input and output schemas of one action.
pub(crate) struct ActionSchemas {
    pub input: Validator,
    pub output: Validator,
}

/// Compiles a schema; the error says what is wrong with it.
pub(crate) fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

/// Every way `value` violates `validator`, each as `at <json pointer>: <problem>`.
pub(crate) fn violations(validator: &Validator, value: &Value) -> Vec<String> {
    // The common case, valid input, without building an error iterator.
    if validator.is_valid(value) {
        return Vec::new();
    }
    validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("at {path}: {e}")
        })
        .collect()
}

/// Parses JSON text; the error names line and column.
pub(crate) fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}
