//! `baton plugin ...`: thin wrappers over the registry.

use super::remote::{Body, Remote, query, segment};
use super::{DataDir, block_on, keys, print, read_input, record, runtime};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use baton::registry::{self, GrantChange, InstallRequest, PluginRef, PluginView};
use baton::runtime::CallContext;
use baton::store::LimitSettings;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Verify, compile and install a plugin component.
    Install(InstallArgs),
    /// List installed plugin versions.
    List(JsonFlag),
    /// Show one plugin version: actions, schemas, capabilities, digest, signer.
    Show {
        /// NAME or NAME@VERSION (newest version if omitted).
        plugin: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove one version (NAME@VERSION) or every version (NAME).
    Remove { plugin: String },
    /// Grant or revoke hosts, secrets and config values (for every version of NAME).
    Grant(GrantArgs),
    /// Write a detached signature for a component.
    Sign(keys::SignArgs),
    /// Run one action of an installed plugin or of a local .wasm file.
    Invoke(InvokeArgs),
    /// Create a plugin crate (connector or rule) that builds and passes its tests.
    New(super::scaffold::NewArgs),
}

#[derive(Args, Debug)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Capabilities given on the command line.
#[derive(Args, Debug, Default)]
pub struct GrantFlags {
    /// Allow outbound HTTP to HOST (`api.example.com` = ports 80/443, `host:8443`, `host:*`, `*.example.com`).
    #[arg(long = "grant-host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Give the plugin a secret, NAME=VALUE.
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = parse_pair)]
    secrets: Vec<(String, String)>,
    /// Set a config value, KEY=JSON (a bare word is taken as a string).
    #[arg(long = "config-value", value_name = "KEY=JSON", value_parser = parse_pair)]
    config_values: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// Detached signature [default: FILE.sig if it exists].
    #[arg(long)]
    sig: Option<PathBuf>,
    #[command(flatten)]
    grants: GrantFlags,
    /// Memory limit for this version, MiB.
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Wall-clock deadline per call for this version, ms.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Fuel per call (rules only).
    #[arg(long)]
    fuel: Option<u64>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Args, Debug)]
pub struct GrantArgs {
    /// Plugin name.
    plugin: String,
    /// Allow outbound HTTP to HOST.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Withdraw a host grant.
    #[arg(long = "revoke-host", value_name = "HOST")]
    revoke_hosts: Vec<String>,
    /// Set a secret, NAME=VALUE.
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = parse_pair)]
    secrets: Vec<(String, String)>,
    /// Delete a secret.
    #[arg(long = "revoke-secret", value_name = "NAME")]
    revoke_secrets: Vec<String>,
    /// Set a config value, KEY=JSON.
    #[arg(long = "config-value", value_name = "KEY=JSON", value_parser = parse_pair)]
    config_values: Vec<(String, String)>,
    /// Remove a config value.
    #[arg(long = "unset-config", value_name = "KEY")]
    unset_config: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// A local component (path to a .wasm) or an installed NAME[@VERSION].
    plugin: String,
    /// The action (or rule) to run.
    action: String,
    /// Input JSON; `@FILE` reads it from a file, `-` from stdin.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Capabilities for a local component (installed plugins use their grants).
    #[command(flatten)]
    grants: GrantFlags,
    /// Idempotency key to pass in the call context.
    #[arg(long, default_value = "local-invoke")]
    idempotency_key: String,
    #[command(flatten)]
    json: JsonFlag,
}

pub fn run(data: &DataDir, command: PluginCommand) -> Result<()> {
    let managed = !matches!(
        command,
        PluginCommand::Sign(_) | PluginCommand::Invoke(_) | PluginCommand::New(_)
    );
    if managed && let Some(remote) = data.remote()? {
        return over_http(&remote, command);
    }
    match command {
        PluginCommand::Install(args) => install(data, args),
        PluginCommand::List(json) => {
            let plugins = data.registry()?.list()?;
            if json.json {
                print::json(&plugins)
            } else {
                print::plugin_table(&plugins);
                Ok(())
            }
        }
        PluginCommand::Show { plugin, json } => {
            let view = data.registry()?.show(&plugin.parse()?)?;
            if json.json {
                print::json(&view)
            } else {
                print::plugin_details(&view);
                Ok(())
            }
        }
        PluginCommand::Remove { plugin } => {
            let registry = data.registry()?;
            let removed = registry.remove(&plugin.parse()?)?;
            for r in removed {
                record(
                    registry.store(),
                    "plugin_removed",
                    &r.manifest.id(),
                    Some(r.digest.clone().into()),
                )?;
                println!("removed {} ({})", r.manifest.id(), r.digest);
            }
            Ok(())
        }
        PluginCommand::Grant(args) => grant(data, args),
        PluginCommand::Sign(args) => keys::sign(args),
        PluginCommand::Invoke(args) => invoke(data, args),
        PluginCommand::New(args) => super::scaffold::new(args),
    }
}

