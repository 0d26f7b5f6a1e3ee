//! Human-readable output of the CLI.

use anyhow::Result;
use baton::engine::duration::format_ms;
use baton::engine::state::{RunRecord, RunView, StepStatus, WorkflowRecord};
use baton::registry::{CallReport, PluginView};
use baton::store::Signer;
use serde::Serialize;
use std::time::Duration;

pub fn json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn signer(signer: &Signer) -> String {
    match signer {
        Signer::Key { name, .. } => name.clone(),
        Signer::Unsigned => "unsigned".into(),
    }
}

fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

pub fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

pub fn plugin_table(plugins: &[PluginView]) {
    if plugins.is_empty() {
        println!("no plugins installed (install one with `baton plugin install FILE.wasm`)");
        return;
    }
    println!(
        "{:<20} {:<10} {:<10} {:<20} {:<12} PENDING GRANTS",
        "NAME", "VERSION", "KIND", "DIGEST", "SIGNER"
    );
    for p in plugins {
        let m = &p.record.manifest;
        let mut pending: Vec<String> = p
            .pending_hosts
            .iter()
            .map(|h| format!("host {h}"))
            .collect();
        pending.extend(p.pending_secrets.iter().map(|s| format!("secret {s}")));
        println!(
            "{:<20} {:<10} {:<10} {:<20} {:<12} {}",
            m.name,
            m.version,
            m.kind.to_string(),
            short_digest(&p.record.digest),
            signer(&p.record.signer),
            list_or_dash(&pending)
        );
    }
}

pub fn plugin_details(p: &PluginView) {
    let r = &p.record;
    let m = &r.manifest;
    println!("{} ({})", m.id(), m.kind);
    if !m.description.is_empty() {
        println!("  {}", m.description);
    }
    println!("  digest:    {}", r.digest);
    println!("  size:      {} KiB", r.size_bytes.div_ceil(1024));
    match &r.signer {
        Signer::Key { name, public_key } => println!("  signer:    {name} ({public_key})"),
        Signer::Unsigned => {
            println!("  signer:    unsigned (installed because allow_unsigned is set)")
        }
    }
    println!("  capabilities:");
    println!(
        "    hosts    requested: {:<30} granted: {}",
        list_or_dash(&m.capabilities.hosts),
        list_or_dash(&p.granted_hosts)
    );
    println!(
        "    secrets  requested: {:<30} granted: {}",
        list_or_dash(&m.capabilities.secrets),
        list_or_dash(&p.granted_secrets)
    );
    if !p.config.is_empty() {
        println!("  config:");
        for (k, v) in &p.config {
            println!("    {k} = {v}");
        }
    }
    pending(p);
    println!("  actions:");
    for a in &m.actions {
        println!("    {}: {}", a.name, a.description);
        if !a.outcomes.is_empty() {
            println!("      outcomes: {}", a.outcomes.join(", "));
        }
        println!("      input:  {}", a.input_schema);
        println!("      output: {}", a.output_schema);
    }
}

/// Capabilities requested but not granted yet, with the command that grants them.
pub fn pending(p: &PluginView) {
    let name = &p.record.manifest.name;
    for host in &p.pending_hosts {
        let hint = if host == "*" {
            "HOST".to_owned()
        } else {
            host.clone()
        };
        println!(
            "  pending: host {host} is requested but not granted (`baton plugin grant {name} --host {hint}`)"
        );
    }
    for secret in &p.pending_secrets {
        println!(
            "  pending: secret {secret} is requested but not set (`baton plugin grant {name} --secret {secret}=VALUE`)"
        );
    }
}

