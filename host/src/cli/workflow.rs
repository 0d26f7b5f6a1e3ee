//! `baton workflow ...`: apply and list definitions.

use super::remote::{Body, Remote, query, segment};
use super::{DataDir, block_on, print, record};
use anyhow::{Context, Result};
use baton::engine::state::WorkflowRecord;
use baton::engine::{Applied, Engine, Recovery};
use clap::Subcommand;
use std::path::{Path, PathBuf};

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

/// The workflow operations, on the data directory or on a server.
enum Workflows {
    Local(Engine),
    Remote(Remote),
}

impl Workflows {
    fn apply(&self, file: &Path, source: &str) -> Result<Applied> {
        let name = file.display().to_string();
        match self {
            Workflows::Local(engine) => {
                let applied = engine.apply(&name, source)?;
                if applied.created {
                    let target = format!("{}@{}", applied.name, applied.version);
                    record(engine.store(), "workflow_applied", &target, None)?;
                }
                Ok(applied)
            }
            Workflows::Remote(remote) => {
                let file_name = file.file_name().map(|f| f.to_string_lossy().into_owned());
                remote.post(
                    &format!("/v1/workflows{}", query(&[("file", file_name)])),
                    Body::Bytes(source.as_bytes(), "application/yaml"),
                    &[],
                )
            }
        }
    }

    fn latest(&self) -> Result<Vec<WorkflowRecord>> {
        match self {
            Workflows::Local(engine) => Ok(engine.workflows()?),
            Workflows::Remote(remote) => remote.get("/v1/workflows"),
        }
    }

    fn versions(&self, name: &str) -> Result<Vec<WorkflowRecord>> {
        match self {
            Workflows::Local(engine) => Ok(engine.workflow_versions(name)?),
            Workflows::Remote(remote) => remote.get(&format!("/v1/workflows/{}", segment(name))),
        }
    }
}

pub fn run(data: &DataDir, command: WorkflowCommand) -> Result<()> {
    block_on(async {
        let workflows = match data.remote()? {
            Some(remote) => Workflows::Remote(remote),
            None => Workflows::Local(data.engine(Recovery::OnDemand)?),
        };
        match command {
            WorkflowCommand::Apply { file, json } => {
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let applied = workflows.apply(&file, &source)?;
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
                let latest = workflows.latest()?;
                if json {
                    return print::json(&latest);
                }
                print::workflow_table(&latest);
                Ok(())
            }
            WorkflowCommand::Show {
                name,
                version,
                json,
            } => {
                let versions = workflows.versions(&name)?;
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
