//! What a plugin version may use: grant changes, and the intersection of what it
//! requests with what the admin granted.

use super::RegistryError;
use crate::manifest::PluginManifest;
use crate::runtime::{FeedbackSource, Grants, HostPattern, HostPolicy, Limits};
use crate::store::{GrantRecord, LimitSettings};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Changes to a plugin's grant. Secret values go straight to their own table.
#[derive(Clone, Debug, Default)]
pub struct GrantChange {
    pub add_hosts: Vec<String>,
    pub remove_hosts: Vec<String>,
    pub set_secrets: Vec<(String, String)>,
    pub remove_secrets: Vec<String>,
    pub set_config: Vec<(String, serde_json::Value)>,
    pub remove_config: Vec<String>,
}

impl GrantChange {
    /// Whether the change changes nothing.
    pub fn is_empty(&self) -> bool {
        self.add_hosts.is_empty()
            && self.remove_hosts.is_empty()
            && self.set_secrets.is_empty()
            && self.remove_secrets.is_empty()
            && self.set_config.is_empty()
            && self.remove_config.is_empty()
    }

    /// The change as the audit log records it: secret names, never their values.
    pub fn summary(&self) -> serde_json::Value {
        let names = |pairs: &[(String, _)]| -> Vec<String> {
            pairs.iter().map(|(name, _)| name.clone()).collect()
        };
        let mut out = serde_json::Map::new();
        for (field, list) in [
            ("add_hosts", self.add_hosts.clone()),
            ("remove_hosts", self.remove_hosts.clone()),
            ("set_secrets", names(&self.set_secrets)),
            ("remove_secrets", self.remove_secrets.clone()),
            (
                "set_config",
                self.set_config.iter().map(|(k, _)| k.clone()).collect(),
            ),
            ("remove_config", self.remove_config.clone()),
        ] {
            if !list.is_empty() {
                out.insert(field.into(), list.into());
            }
        }
        out.into()
    }

    /// Applies the host and config parts of the change (secrets live in their own table).
    pub(super) fn apply_to(&self, grant: &mut GrantRecord) {
        for host in &self.add_hosts {
            let host = host.trim().to_ascii_lowercase();
            if !grant.hosts.contains(&host) {
                grant.hosts.push(host);
            }
        }
        grant
            .hosts
            .retain(|h| !self.remove_hosts.iter().any(|r| r.eq_ignore_ascii_case(h)));
        for (key, value) in &self.set_config {
            grant.config.insert(key.clone(), value.clone());
        }
        for key in &self.remove_config {
            grant.config.remove(key);
        }
    }

    pub(super) fn validate(&self, plugin: &str) -> Result<(), RegistryError> {
        for host in self.add_hosts.iter().chain(&self.remove_hosts) {
            HostPattern::parse(host).map_err(|e| RegistryError::InvalidGrant {
                plugin: plugin.to_owned(),
                reason: e.to_string(),
            })?;
        }
        for (name, _) in &self.set_secrets {
            if name.is_empty() {
                return Err(RegistryError::InvalidGrant {
                    plugin: plugin.to_owned(),
                    reason: "a secret needs a name: use NAME=VALUE".into(),
                });
            }
        }
        Ok(())
    }
}

/// Whether the admin has granted anything under a requested host pattern: the exact
/// pattern, a pattern that matches it, or (for `*` and `*.domain`) some host inside it.
pub(super) fn grant_addresses(requested: &str, granted: &[String]) -> bool {
    fn host_part(pattern: &str) -> &str {
        match pattern.rsplit_once(':') {
            Some((host, _)) => host,
            None => pattern,
        }
    }
    let wanted = host_part(requested);
    granted.iter().any(|g| {
        let given = host_part(g);
        // Ports aside: the same host, or one pattern's host falls inside the other's.
        requested == "*"
            || g == "*"
            || given == wanted
            || HostPattern::parse(wanted)
                .is_ok_and(|p| p.matches(given.trim_start_matches("*."), 443))
            || HostPattern::parse(given).is_ok_and(|p| p.matches(wanted, 443))
    })
}

