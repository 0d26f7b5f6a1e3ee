//! `baton run ...`, `baton event ...` and `baton worker`: runs on the local data
//! directory, through the engine.

use super::remote::{Body, Remote, query, segment};
use super::{DataDir, block_on, local_actor, print, read_input, read_json};
use anyhow::{Context, Result, bail};
use baton::engine::state::{InboxMessage, RunRecord, RunStatus, RunView};
use baton::engine::{Engine, Recovery, StartRun};
use clap::{Args, Subcommand};
use serde_json::json;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Start a run of a workflow.
    Start(StartArgs),
    /// Show a run: status, and each step with attempts, input, output or failure, timing.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List runs, newest first.
    List {
        #[arg(long)]
        status: Option<RunStatus>,
        #[arg(long)]
        workflow: Option<String>,
        /// Business key.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run: open steps stop, nothing else starts.
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pause a run: running calls finish, nothing new starts until `resume`.
    Pause { id: String },
    /// Resume a paused run.
    Resume { id: String },
    /// Run a failed or escalated step again (with the same idempotency key, unless
    /// the input is replaced).
    Retry {
        id: String,
        /// The step's path, as `run show` prints it.
        step: String,
        /// Replacement input JSON (`@FILE`, `-` for stdin).
        #[arg(long)]
        input: Option<String>,
    },
    /// Complete an escalated step by hand: with `--output JSON`, or `--skip` it.
    Resolve {
        id: String,
        step: String,
        #[arg(long, conflicts_with = "skip", required_unless_present = "skip")]
        output: Option<String>,
        #[arg(long)]
        skip: bool,
    },
    /// Abandon the open steps and continue from a top-level step.
    Restart {
        id: String,
        step: String,
        /// Replacement input JSON for that step.
        #[arg(long)]
        input: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Workflow name.
    workflow: String,
    /// Input JSON (`@FILE`, `-` for stdin).
    #[arg(long, default_value = "{}", conflicts_with = "inputs")]
    input: String,
    /// Start one run per line of this JSON Lines file.
    #[arg(long, value_name = "FILE.jsonl")]
    inputs: Option<String>,
    /// Workflow version [default: the newest].
    #[arg(long)]
    version: Option<u32>,
    /// Business key [default: from the workflow's `key` expression].
    #[arg(long)]
    key: Option<String>,
    /// A key already used for this workflow returns that run instead of starting one.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Run it now and wait until it finishes or waits (for a person, an event, a timer).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum EventCommand {
    /// Deliver an event to the runs waiting for NAME with business key KEY (or keep it
    /// until one waits).
    Send {
        name: String,
        #[arg(long)]
        key: String,
        /// Payload JSON (`--data` is the data directory).
        #[arg(long, default_value = "null", value_name = "JSON")]
        payload: String,
    },
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Keep running (waiting for timers) instead of stopping when no run has work left.
    #[arg(long)]
    forever: bool,
}

pub fn run(data: &DataDir, command: RunCommand) -> Result<()> {
    if let Some(remote) = data.remote()? {
        return over_http(&remote, command);
    }
    block_on(async {
        let engine = data.engine(Recovery::OnDemand)?;
        match command {
            RunCommand::Start(args) => start(&engine, args).await,
            RunCommand::Show { id, json } => {
                let view = engine.run(&id)?;
                if json {
                    print::json(&view)
                } else {
                    print::run_details(&view);
                    Ok(())
                }
            }
            RunCommand::List {
                status,
                workflow,
                key,
                limit,
                json,
            } => {
                let runs = engine.runs(status, workflow.as_deref(), key.as_deref(), limit)?;
                if json {
                    print::json(&runs)
                } else {
                    print::run_table(&runs);
                    Ok(())
                }
            }
            RunCommand::Cancel { id, reason } => {
                let actor = local_actor();
                send(&engine, &id, InboxMessage::Cancel { actor, reason }).await
            }
            RunCommand::Pause { id } => {
                send(
                    &engine,
                    &id,
                    InboxMessage::Pause {
                        actor: local_actor(),
                    },
                )
                .await
            }
            RunCommand::Resume { id } => {
                send(
                    &engine,
                    &id,
                    InboxMessage::Resume {
                        actor: local_actor(),
                    },
                )
                .await
            }
            RunCommand::Retry { id, step, input } => {
                let input = input.map(|i| read_json(&i, "--input")).transpose()?;
                let message = InboxMessage::Retry {
                    path: step,
                    input,
                    actor: local_actor(),
                };
                send(&engine, &id, message).await
            }
            RunCommand::Resolve {
                id,
                step,
                output,
                skip: _,
            } => {
                let output = output.map(|o| read_json(&o, "--output")).transpose()?;
                let message = InboxMessage::Resolve {
                    path: step,
                    output,
                    actor: local_actor(),
                };
                send(&engine, &id, message).await
            }
            RunCommand::Restart { id, step, input } => {
                let input = input.map(|i| read_json(&i, "--input")).transpose()?;
                let message = InboxMessage::Restart {
                    step,
                    input,
                    actor: local_actor(),
                };
                send(&engine, &id, message).await
            }
        }
    })
}

/// The inputs of `run start`: `--input`, or one per line of `--inputs`.
fn start_inputs(args: &StartArgs) -> Result<Vec<serde_json::Value>> {
    let inputs: Vec<serde_json::Value> = match &args.inputs {
        Some(file) => {
            let text = read_input(&format!("@{file}"))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .with_context(|| format!("{file}: line {}: not valid JSON", i + 1))
                })
                .collect::<Result<_>>()?
        }
        None => vec![read_json(&args.input, "--input")?],
    };
    if inputs.len() > 1 && (args.wait || args.idempotency_key.is_some() || args.key.is_some()) {
        bail!("--wait, --key and --idempotency-key start one run; they do not go with --inputs");
    }
    Ok(inputs)
}

