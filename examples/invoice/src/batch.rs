//! Submitting the sample batch, and reporting where each invoice stands.

use crate::cli::Cli;
use crate::processes::Server;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The workflow `workflow.yaml` defines.
const WORKFLOW: &str = "invoice-approval";
/// Steps where a person acts; a run that went through none of them went straight through.
const PEOPLE_STEPS: &[&str] = &["review-reading", "manager-approval", "mismatch-review"];

/// One entry of `batch.json`.
#[derive(Deserialize)]
struct Entry {
    invoice_id: String,
    file: String,
    submitted_by: String,
    note: String,
}

/// A submitted invoice and its run.
pub struct Submitted {
    pub invoice_id: String,
    pub run_id: String,
}

/// Starts a run per invoice of `batch.json` (or of `only`), with the invoice id as the
/// idempotency key: a second demo gets the runs the first one started.
pub fn submit(intake: &Cli, example: &Path, only: &[String]) -> Result<Vec<Submitted>> {
    let path = example.join("batch.json");
    let entries: Vec<Entry> = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not a list of invoices", path.display()))?;
    if let Some(unknown) = only
        .iter()
        .find(|id| !entries.iter().any(|e| &e.invoice_id == *id))
    {
        bail!("--invoices: {unknown} is not in {}", path.display());
    }
    let mut submitted = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| only.is_empty() || only.contains(&e.invoice_id))
    {
        let document = std::fs::read_to_string(example.join(&entry.file))
            .with_context(|| format!("cannot read {}", entry.file))?;
        let input = json!({
            "invoice_id": entry.invoice_id,
            "document": document,
            "submitted_by": entry.submitted_by,
        });
        let args = [
            "run",
            "start",
            WORKFLOW,
            "--idempotency-key",
            &entry.invoice_id,
            "--input",
            &input.to_string(),
        ];
        if submitted.is_empty() {
            println!(
                "   $ BATON_TOKEN_FILE={} baton {} --input '{{\"invoice_id\": …, \"document\": …}}'",
                intake.token_file().display(),
                args[..5].join(" ")
            );
        }
        let run = intake.json(&args)?;
        let run_id = run["id"]
            .as_str()
            .context("`run start` printed no run id")?;
        println!("   {} → run {run_id}   ({})", entry.invoice_id, entry.note);
        submitted.push(Submitted {
            invoice_id: entry.invoice_id.clone(),
            run_id: run_id.to_owned(),
        });
    }
    Ok(submitted)
}

/// Where the batch stands.
#[derive(Default)]
pub struct Summary {
    submitted: usize,
    paid_straight: Vec<String>,
    paid_after_people: Vec<String>,
    rejected: Vec<String>,
    /// invoice → task title
    waiting_for_person: Vec<(String, String)>,
    /// invoice → failure
    exceptions: Vec<(String, String)>,
    failed: Vec<(String, String)>,
    other: Vec<(String, String)>,
}