/// Builds the grants of one call from what a plugin requested and what it was granted.
/// Shared by installed plugins and local `plugin invoke FILE.wasm`.
pub fn resolve_grants(
    manifest: &PluginManifest,
    granted_hosts: &[String],
    mut secrets: BTreeMap<String, String>,
    config: BTreeMap<String, serde_json::Value>,
    feedback: Option<Arc<dyn FeedbackSource>>,
) -> Grants {
    let parse = |hosts: &[String]| {
        hosts
            .iter()
            .filter_map(|h| HostPattern::parse(h).ok())
            .collect()
    };
    secrets.retain(|name, _| manifest.capabilities.secrets.contains(name));
    Grants {
        plugin: manifest.id(),
        plugin_name: manifest.name.clone(),
        hosts: Arc::new(HostPolicy {
            requested: parse(&manifest.capabilities.hosts),
            granted: parse(granted_hosts),
            closed: false,
        }),
        secrets,
        config: config
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        feedback,
    }
}

/// Fills unset limits with the built-in defaults.
pub fn resolve_limits(settings: &LimitSettings) -> Limits {
    // Clamp to sane ceilings so a typo cannot wrap to zero or overflow a deadline.
    const MAX_MEMORY_MB: u64 = 4096;
    const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
    const MAX_PAYLOAD_KB: u64 = 1 << 20;
    let d = Limits::default();
    let kb = |v: Option<u64>, default: usize| {
        v.map_or(default, |kb| (kb.min(MAX_PAYLOAD_KB) as usize) << 10)
    };
    Limits {
        memory_bytes: settings
            .memory_mb
            .map_or(d.memory_bytes, |mb| (mb.min(MAX_MEMORY_MB) as usize) << 20),
        timeout: settings.timeout_ms.map_or(d.timeout, |ms| {
            Duration::from_millis(ms.min(MAX_TIMEOUT_MS))
        }),
        fuel: settings.fuel.unwrap_or(d.fuel),
        max_input_bytes: kb(settings.max_input_kb, d.max_input_bytes),
        max_output_bytes: kb(settings.max_output_kb, d.max_output_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::sample_manifest as manifest;

    #[test]
    fn grants_are_the_intersection_of_request_and_grant() {
        let secrets = BTreeMap::from([
            ("token".to_owned(), "t0ken-value".to_owned()),
            ("other".to_owned(), "not-requested".to_owned()),
        ]);
        let grants = resolve_grants(&manifest(), &["*".into()], secrets, BTreeMap::new(), None);
        assert_eq!(grants.secrets.keys().collect::<Vec<_>>(), ["token"]);
        assert!(grants.hosts.check("erp.example.com", 443).is_ok());
        assert!(grants.hosts.check("evil.example.com", 443).is_err());
    }

    #[test]
    fn limits_fill_defaults() {
        let limits = resolve_limits(&LimitSettings {
            memory_mb: Some(8),
            ..Default::default()
        });
        assert_eq!(limits.memory_bytes, 8 << 20);
        assert_eq!(limits.timeout, Limits::default().timeout);
        let absurd = resolve_limits(&LimitSettings {
            memory_mb: Some(u64::MAX),
            timeout_ms: Some(u64::MAX),
            max_input_kb: Some(u64::MAX),
            ..Default::default()
        });
        assert_eq!(absurd.memory_bytes, 4096 << 20);
        assert_eq!(absurd.timeout, Duration::from_secs(86_400));
        assert_eq!(absurd.max_input_bytes, 1 << 30);
    }

    #[test]
    fn changes_add_and_remove_hosts_and_config() {
        let mut grant = GrantRecord::default();
        GrantChange {
            add_hosts: vec!["API.example.com".into(), "api.example.com".into()],
            set_config: vec![("region".into(), serde_json::json!("eu"))],
            ..Default::default()
        }
        .apply_to(&mut grant);
        assert_eq!(grant.hosts, ["api.example.com"]);
        assert_eq!(grant.config["region"], "eu");
        GrantChange {
            remove_hosts: vec!["Api.Example.com".into()],
            remove_config: vec!["region".into()],
            ..Default::default()
        }
        .apply_to(&mut grant);
        assert!(grant.hosts.is_empty() && grant.config.is_empty());
    }
}
