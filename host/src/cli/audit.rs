//! `baton audit ...`: check and export the hash-chained logs.

use super::remote::query;
use super::{DataDir, print};
use anyhow::Result;
use baton::engine::audit::{self, AuditReport, BrokenLink};
use baton::store::{Store, StoredEvent};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute every hash chain; report the first broken link (exit status 1).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Print log entries as JSON Lines (each with its run id and hash).
    Export {
        /// Only this run's log (`system`: the log of admin actions).
        #[arg(long)]
        run: Option<String>,
    },
}

pub fn run(data: &DataDir, command: AuditCommand) -> Result<()> {
    let remote = data.remote()?;
    match command {
        AuditCommand::Verify { json } => {
            let report: AuditReport = match &remote {
                Some(remote) => {
                    let answer: serde_json::Value = remote.get("/v1/audit/verify")?;
                    AuditReport {
                        runs: answer["runs"].as_u64().unwrap_or(0) as usize,
                        events: answer["events"].as_u64().unwrap_or(0) as usize,
                        broken: serde_json::from_value::<Option<BrokenLink>>(
                            answer["broken"].clone(),
                        )?,
                    }
                }
                None => audit::verify(&Store::open(&super::database_path(&data.data))?)?,
            };
            if json {
                print::json(&report)?;
            } else {
                match &report.broken {
                    None => println!(
                        "ok: {} runs, {} events, every chain intact",
                        report.runs, report.events
                    ),
                    Some(link) => println!(
                        "BROKEN: run {} at event {}: {}",
                        link.run, link.seq, link.problem
                    ),
                }
            }
            if report.broken.is_some() {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCommand::Export { run } => {
            let mut out = std::io::stdout().lock();
            if let Some(remote) = &remote {
                let path = format!("/v1/audit/export{}", query(&[("run", run)]));
                out.write_all(remote.text(&path)?.as_bytes())?;
                return Ok(());
            }
            let store = Store::open(&super::database_path(&data.data))?;
            let mut write = |log: &str, events: Vec<StoredEvent>| -> Result<()> {
                for entry in events.iter().filter_map(|e| audit::entry(log, e)) {
                    writeln!(out, "{entry}")?;
                }
                Ok(())
            };
            match run {
                Some(run) => write(&run, store.run_events(&run)?.0)?,
                None => {
                    store.each_event_log(|log, events, _| write(log, events))?;
                }
            }
            Ok(())
        }
    }
}
