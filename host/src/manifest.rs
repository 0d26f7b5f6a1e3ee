//! What a plugin says about itself: the plain data every layer shares.
//!
//! The runtime produces a [`PluginManifest`] from a component's `describe()` export, the
//! registry validates it and the store persists it. No layer logic lives here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which WIT world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// `baton:plugin/connector`: talks to the outside world.
    Connector,
    /// `baton:plugin/rule`: a deterministic decision.
    Rule,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Connector => "connector",
            PluginKind::Rule => "rule",
        })
    }
}

/// One action of a connector, or one rule of a rule plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema the input must satisfy.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the output (for rules: of the decision's context, informational).
    pub output_schema: serde_json::Value,
    /// Rules only: the outcome labels `evaluate` may return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<String>,
}

/// Capabilities a plugin requests in `describe()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capabilities {
    /// Host patterns for outbound HTTP (see `runtime::HostPattern`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Names of secrets it reads.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A plugin's self-description, as returned by `describe()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub actions: Vec<ActionSpec>,
    pub capabilities: Capabilities,
}

impl PluginManifest {
    /// The action called `name`, if the plugin has one.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// `name@version`, the way people refer to one installed version.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A small valid connector manifest for unit tests.
#[cfg(test)]
pub fn sample_manifest() -> PluginManifest {
    PluginManifest {
        name: "erp".into(),
        version: "1.0.0".into(),
        kind: PluginKind::Connector,
        description: String::new(),
        actions: vec![ActionSpec {
            name: "get".into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: serde_json::json!({}),
            outcomes: vec![],
        }],
        capabilities: Capabilities {
            hosts: vec!["erp.example.com".into()],
            secrets: vec!["token".into()],
        },
    }
}