pub fn call_report(report: &CallReport, total: Duration) {
    match &report.result {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string_pretty(output).unwrap_or_default()
            );
        }
        Err(f) => {
            let retry = if f.retryable {
                "retryable"
            } else {
                "not retryable"
            };
            eprintln!("failed: {} ({retry}): {}", f.code, f.message);
            if let Some(details) = &f.details {
                eprintln!("details: {details}");
            }
        }
    }
    for line in &report.logs {
        eprintln!(
            "log {:>5} +{}us {}",
            format!("{:?}", line.level).to_lowercase(),
            line.at_us,
            line.message
        );
    }
    for (name, text) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in text.lines() {
            eprintln!("{name}: {line}");
        }
    }
    for denial in &report.denied {
        eprintln!("denied: {denial}");
    }
    let fuel = report
        .fuel_used
        .map(|f| format!(", fuel {f}"))
        .unwrap_or_default();
    eprintln!(
        "{} {} in {:.3} ms (total with load {:.1} ms{fuel})",
        report.plugin,
        report.action,
        report.duration.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0
    );
}

pub fn workflow_table(workflows: &[WorkflowRecord]) {
    if workflows.is_empty() {
        println!("no workflows applied (apply one with `baton workflow apply FILE`)");
        return;
    }
    println!("{:<28} {:<8} {:<26} FILE", "NAME", "VERSION", "APPLIED");
    for w in workflows {
        println!(
            "{:<28} {:<8} {:<26} {}",
            w.name,
            w.version,
            format_ms(w.applied_at_ms),
            w.file
        );
    }
}

pub fn run_table(runs: &[RunRecord]) {
    if runs.is_empty() {
        println!("no runs match");
        return;
    }
    println!(
        "{:<27} {:<24} {:<20} {:<10} STARTED",
        "ID", "WORKFLOW", "KEY", "STATUS"
    );
    for r in runs {
        println!(
            "{:<27} {:<24} {:<20} {:<10} {}",
            r.id,
            format!("{}@{}", r.workflow, r.version),
            r.key.as_deref().unwrap_or("-"),
            r.status.as_str(),
            format_ms(r.created_ms)
        );
    }
}

/// JSON on one line, cut to `max` characters.
fn brief(value: &serde_json::Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        text
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

fn took(from: u64, to: Option<u64>) -> String {
    to.map_or("-".into(), |to| format!("{} ms", to.saturating_sub(from)))
}

pub fn run_details(view: &RunView) {
    let r = &view.run;
    println!("run       {}", r.id);
    println!("workflow  {}@{}", r.workflow, r.version);
    if let Some(key) = &r.key {
        println!("key       {key}");
    }
    println!("status    {}", r.status);
    println!(
        "started   {} (took {})",
        format_ms(r.created_ms),
        took(r.created_ms, r.finished_ms)
    );
    println!("input     {}", brief(&r.input, 200));
    if let Some(output) = &r.output {
        println!("output    {}", brief(output, 200));
    }
    if let Some(f) = &r.failure {
        let at = f
            .step
            .as_deref()
            .map(|s| format!(" at step {s}"))
            .unwrap_or_default();
        println!("failure   {}{at}: {}", f.code, f.message);
    }
    println!();
    println!(
        "{:<32} {:<9} {:<10} {:<9} TOOK",
        "STEP", "KIND", "STATUS", "ATTEMPTS"
    );
    for step in &view.steps {
        let s = &step.record;
        let status = format!("{:?}", s.status).to_lowercase();
        println!(
            "{:<32} {:<9} {:<10} {:<9} {}",
            step.path,
            s.kind,
            status,
            s.attempts.len(),
            took(s.scheduled_ms, s.finished_ms)
        );
        if let Some(input) = &s.input {
            println!("    input   {}", brief(input, 160));
        }
        for a in &s.attempts {
            if let Some(f) = &a.failure {
                println!("    attempt {}: {} {}", a.number, f.code, f.message);
            }
        }
        if let Some(output) = &s.output {
            println!("    output  {}", brief(output, 160));
        }
        match s.status {
            StepStatus::Waiting => {
                if let Some(e) = &s.event {
                    println!("    waits for event {} (key {})", e.name, e.key);
                } else if let Some(at) = s.wake_at_ms {
                    println!("    waits until {}", format_ms(at));
                } else {
                    println!("    waits for a person");
                }
            }
            StepStatus::Escalated => println!("    in the exception queue"),
            StepStatus::Retrying => {
                if let Some(at) = s.wake_at_ms {
                    println!("    next attempt at {}", format_ms(at));
                }
            }
            _ => {}
        }
    }
}
