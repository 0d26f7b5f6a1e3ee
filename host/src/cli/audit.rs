//! `baton audit ...`: check the event logs.

use super::{DataDir, print};
use anyhow::Result;
use baton::engine::audit;
use baton::store::Store;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute every run's hash chain; report the first broken link (exit status 1).
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(data: &DataDir, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { json } => {
            let store = Store::open(&super::database_path(&data.data))?;
            let report = audit::verify(&store)?;
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
    }
}
