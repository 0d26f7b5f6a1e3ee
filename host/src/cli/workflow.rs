//! `baton workflow ...`: apply and list definitions.

use super::{DataDir, block_on, print, record};
use anyhow::{Context, Result};
use baton::engine::Recovery;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Check a definition (YAML, or JSON for .json files) and store it as a new version.
    Apply {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List workflows with their newest version.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show every version of one workflow, or one version's definition.
    Show {
        name: String,
        /// Print this version's definition as applied.
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(data: &DataDir, command: WorkflowCommand) -> Result<()> {
    block_on(async {
        let engine = data.engine(Recovery::OnDemand)?;
        match command {
            WorkflowCommand::Apply { file, json } => {
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let applied = engine.apply(&file.display().to_string(), &source)?;
                if applied.created {
                    let target = format!("{}@{}", applied.name, applied.version);
                    record(engine.store(), "workflow_applied", &target, None)?;
                }
                if json {
                    return print::json(&applied);
                }
                let what = if applied.created {
                    "applied"
                } else {
                    "unchanged:"
                };
                println!(
                    "{what} {} version {} ({} steps; plugins: {})",
                    applied.name,
                    applied.version,
                    applied.steps,
                    print::list_or_dash(&applied.plugins)
                );
                Ok(())
            }
            WorkflowCommand::List { json } => {
                let workflows = engine.workflows()?;
                if json {
                    return print::json(&workflows);
                }
                print::workflow_table(&workflows);
                Ok(())
            }
            WorkflowCommand::Show {
                name,
                version,
                json,
            } => {
                let versions = engine.workflow_versions(&name)?;
                match version {
                    Some(v) => {
                        let record =
                            versions.iter().find(|r| r.version == v).with_context(|| {
                                format!(
                                    "workflow {name} has no version {v} (1 to {})",
                                    versions.len()
                                )
                            })?;
                        if json {
                            return print::json(record);
                        }
                        print!("{}", record.source);
                    }
                    None if json => return print::json(&versions),
                    None => print::workflow_table(&versions),
                }
                Ok(())
            }
        }
    })
}
