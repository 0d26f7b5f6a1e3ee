//! Getting the server ready: the demo publisher key, the trust config, signed plugins,
//! their grants, and tokens for the people of the demo. Every step is idempotent.

use crate::cli::Cli;
use crate::processes::{STANDIN_API_KEY, StandIns};
use anyhow::{Context, Result, bail};
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

/// Signs each component with the demo key and installs it over HTTP (installing the
/// same bytes again changes nothing).
pub fn install_plugins(
    admin: &Cli,
    plugins: &[(String, PathBuf)],
    key: &PublisherKey,
) -> Result<()> {
    for (_, wasm) in plugins {
        let wasm = wasm.to_string_lossy();
        let sig = format!("{wasm}.sig");
        let key_file = key.secret.to_string_lossy();
        admin.run(&["plugin", "sign", "--key", &key_file, &wasm, "--out", &sig])?;
        admin.run(&["plugin", "install", &wasm, "--sig", &sig])?;
    }
    Ok(())
}

/// Grants each connector its stand-in's host, the API key and its configuration. The
/// stand-ins' ports change between runs, so hosts granted by an earlier run are revoked.
pub fn grant_plugins(admin: &Cli, standins: &StandIns) -> Result<()> {
    let key = format!("api-key={STANDIN_API_KEY}");
    let mail_key = format!("mail-api-key={STANDIN_API_KEY}");
    let grants: [(&str, &str, Vec<String>); 4] = [
        (
            "ai-extract",
            &standins.llm,
            vec![
                key.clone(),
                format!("base_url={}", standins.llm),
                "model=demo-extract".into(),
            ],
        ),
        (
            "erp",
            &standins.erp,
            vec![key.clone(), format!("base_url={}", standins.erp)],
        ),
        (
            "payments",
            &standins.payments,
            vec![key.clone(), format!("base_url={}", standins.payments)],
        ),
        (
            "notify",
            &standins.sink,
            vec![
                mail_key,
                format!("chat_webhook_url={}/chat/accounts-payable", standins.sink),
                format!("mail_base_url={}/mail", standins.sink),
                "mail_from=accounts-payable@example.com".into(),
            ],
        ),
    ];
    for (plugin, url, settings) in grants {
        let host = host_of(url)?;
        let shown = admin.json(&["plugin", "show", plugin])?;
        let mut args = vec!["plugin", "grant", plugin, "--host", host];
        let stale: Vec<String> = shown["granted_hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str())
            .filter(|h| *h != host)
            .map(str::to_owned)
            .collect();
        for old in &stale {
            args.extend(["--revoke-host", old]);
        }
        for setting in &settings {
            let flag = if setting.starts_with("api-key=") || setting.starts_with("mail-api-key=") {
                "--secret"
            } else {
                "--config-value"
            };
            args.extend([flag, setting]);
        }
        admin.run(&args)?;
    }
    Ok(())
}

/// `HOST:PORT` of an `http://HOST:PORT/...` URL.
fn host_of(url: &str) -> Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("stand-in URL {url} is not http://"))?;
    Ok(rest.split('/').next().unwrap_or(rest))
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
