//! Checking what a plugin's `describe()` returned before it is installed.

use super::RegistryError;
use super::schema;
use crate::manifest::{PluginKind, PluginManifest};
use crate::runtime::HostPattern;

/// What is wrong with a plugin name, if anything.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| format!("name `{name}` must be 1-64 characters of a-z, 0-9 and `-`"))
}

/// Checks what `describe()` returned; every problem is listed, not just the first.
pub fn validate_manifest(manifest: &PluginManifest) -> Result<(), RegistryError> {
    let mut problems = Vec::new();
    if let Some(problem) = name_problem(&manifest.name) {
        problems.push(problem);
    }
    if let Err(e) = semver::Version::parse(&manifest.version) {
        problems.push(format!(
            "version `{}` is not a semantic version like 1.2.3 ({e})",
            manifest.version
        ));
    }
    if manifest.actions.is_empty() {
        problems.push("it declares no actions".into());
    }
    let mut seen = std::collections::HashSet::new();
    for action in &manifest.actions {
        if action.name.is_empty() {
            problems.push("an action has an empty name".into());
        }
        if !seen.insert(&action.name) {
            problems.push(format!("action {} is declared twice", action.name));
        }
        for (field, value) in [
            ("input_schema", &action.input_schema),
            ("output_schema", &action.output_schema),
        ] {
            if let Err(e) = schema::compile(value) {
                problems.push(format!(
                    "action {}: {field} is not a valid JSON Schema: {e}",
                    action.name
                ));
            }
        }
        if manifest.kind == PluginKind::Rule && action.outcomes.is_empty() {
            problems.push(format!("rule {} declares no outcomes", action.name));
        }
    }
    for host in &manifest.capabilities.hosts {
        if let Err(e) = HostPattern::parse(host) {
            problems.push(format!("capabilities.hosts: {e}"));
        }
    }
    if manifest.kind == PluginKind::Rule && !manifest.capabilities.hosts.is_empty() {
        problems.push("a rule cannot request network hosts".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::InvalidManifest {
            plugin: manifest.id(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::sample_manifest as manifest;

    #[test]
    fn manifest_problems_are_all_listed() {
        let mut m = manifest();
        m.name = "ERP!".into();
        m.version = "one".into();
        m.actions[0].input_schema = serde_json::json!({"type": 12});
        m.capabilities.hosts.push("http://x".into());
        let err = validate_manifest(&m).unwrap_err().to_string();
        for needle in [
            "name `ERP!`",
            "version `one`",
            "action get: input_schema",
            "not a URL",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
        assert!(validate_manifest(&manifest()).is_ok());
    }
}
