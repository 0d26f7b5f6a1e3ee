//! `baton task ...` and `baton exception ...`: the work people do, on a server
//! (`--server`) or on the local data directory.

use super::remote::{Body, Remote, segment};
use super::{DataDir, block_on, local_actor, local_person, print, read_json};
use anyhow::Result;
use baton::engine::state::{InboxMessage, StepStatus};
use baton::engine::task::Decision;
use baton::engine::{Engine, EngineError, Recovery};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// The human tasks you could decide now (`--all`: every waiting task).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Take a task, so nobody else decides it while you work on it.
    Claim { run: String, step: String },
    /// Give a claimed task back.
    Unclaim { run: String, step: String },
    /// Decide a task.
    Complete {
        run: String,
        step: String,
        outcome: String,
        /// The form's data, JSON (`@FILE`, `-` for stdin; `--data` is the data directory).
        #[arg(long = "form", value_name = "JSON")]
        form: Option<String>,
        #[arg(long)]
        comment: Option<String>,
        /// For a review: the reviewed output as corrected, JSON.
        #[arg(long)]
        output: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExceptionCommand {
    /// Steps waiting in the exception queue, with their failure.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run the step again, optionally with edited input.
    Retry {
        run: String,
        step: String,
        #[arg(long)]
        input: Option<String>,
    },
    /// Supply the step's output by hand.
    Resolve {
        run: String,
        step: String,
        #[arg(long)]
        output: String,
    },
    /// Complete the step with a `null` output.
    Skip { run: String, step: String },
    /// Cancel the run.
    Abort {
        run: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

pub fn task(data: &DataDir, command: TaskCommand) -> Result<()> {
    if let Some(remote) = data.remote()? {
        return match command {
            TaskCommand::List { all, json } => {
                let path = if all {
                    "/v1/tasks?all=true"
                } else {
                    "/v1/tasks"
                };
                print_tasks(&remote.get(path)?, json)
            }
            TaskCommand::Claim { run, step } => act(&remote, &run, &step, "claim", json!({})),
            TaskCommand::Unclaim { run, step } => act(&remote, &run, &step, "unclaim", json!({})),
            TaskCommand::Complete {
                run,
                step,
                outcome,
                form,
                comment,
                output,
            } => {
                let decision = decision(outcome, form, comment, output)?;
                act(
                    &remote,
                    &run,
                    &step,
                    "complete",
                    serde_json::to_value(decision)?,
                )
            }
        };
    }
    block_on(async {
        let engine = data.engine(Recovery::OnDemand)?;
        match command {
            TaskCommand::List { all, json } => {
                let person = local_person();
                let tasks = engine.tasks((!all).then_some(&person))?;
                print_tasks(&serde_json::to_value(tasks)?, json)
            }
            TaskCommand::Claim { run, step } => {
                engine.claim(&run, &step, local_person(), true).await?;
                settled(&engine, &run).await
            }
            TaskCommand::Unclaim { run, step } => {
                engine.claim(&run, &step, local_person(), false).await?;
                settled(&engine, &run).await
            }
            TaskCommand::Complete {
                run,
                step,
                outcome,
                form,
                comment,
                output,
            } => {
                let decision = decision(outcome, form, comment, output)?;
                engine.decide(&run, &step, local_person(), decision).await?;
                settled(&engine, &run).await
            }
        }
    })
}

pub fn exception(data: &DataDir, command: ExceptionCommand) -> Result<()> {
    if let Some(remote) = data.remote()? {
        let on = |run: &str, step: &str, verb: &str, body: Value| {
            let path = format!("/v1/exceptions/{}/{}/{verb}", segment(run), segment(step));
            sent(&remote.post(&path, Body::Json(&body), &[])?, verb)
        };
        return match command {
            ExceptionCommand::List { json } => {
                print_exceptions(&remote.get("/v1/exceptions")?, json)
            }
            ExceptionCommand::Retry { run, step, input } => {
                let input = input.map(|i| read_json(&i, "--input")).transpose()?;
                on(&run, &step, "retry", json!({ "input": input }))
            }
            ExceptionCommand::Resolve { run, step, output } => on(
                &run,
                &step,
                "resolve",
                json!({ "output": read_json(&output, "--output")? }),
            ),
            ExceptionCommand::Skip { run, step } => on(&run, &step, "skip", json!({})),
            ExceptionCommand::Abort { run, reason } => {
                let path = format!("/v1/runs/{}/cancel", segment(&run));
                sent(
                    &remote.post(&path, Body::Json(&json!({ "reason": reason })), &[])?,
                    "abort",
                )
            }
        };
    }
    block_on(async {
        let engine = data.engine(Recovery::OnDemand)?;
        let actor = local_actor();
        let (run, message) = match command {
            ExceptionCommand::List { json } => {
                return print_exceptions(&serde_json::to_value(engine.exceptions()?)?, json);
            }
            ExceptionCommand::Retry { run, step, input } => {
                escalated(&engine, &run, &step)?;
                let input = input.map(|i| read_json(&i, "--input")).transpose()?;
                (
                    run,
                    InboxMessage::Retry {
                        path: step,
                        input,
                        actor,
                    },
                )
            }
            ExceptionCommand::Resolve { run, step, output } => {
                escalated(&engine, &run, &step)?;
                let output = Some(read_json(&output, "--output")?);
                (
                    run,
                    InboxMessage::Resolve {
                        path: step,
                        output,
                        actor,
                    },
                )
            }
            ExceptionCommand::Skip { run, step } => {
                escalated(&engine, &run, &step)?;
                (
                    run,
                    InboxMessage::Resolve {
                        path: step,
                        output: None,
                        actor,
                    },
                )
            }
            ExceptionCommand::Abort { run, reason } => {
                (run, InboxMessage::Cancel { actor, reason })
            }
        };
        engine.command(&run, message).await?;
        settled(&engine, &run).await
    })
}

/// Refuses, before anything is stored, to act on a step that is not in the queue.
fn escalated(engine: &Engine, run: &str, step: &str) -> Result<(), EngineError> {
    let view = engine.run(run)?;
    if view
        .steps
        .iter()
        .any(|s| s.path == step && s.record.status == StepStatus::Escalated)
    {
        return Ok(());
    }
    Err(EngineError::Conflict(format!(
        "step {step} of run {run} is not in the exception queue"
    )))
}

fn decision(
    outcome: String,
    form: Option<String>,
    comment: Option<String>,
    output: Option<String>,
) -> Result<Decision> {
    Ok(Decision {
        outcome,
        data: form
            .map(|d| read_json(&d, "--form"))
            .transpose()?
            .unwrap_or_default(),
        comment,
        output: output.map(|o| read_json(&o, "--output")).transpose()?,
    })
}

fn act(remote: &Remote, run: &str, step: &str, verb: &str, body: Value) -> Result<()> {
    let path = format!("/v1/tasks/{}/{}/{verb}", segment(run), segment(step));
    sent(&remote.post(&path, Body::Json(&body), &[])?, verb)
}

fn sent(run: &Value, verb: &str) -> Result<()> {
    println!(
        "{verb} sent; run {} is {}",
        text(&run["id"]),
        text(&run["status"])
    );
    Ok(())
}

async fn settled(engine: &Engine, run: &str) -> Result<()> {
    engine.settle(run).await;
    println!("run {run} is {}", engine.run(run)?.run.status);
    Ok(())
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn print_tasks(tasks: &Value, json: bool) -> Result<()> {
    if json {
        return print::json(tasks);
    }
    let tasks = tasks.as_array().map(Vec::as_slice).unwrap_or_default();
    if tasks.is_empty() {
        println!("no tasks");
    }
    for t in tasks {
        let mut notes = Vec::new();
        if let Some(holder) = t["claimed_by"].as_str() {
            notes.push(format!("claimed by {holder}"));
        }
        if t["approvals"].as_u64().unwrap_or(1) > 1 {
            let votes = t["votes"].as_array().map_or(0, Vec::len);
            notes.push(format!("{votes} of {} approvals", t["approvals"]));
        }
        if t["escalated"] == true {
            notes.push("escalated".into());
        }
        println!(
            "{}  {:<14} {}  [{}]  {}",
            text(&t["run_id"]),
            text(&t["path"]),
            text(&t["title"]),
            t["outcomes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect::<Vec<_>>()
                .join("|"),
            notes.join(", ")
        );
    }
    Ok(())
}

fn print_exceptions(queue: &Value, json: bool) -> Result<()> {
    if json {
        return print::json(queue);
    }
    let queue = queue.as_array().map(Vec::as_slice).unwrap_or_default();
    if queue.is_empty() {
        println!("the exception queue is empty");
    }
    for e in queue {
        println!(
            "{}  {:<14} {}: {}",
            text(&e["run_id"]),
            text(&e["path"]),
            text(&e["failure"]["code"]),
            text(&e["failure"]["message"]),
        );
    }
    Ok(())
}
