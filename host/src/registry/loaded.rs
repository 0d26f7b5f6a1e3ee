//! A plugin version ready to call: prepared code, its manifest and compiled schemas.
//!
//! Both an installed plugin and a local `.wasm` under development (`baton plugin
//! invoke FILE.wasm`) are called through [`LoadedPlugin::call`], so both check input and
//! output the same way.

use super::RegistryError;
use super::schema::{self, ActionSchemas};
use crate::manifest::{PluginKind, PluginManifest};
use crate::runtime::{
    CallContext, Failure, Grants, Invocation, Limits, LogLine, PreparedPlugin,
    refuse_oversized_input,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How the native code of a loaded plugin was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadSource {
    /// Read from the artifact cache: no compilation.
    CachedArtifact,
    /// Compiled now (first load after install without cache, engine upgrade, local file).
    Compiled,
}

/// A plugin version ready to call.
pub struct LoadedPlugin {
    pub manifest: PluginManifest,
    pub digest: String,
    pub source: LoadSource,
    plugin: PreparedPlugin,
    schemas: HashMap<String, ActionSchemas>,
}

/// The outcome of calling one action, as shown to people and stored with a step.
#[derive(Clone, Debug, Serialize)]
pub struct CallReport {
    /// `name@version`.
    pub plugin: String,
    pub digest: String,
    pub action: String,
    /// The action's output (a connector's JSON; a rule's `{outcome, reasons}`), or why
    /// there is none.
    pub result: Result<serde_json::Value, Failure>,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub denied: Vec<String>,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl LoadedPlugin {
    /// Wraps prepared code; compiles every action's schemas (the manifest was validated
    /// at install, so failures here mean a corrupt record).
    pub(crate) fn new(
        manifest: PluginManifest,
        digest: String,
        plugin: PreparedPlugin,
        source: LoadSource,
    ) -> Result<LoadedPlugin, RegistryError> {
        let mut schemas = HashMap::new();
        for action in &manifest.actions {
            let compile = |field: &str, value| {
                schema::compile(value).map_err(|problem| RegistryError::InvalidManifest {
                    plugin: manifest.id(),
                    problems: vec![format!("action {}: {field}: {problem}", action.name)],
                })
            };
            schemas.insert(
                action.name.clone(),
                ActionSchemas {
                    input: compile("input_schema", &action.input_schema)?,
                    output: compile("output_schema", &action.output_schema)?,
                },
            );
        }
        Ok(LoadedPlugin {
            manifest,
            digest,
            source,
            plugin,
            schemas,
        })
    }

    /// Calls `action` with `input` (JSON text).
    ///
    /// Input that is not JSON or violates the action's schema is refused before the
    /// plugin runs (an `Err`); everything that happens once it runs is in the report.
    pub async fn call(
        &self,
        grants: Arc<Grants>,
        limits: &Limits,
        context: &CallContext,
        action: &str,
        input: &str,
    ) -> Result<CallReport, RegistryError> {
        let plugin = self.manifest.id();
        let Some(schemas) = self.schemas.get(action) else {
            return Err(RegistryError::UnknownAction {
                plugin,
                action: action.to_owned(),
                available: self
                    .manifest
                    .actions
                    .iter()
                    .map(|a| a.name.clone())
                    .collect(),
            });
        };
        // Refuse oversized input before spending time parsing it.
        if let Some(refused) = refuse_oversized_input(&grants, limits, input) {
            return Ok(self.report(action, refused));
        }
        let invalid_input = |problems| RegistryError::InvalidInput {
            plugin: plugin.clone(),
            action: action.to_owned(),
            problems,
        };
        let value = schema::parse_json(input).map_err(|p| invalid_input(vec![p]))?;
        let problems = schema::violations(&schemas.input, &value);
        if !problems.is_empty() {
            return Err(invalid_input(problems));
        }

        let call = match self.manifest.kind {
            PluginKind::Connector => self
                .plugin
                .invoke(grants, limits, context, action, input)
                .await
                .and_then(|text| self.check_output(action, &schemas.output, &text)),
            PluginKind::Rule => self
                .plugin
                .evaluate(grants, limits, action, input)
                .await
                .and_then(|decision| self.check_decision(action, decision)),
        };
        Ok(self.report(action, call))
    }

    fn report(&self, action: &str, call: Invocation<serde_json::Value>) -> CallReport {
        CallReport {
            plugin: self.manifest.id(),
            digest: self.digest.clone(),
            action: action.to_owned(),
            result: call.result,
            logs: call.logs,
            stdout: call.stdout,
            stderr: call.stderr,
            denied: call.denied,
            duration: call.duration,
            fuel_used: call.fuel_used,
        }
    }

    fn check_output(
        &self,
        action: &str,
        validator: &jsonschema::Validator,
        text: &str,
    ) -> Result<serde_json::Value, Failure> {
        let bad = |problems: Vec<String>| {
            Failure::sandbox(
                "invalid_output",
                format!(
                    "plugin {} returned output for action {action} that breaks its own output schema: {}",
                    self.manifest.id(),
                    problems.join("; ")
                ),
                false,
            )
        };
        let value = schema::parse_json(text).map_err(|p| bad(vec![p]))?;
        let problems = schema::violations(validator, &value);
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(bad(problems))
        }
    }

    fn check_decision(
        &self,
        rule: &str,
        decision: crate::runtime::Decision,
    ) -> Result<serde_json::Value, Failure> {
        let outcomes = self
            .manifest
            .action(rule)
            .map(|a| a.outcomes.as_slice())
            .unwrap_or_default();
        if !outcomes.contains(&decision.outcome) {
            return Err(Failure::sandbox(
                "invalid_decision",
                format!(
                    "rule {}/{rule} returned outcome `{}`, which is not one of its declared outcomes ({})",
                    self.manifest.id(),
                    decision.outcome,
                    outcomes.join(", ")
                ),
                false,
            ));
        }
        Ok(serde_json::to_value(decision).expect("decisions serialise"))
    }
}