async fn start(engine: &Engine, args: StartArgs) -> Result<()> {
    for input in start_inputs(&args)? {
        let started = engine
            .start_run(StartRun {
                workflow: args.workflow.clone(),
                version: args.version,
                input,
                key: args.key.clone(),
                idempotency_key: args.idempotency_key.clone(),
                actor: Some(local_actor()),
                defer: !args.wait,
            })
            .await?;
        if args.wait {
            let view = engine.wait_for(&started.run_id, args.timeout).await?;
            engine.settle(&started.run_id).await;
            if args.json {
                print::json(&view)?;
            } else {
                print::run_details(&view);
            }
            if view.run.status == RunStatus::Failed {
                std::process::exit(1);
            }
        } else if args.json {
            print::json(&started)?;
        } else if started.existing {
            println!("{} (existing run for this idempotency key)", started.run_id);
        } else {
            println!("{}", started.run_id);
        }
    }
    if !args.wait && !args.json {
        eprintln!("runs start when the engine runs: `baton worker` (or start with --wait)");
    }
    Ok(())
}

async fn send(engine: &Engine, id: &str, message: InboxMessage) -> Result<()> {
    engine.command(id, message).await?;
    settle(engine, id).await
}

/// Lets the run act on what it was sent, then prints where it stands.
async fn settle(engine: &Engine, id: &str) -> Result<()> {
    engine.settle(id).await;
    let run = engine.run(id)?;
    println!("run {} is {}", id, run.run.status);
    Ok(())
}