/// Waits until no submitted run is still working (they all finished, or wait for a
/// person), up to `timeout`, then sorts them.
pub fn settle(
    admin: &Cli,
    submitted: &[Submitted],
    timeout: Duration,
    server: &mut Server,
) -> Result<Summary> {
    let deadline = Instant::now() + timeout;
    let statuses = loop {
        server.check_alive()?;
        let runs = admin.json(&["run", "list", "--workflow", WORKFLOW, "--limit", "1000"])?;
        let statuses: BTreeMap<String, String> = runs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r["id"].as_str()?.to_owned(),
                    r["status"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let busy = submitted.iter().any(|s| {
            matches!(
                statuses.get(&s.run_id).map(String::as_str),
                Some("running") | None
            )
        });
        if !busy || Instant::now() >= deadline {
            break statuses;
        }
        std::thread::sleep(Duration::from_millis(300));
    };

    let tasks = admin.json(&["task", "list", "--all"])?;
    let exceptions = admin.json(&["exception", "list"])?;
    let mut summary = Summary {
        submitted: submitted.len(),
        ..Summary::default()
    };
    for s in submitted {
        let invoice = s.invoice_id.clone();
        let for_run = |list: &Value| -> Option<Value> {
            list.as_array()?
                .iter()
                .find(|item| item["run_id"] == s.run_id.as_str())
                .cloned()
        };
        match statuses
            .get(&s.run_id)
            .map(String::as_str)
            .unwrap_or("unknown")
        {
            "succeeded" => {
                let run = admin.json(&["run", "show", &s.run_id])?;
                if run["output"]["status"] == "rejected" {
                    summary.rejected.push(invoice);
                } else if went_through_people(admin, &run)? {
                    summary.paid_after_people.push(invoice);
                } else {
                    summary.paid_straight.push(invoice);
                }
            }
            "waiting" => {
                if let Some(task) = for_run(&tasks) {
                    let title = task["title"].as_str().unwrap_or("a task").to_owned();
                    summary.waiting_for_person.push((invoice, title));
                } else if let Some(exception) = for_run(&exceptions) {
                    let failure = &exception["failure"];
                    let what = format!(
                        "{}: {} ({})",
                        exception["path"].as_str().unwrap_or("?"),
                        failure["code"].as_str().unwrap_or("?"),
                        failure["message"].as_str().unwrap_or("")
                    );
                    summary.exceptions.push((invoice, what));
                } else {
                    summary.other.push((invoice, "waiting".into()));
                }
            }
            "failed" => {
                let run = admin.json(&["run", "show", &s.run_id])?;
                let message = run["failure"]["message"].as_str().unwrap_or("").to_owned();
                summary.failed.push((invoice, message));
            }
            status => summary.other.push((invoice, status.to_owned())),
        }
    }
    Ok(summary)
}

/// Whether a person acted on the run: decided one of its tasks, or fixed one of its
/// exceptions (an operator command in its log).
fn went_through_people(admin: &Cli, run: &Value) -> Result<bool> {
    let decided = run["steps"].as_array().into_iter().flatten().any(|step| {
        step["id"]
            .as_str()
            .is_some_and(|id| PEOPLE_STEPS.contains(&id))
    });
    if decided {
        return Ok(true);
    }
    let id = run["id"].as_str().context("a run without an id")?;
    let log = admin.quiet(&["audit", "export", "--run", id])?;
    Ok(log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|event| event["type"] == "operator"))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn row(f: &mut fmt::Formatter<'_>, label: &str, count: usize, ids: &str) -> fmt::Result {
            writeln!(f, "   {:<30}{count:>3}  {ids}", format!("{label}:"))
        }
        fn details(f: &mut fmt::Formatter<'_>, items: &[(String, String)]) -> fmt::Result {
            items
                .iter()
                .try_for_each(|(invoice, what)| writeln!(f, "      {invoice}: {what}"))
        }
        writeln!(f)?;
        writeln!(f, "== Summary of {} invoices", self.submitted)?;
        row(
            f,
            "paid straight through",
            self.paid_straight.len(),
            &self.paid_straight.join(", "),
        )?;
        row(
            f,
            "paid after a person acted",
            self.paid_after_people.len(),
            &self.paid_after_people.join(", "),
        )?;
        row(
            f,
            "rejected (submitter emailed)",
            self.rejected.len(),
            &self.rejected.join(", "),
        )?;
        row(f, "waiting for a person", self.waiting_for_person.len(), "")?;
        details(f, &self.waiting_for_person)?;
        row(f, "in the exception queue", self.exceptions.len(), "")?;
        details(f, &self.exceptions)?;
        row(f, "failed", self.failed.len(), "")?;
        details(f, &self.failed)?;
        if !self.other.is_empty() {
            row(f, "still working", self.other.len(), "")?;
            details(f, &self.other)?;
        }
        Ok(())
    }
}