/// The component and its signature (`--sig`, or `FILE.sig` next to it).
fn read_component(args: &InstallArgs) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let component = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let sig_path = args.sig.clone().or_else(|| {
        let default = PathBuf::from(format!("{}.sig", args.file.display()));
        default.exists().then_some(default)
    });
    let signature = sig_path
        .map(|p| {
            std::fs::read(&p).with_context(|| format!("cannot read signature {}", p.display()))
        })
        .transpose()?;
    Ok((component, signature))
}

/// What `install --grant-host/--secret/--config-value` grants.
fn install_grant(flags: &GrantFlags) -> GrantChange {
    GrantChange {
        add_hosts: flags.hosts.clone(),
        set_secrets: flags.secrets.clone(),
        set_config: parse_config(flags.config_values.clone()),
        ..Default::default()
    }
}

/// What `plugin grant` changes.
fn grant_change(args: &GrantArgs) -> GrantChange {
    GrantChange {
        add_hosts: args.hosts.clone(),
        remove_hosts: args.revoke_hosts.clone(),
        set_secrets: args.secrets.clone(),
        remove_secrets: args.revoke_secrets.clone(),
        set_config: parse_config(args.config_values.clone()),
        remove_config: args.unset_config.clone(),
    }
}

fn install(data: &DataDir, args: InstallArgs) -> Result<()> {
    let (component, signature) = read_component(&args)?;
    let request = InstallRequest {
        component,
        signature,
        grant: install_grant(&args.grants),
        limits: LimitSettings {
            memory_mb: args.memory_mb,
            timeout_ms: args.timeout_ms,
            fuel: args.fuel,
            ..Default::default()
        },
    };
    let registry = data.registry()?;
    let summary = request.grant.summary();
    let report = block_on(registry.install(request))
        .with_context(|| format!("cannot install {}", args.file.display()))?;
    if report.newly_installed {
        let detail = serde_json::json!({"digest": report.plugin.record.digest, "grant": summary});
        record(
            registry.store(),
            "plugin_installed",
            &report.plugin.record.manifest.id(),
            Some(detail),
        )?;
    }
    if args.json.json {
        return print::json(&report);
    }
    print_installed(
        &report.plugin,
        report.newly_installed,
        report.compile_time.as_secs_f64() * 1000.0,
    );
    Ok(())
}

fn print_installed(plugin: &PluginView, newly: bool, compile_ms: f64) {
    let verb = if newly {
        "installed"
    } else {
        "already installed"
    };
    println!(
        "{verb} {} ({}, compiled in {compile_ms:.0} ms)",
        plugin.record.manifest.id(),
        plugin.record.digest,
    );
    print::pending(plugin);
}

fn print_granted(name: &str, views: &[PluginView]) {
    if let Some(view) = views.last() {
        println!(
            "granted to {name}: hosts [{}], secrets [{}]",
            view.granted_hosts.join(", "),
            view.granted_secrets.join(", ")
        );
        print::pending(view);
    }
}

/// The grant request body of the HTTP API.
fn grant_body(change: &GrantChange) -> serde_json::Value {
    serde_json::json!({
        "add_hosts": change.add_hosts,
        "remove_hosts": change.remove_hosts,
        "set_secrets": change.set_secrets.iter().cloned().collect::<BTreeMap<_, _>>(),
        "remove_secrets": change.remove_secrets,
        "set_config": change.set_config.iter().cloned().collect::<BTreeMap<_, _>>(),
        "remove_config": change.remove_config,
    })
}

