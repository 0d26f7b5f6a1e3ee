//! The `baton` CLI, pointed at the demo's server with one token. Each command is
//! printed before it runs, so the demo's output shows how to do the same by hand.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `baton --server URL --token-file FILE ...`.
#[derive(Clone)]
pub struct Cli {
    bin: PathBuf,
    server: String,
    token_file: PathBuf,
}

impl Cli {
    pub fn new(bin: &Path, server: &str, token_file: &Path) -> Cli {
        Cli {
            bin: bin.to_owned(),
            server: server.to_owned(),
            token_file: token_file.to_owned(),
        }
    }

    /// The same CLI with another person's token.
    pub fn as_token_file(&self, token_file: &Path) -> Cli {
        Cli {
            token_file: token_file.to_owned(),
            ..self.clone()
        }
    }

    /// The token file the commands use.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// Runs `baton ARGS`, printing the command; returns its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        println!("   $ baton {}", shown(args));
        self.output(args)
    }

    /// Runs `baton ARGS` without printing the command; returns its stdout.
    pub fn quiet(&self, args: &[&str]) -> Result<String> {
        self.output(args)
    }

    /// Runs `baton ARGS --json` without printing the command; returns the JSON.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.output(&all)?;
        serde_json::from_str(&text)
            .with_context(|| format!("`baton {}` did not print JSON: {text}", shown(args)))
    }

    fn output(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("--server")
            .arg(&self.server)
            .arg("--token-file")
            .arg(&self.token_file)
            .args(args)
            .env_remove("BATON_TOKEN")
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "`baton {}` failed: {}",
                shown(args),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The arguments as a person would type them: paths inside the workspace relative to
/// it, long values shortened, secret values hidden.
fn shown(args: &[&str]) -> String {
    let root = format!("{}/", crate::compile::workspace_root().display());
    args.iter()
        .map(|arg| {
            let arg = arg.strip_prefix(root.as_str()).unwrap_or(arg);
            let arg = match arg.split_once('=') {
                Some((name, _)) if name.ends_with("key") && !arg.starts_with("--") => {
                    format!("{name}=…")
                }
                _ => arg.to_owned(),
            };
            if arg.chars().count() > 72 {
                format!("'{}…'", arg.chars().take(48).collect::<String>())
            } else if arg.contains([' ', '"', '{']) {
                format!("'{arg}'")
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