/// The run commands against a running server.
fn over_http(remote: &Remote, command: RunCommand) -> Result<()> {
    let steer = |id: &str, verb: &str, body: serde_json::Value| -> Result<()> {
        let path = format!("/v1/runs/{}/{verb}", segment(id));
        let view: RunView = remote.post(&path, Body::Json(&body), &[])?;
        println!("run {id} is {} ({verb} sent)", view.run.status);
        Ok(())
    };
    match command {
        RunCommand::Start(args) => {
            for input in start_inputs(&args)? {
                let wait = args.wait.then(|| {
                    let limit = args.timeout.min(Duration::from_secs(300));
                    format!("{}ms", limit.as_millis())
                });
                let path = format!(
                    "/v1/workflows/{}/runs{}",
                    segment(&args.workflow),
                    query(&[
                        ("wait", wait),
                        ("key", args.key.clone()),
                        ("version", args.version.map(|v| v.to_string())),
                    ])
                );
                let headers: Vec<(&str, &str)> = args
                    .idempotency_key
                    .as_deref()
                    .map(|k| ("Idempotency-Key", k))
                    .into_iter()
                    .collect();
                let view: RunView = remote.post(&path, Body::Json(&input), &headers)?;
                if args.json {
                    print::json(&view)?;
                } else if args.wait {
                    print::run_details(&view);
                } else {
                    println!("{}", view.run.id);
                }
                if args.wait && view.run.status == RunStatus::Failed {
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        RunCommand::Show { id, json } => {
            let view: RunView = remote.get(&format!("/v1/runs/{}", segment(&id)))?;
            if json {
                return print::json(&view);
            }
            print::run_details(&view);
            Ok(())
        }
        RunCommand::List {
            status,
            workflow,
            key,
            limit,
            json,
        } => {
            let path = format!(
                "/v1/runs{}",
                query(&[
                    ("status", status.map(|s| s.to_string())),
                    ("workflow", workflow),
                    ("key", key),
                    ("limit", Some(limit.to_string())),
                ])
            );
            let runs: Vec<RunRecord> = remote.get(&path)?;
            if json {
                return print::json(&runs);
            }
            print::run_table(&runs);
            Ok(())
        }
        RunCommand::Cancel { id, reason } => steer(&id, "cancel", json!({ "reason": reason })),
        RunCommand::Pause { id } => steer(&id, "pause", json!({})),
        RunCommand::Resume { id } => steer(&id, "resume", json!({})),
        RunCommand::Retry { id, step, input } => {
            let input = input.map(|i| read_json(&i, "--input")).transpose()?;
            steer(&id, "retry", json!({ "step": step, "input": input }))
        }
        RunCommand::Restart { id, step, input } => {
            let input = input.map(|i| read_json(&i, "--input")).transpose()?;
            steer(&id, "restart", json!({ "step": step, "input": input }))
        }
        RunCommand::Resolve {
            id,
            step,
            output,
            skip,
        } => {
            let (verb, body) = match output {
                Some(output) if !skip => (
                    "resolve",
                    json!({ "output": read_json(&output, "--output")? }),
                ),
                _ => ("skip", json!({})),
            };
            let path = format!("/v1/exceptions/{}/{}/{verb}", segment(&id), segment(&step));
            let view: RunView = remote.post(&path, Body::Json(&body), &[])?;
            println!("run {id} is {} ({verb} sent)", view.run.status);
            Ok(())
        }
    }
}

pub fn event(data: &DataDir, command: EventCommand) -> Result<()> {
    if let Some(remote) = data.remote()? {
        let EventCommand::Send { name, key, payload } = command;
        let path = format!("/v1/events/{}/{}", segment(&name), segment(&key));
        let sent: serde_json::Value =
            remote.post(&path, Body::Json(&read_json(&payload, "--payload")?), &[])?;
        for run in sent["delivered_to"].as_array().into_iter().flatten() {
            println!("delivered to run {}", run.as_str().unwrap_or_default());
        }
        if sent["buffered"] == true {
            println!(
                "no run waits for {name} with key {key} yet; the event is kept for the first that will"
            );
        }
        return Ok(());
    }
    match command {
        EventCommand::Send { name, key, payload } => block_on(async {
            let engine = data.engine(Recovery::OnDemand)?;
            let payload = read_json(&payload, "--payload")?;
            let runs = engine
                .send_event(&name, &key, payload, &local_actor())
                .await?;
            if runs.is_empty() {
                println!(
                    "no run waits for {name} with key {key} yet; the event is kept for the first that will"
                );
            }
            for run in runs {
                engine.settle(&run).await;
                println!("delivered to run {run}");
            }
            Ok(())
        }),
    }
}

pub fn worker(data: &DataDir, args: WorkerArgs) -> Result<()> {
    block_on(async {
        let engine = data.engine(Recovery::ResumeAll)?;
        if args.forever {
            std::future::pending::<()>().await;
        }
        engine.until_idle().await?;
        let mut counts = Vec::new();
        for status in RunStatus::ALL {
            let n = engine.runs(Some(status), None, None, 0)?.len();
            if n > 0 {
                counts.push(format!("{n} {status}"));
            }
        }
        println!("idle: {}", print::list_or_dash(&counts));
        Ok(())
    })
}
