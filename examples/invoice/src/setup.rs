//! Getting the server ready: the demo publisher key, the trust config, signed plugins,
//! their grants, and tokens for the people of the demo. Every step is idempotent.

use crate::cli::Cli;
use crate::processes::{STANDIN_API_KEY, StandIns, host_of};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The demo publisher's key pair.
pub struct PublisherKey {
    /// The secret key file (`baton keygen` wrote it with mode 0600).
    pub secret: PathBuf,
    /// `ed25519:…`
    pub public: String,
}

/// The demo publisher key, created by `baton keygen` on the first run.
pub fn publisher_key(baton: &Path, demo: &Path) -> Result<PublisherKey> {
    let prefix = demo.join("publisher");
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    if !secret.exists() {
        let status = Command::new(baton)
            .arg("keygen")
            .arg("--out")
            .arg(&prefix)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("`baton keygen` failed");
        }
        println!("   created the demo publisher key {}", secret.display());
    }
    let public = std::fs::read_to_string(&public)
        .with_context(|| format!("cannot read {}", public.display()))?
        .trim()
        .to_owned();
    Ok(PublisherKey { secret, public })
}

/// Writes DATA/baton.toml trusting the demo publisher, unless it exists; an existing
/// file must already trust the key.
pub fn write_config(data: &Path, key: &PublisherKey) -> Result<()> {
    let path = data.join("baton.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(&key.public) => Ok(()),
        Ok(_) => bail!(
            "{} exists but does not trust the demo publisher key; add\n\n\
             [[trusted_keys]]\nname = \"baton-demo\"\npublic_key = \"{}\"\n\nor use another --data directory",
            path.display(),
            key.public
        ),
        Err(_) => {
            let text = format!(
                "# Written by invoice-demo: trust the plugins it signs.\n\
                 [[trusted_keys]]\nname = \"baton-demo\"\npublic_key = \"{}\"\n\n\
                 [server]\n# Plugin components are uploaded over HTTP.\nmax_body_kb = 16384\n",
                key.public
            );
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
    }
}

/// Signs each component with the demo key (the signatures go to DATA/demo/signatures,
/// so demos on other data directories never swap them) and installs it over HTTP;
/// installing the same bytes again changes nothing.
pub fn install_plugins(
    admin: &Cli,
    plugins: &[(String, PathBuf)],
    key: &PublisherKey,
    demo: &Path,
) -> Result<()> {
    let signatures = demo.join("signatures");
    std::fs::create_dir_all(&signatures)?;
    let key_file = key.secret.to_string_lossy();
    for (stem, wasm) in plugins {
        let wasm = wasm.to_string_lossy();
        let sig = signatures.join(format!("{stem}.wasm.sig"));
        let sig = sig.to_string_lossy();
        admin.run(&["plugin", "sign", "--key", &key_file, &wasm, "--out", &sig])?;
        admin.run(&["plugin", "install", &wasm, "--sig", &sig])?;
    }
    Ok(())
}

/// What `grants.json` gives one plugin. String values may name the stand-ins'
/// URLs (`{erp}`, `{llm}`, `{payments}`, `{sink}`) and their API key (`{api_key}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginGrant {
    /// The system whose host the plugin may reach.
    #[serde(default)]
    host_of: Option<String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// Grants each plugin what `grants.json` says, with the stand-ins' URLs filled in. Hosts
/// granted by an earlier demo whose stand-ins listened elsewhere are revoked.
pub fn grant_plugins(admin: &Cli, standins: &StandIns, example: &Path) -> Result<()> {
    let path = example.join("grants.json");
    let grants: BTreeMap<String, PluginGrant> =
        serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not a map of plugin grants", path.display()))?;
    let fill = |text: &str| {
        standins.urls().iter().fold(
            text.replace("{api_key}", STANDIN_API_KEY),
            |text, (system, url)| text.replace(&format!("{{{system}}}"), url),
        )
    };
    for (plugin, grant) in &grants {
        let Some(system) = &grant.host_of else {
            continue;
        };
        let url = standins
            .urls()
            .into_iter()
            .find(|(name, _)| name == system)
            .map(|(_, url)| url)
            .with_context(|| {
                format!("{}: {plugin}: no stand-in named `{system}`", path.display())
            })?;
        let host =
            host_of(url).with_context(|| format!("stand-in URL {url} is not http://HOST:PORT"))?;
        let shown = admin.json(&["plugin", "show", plugin])?;
        let mut args: Vec<String> = ["plugin", "grant", plugin, "--host", host]
            .map(String::from)
            .into();
        for old in shown["granted_hosts"].as_array().into_iter().flatten() {
            match old.as_str() {
                Some(old) if old != host => args.extend(["--revoke-host".into(), old.into()]),
                _ => {}
            }
        }
        for (name, value) in &grant.secrets {
            args.extend(["--secret".into(), format!("{name}={}", fill(value))]);
        }
        for (key, value) in &grant.config {
            let value = match value {
                Value::String(text) => Value::String(fill(text)),
                other => other.clone(),
            };
            args.extend(["--config-value".into(), format!("{key}={value}")]);
        }
        admin.run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    Ok(())
}

/// The people of the demo and their roles. `intake` submits invoices; alice checks
/// readings and mismatches; maria and omar approve large invoices.
const PEOPLE: &[(&str, &str)] = &[
    ("intake", "trigger"),
    ("alice", "operator"),
    ("maria", "operator"),
    ("omar", "operator"),
];

/// Creates a token for each person who has none yet; returns the folder of token files.
pub fn people(admin: &Cli, demo: &Path) -> Result<PathBuf> {
    let dir = demo.join("people");
    std::fs::create_dir_all(&dir)?;
    for (user, role) in PEOPLE {
        let file = dir.join(format!("{user}.token"));
        if file.exists() {
            continue;
        }
        let created = admin.json(&["token", "create", "--user", user, "--role", role])?;
        let token = created["token"]
            .as_str()
            .context("`baton token create --json` printed no token")?;
        write_private(&file, token)?;
        println!("   {user} ({role}): {}", file.display());
    }
    Ok(dir)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{text}")?;
    Ok(())
}