/// The plugin commands against a running server.
fn over_http(remote: &Remote, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Install(args) => {
            let (component, signature) = read_component(&args)?;
            let signature = signature.map(|s| base64::engine::general_purpose::STANDARD.encode(s));
            let headers: Vec<(&str, &str)> = signature
                .as_deref()
                .map(|s| ("Baton-Signature", s))
                .into_iter()
                .collect();
            let path = format!(
                "/v1/plugins{}",
                query(&[
                    ("memory_mb", args.memory_mb.map(|v| v.to_string())),
                    ("timeout_ms", args.timeout_ms.map(|v| v.to_string())),
                    ("fuel", args.fuel.map(|v| v.to_string())),
                ])
            );
            let report: serde_json::Value = remote
                .post(&path, Body::Bytes(&component, "application/wasm"), &headers)
                .with_context(|| format!("cannot install {}", args.file.display()))?;
            let mut view: PluginView = serde_json::from_value(report["plugin"].clone())?;
            let change = install_grant(&args.grants);
            if !change.is_empty() {
                let views: Vec<PluginView> = remote.post(
                    &format!("/v1/plugins/{}/grant", segment(&view.record.manifest.name)),
                    Body::Json(&grant_body(&change)),
                    &[],
                )?;
                view = views.into_iter().last().unwrap_or(view);
            }
            if args.json.json {
                return print::json(&report);
            }
            print_installed(
                &view,
                report["newly_installed"] == true,
                report["compile_time"].as_f64().unwrap_or(0.0),
            );
            Ok(())
        }
        PluginCommand::List(json) => {
            let plugins: Vec<PluginView> = remote.get("/v1/plugins")?;
            if json.json {
                return print::json(&plugins);
            }
            print::plugin_table(&plugins);
            Ok(())
        }
        PluginCommand::Show { plugin, json } => {
            let view: PluginView = remote.get(&format!("/v1/plugins/{}", segment(&plugin)))?;
            if json.json {
                return print::json(&view);
            }
            print::plugin_details(&view);
            Ok(())
        }
        PluginCommand::Remove { plugin } => {
            let removed: serde_json::Value =
                remote.delete(&format!("/v1/plugins/{}", segment(&plugin)))?;
            for r in removed["removed"].as_array().into_iter().flatten() {
                println!(
                    "removed {} ({})",
                    r["plugin"].as_str().unwrap_or(""),
                    r["digest"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        PluginCommand::Grant(args) => {
            let change = grant_change(&args);
            let views: Vec<PluginView> = remote.post(
                &format!("/v1/plugins/{}/grant", segment(&args.plugin)),
                Body::Json(&grant_body(&change)),
                &[],
            )?;
            print_granted(&args.plugin, &views);
            Ok(())
        }
        PluginCommand::Sign(_) | PluginCommand::Invoke(_) | PluginCommand::New(_) => {
            unreachable!("local commands")
        }
    }
}

fn grant(data: &DataDir, args: GrantArgs) -> Result<()> {
    let change = grant_change(&args);
    let registry = data.registry()?;
    let views = registry.grant(&args.plugin, &change)?;
    record(
        registry.store(),
        "plugin_granted",
        &args.plugin,
        Some(change.summary()),
    )?;
    print_granted(&args.plugin, &views);
    Ok(())
}

fn invoke(data: &DataDir, args: InvokeArgs) -> Result<()> {
    let input = read_input(&args.input)?;
    let context = CallContext {
        run_id: "local".into(),
        step_id: args.action.clone(),
        attempt: 1,
        idempotency_key: args.idempotency_key.clone(),
    };
    let started = Instant::now();
    let local = Path::new(&args.plugin);
    let report = if args.plugin.ends_with(".wasm") || local.is_file() {
        let component =
            std::fs::read(local).with_context(|| format!("cannot read {}", local.display()))?;
        for host in &args.grants.hosts {
            baton::runtime::HostPattern::parse(host)?;
        }
        let runtime = runtime()?;
        block_on(async {
            let plugin = registry::load_local(&runtime, &component).await?;
            let grants = registry::resolve_grants(
                &plugin.manifest,
                &args.grants.hosts,
                args.grants.secrets.into_iter().collect(),
                parse_config(args.grants.config_values)
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
                None,
            );
            let limits = registry::resolve_limits(&data.config()?.limits);
            anyhow::Ok(
                plugin
                    .call(Arc::new(grants), &limits, &context, &args.action, &input)
                    .await?,
            )
        })?
    } else {
        if !args.grants.hosts.is_empty()
            || !args.grants.secrets.is_empty()
            || !args.grants.config_values.is_empty()
        {
            bail!(
                "--grant-host, --secret and --config-value apply to local .wasm files; an installed \
                 plugin uses its grants (change them with `baton plugin grant {}`)",
                args.plugin
            );
        }
        let target: PluginRef = args.plugin.parse()?;
        let registry = data.registry()?;
        block_on(registry.call(&target, &args.action, &input, &context))?
    };
    let total = started.elapsed();
    if args.json.json {
        print::json(&report)?;
    } else {
        print::call_report(&report, total);
    }
    if report.result.is_err() {
        std::process::exit(1);
    }
    Ok(())
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

/// Config values are JSON; a value that is not JSON is taken as a plain string.
fn parse_config(pairs: Vec<(String, String)>) -> Vec<(String, serde_json::Value)> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
            (k, value)
        })
        .collect()
}
