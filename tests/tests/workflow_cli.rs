//! The workflow and run commands of the real binary on a data directory: apply, start,
//! show, list, idempotent starts, audit verification of a tampered database, and
//! refusal of a database from a newer Baton.

use baton_tests::{baton_fails, baton_ok, plugin_wasm, run_baton};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let cli = Cli {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(cli.data()).unwrap();
        std::fs::write(cli.data().join("baton.toml"), "allow_unsigned = true\n").unwrap();
        cli
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        run_baton(&self.data(), self.dir.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        baton_ok(&self.data(), self.dir.path(), args).0
    }

    fn fails(&self, args: &[&str]) -> String {
        let (stdout, stderr) = baton_fails(&self.data(), self.dir.path(), args);
        stdout + &stderr
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn with_echo_workflow(&self) {
        self.ok(&["plugin", "install", plugin_wasm("echo").to_str().unwrap()]);
        let file = self.write(
            "greet.yaml",
            "name: greet\nkey: .input.id\nsteps:\n  - id: hello\n    call: echo/echo\n    input: { message: '\"hi \" + .input.id' }\n",
        );
        self.ok(&["workflow", "apply", &file]);
    }
}

fn db(path: &Path) -> redb::Database {
    redb::Database::open(path.join("baton.redb")).unwrap()
}

#[test]
fn apply_refuses_a_bad_definition_with_file_line_step_and_field() {
    let cli = Cli::new();
    cli.ok(&["plugin", "install", plugin_wasm("echo").to_str().unwrap()]);
    let file = cli.write(
        "bad.yaml",
        "name: bad\nsteps:\n  - id: a\n    call: echo/echo\n    input: { message: .input }\n    next: nowhere\n",
    );
    let err = cli.fails(&["workflow", "apply", &file]);
    assert!(err.contains("bad.yaml: the definition is invalid"), "{err}");
    assert!(
        err.contains("line 6: step `a`: field `next`: unknown step `nowhere`"),
        "{err}"
    );
    assert!(
        cli.ok(&["workflow", "list"])
            .contains("no workflows applied")
    );

    let syntax = cli.write(
        "syntax.yaml",
        "name: bad\nsteps:\n  - id: a\n    call: [echo\n",
    );
    let err = cli.fails(&["workflow", "apply", &syntax]);
    assert!(
        err.contains("syntax.yaml") && err.contains("line "),
        "{err}"
    );
}

#[test]
fn runs_start_show_and_list_and_reuse_an_idempotency_key() {
    let cli = Cli::new();
    cli.with_echo_workflow();
    let file = cli.dir.path().join("greet.yaml");
    assert!(
        cli.ok(&["workflow", "apply", file.to_str().unwrap()])
            .starts_with("unchanged: greet version 1")
    );

    let shown = cli.ok(&[
        "run",
        "start",
        "greet",
        "--input",
        r#"{"id":"A-1"}"#,
        "--wait",
    ]);
    assert!(shown.contains("status    succeeded"), "{shown}");
    assert!(
        shown.contains(r#"output    {"message":"hi A-1"}"#),
        "{shown}"
    );

    let first = cli.ok(&[
        "run",
        "start",
        "greet",
        "--input",
        r#"{"id":"B-2"}"#,
        "--idempotency-key",
        "k1",
    ]);
    let again = cli.ok(&[
        "run",
        "start",
        "greet",
        "--input",
        r#"{"id":"C-3"}"#,
        "--idempotency-key",
        "k1",
    ]);
    let id = first.trim();
    assert!(
        again.starts_with(id) && again.contains("existing run"),
        "{first} / {again}"
    );

    // The deferred run is driven by a worker.
    assert!(cli.ok(&["worker"]).contains("2 succeeded"));
    let view: Value = serde_json::from_str(&cli.ok(&["run", "show", id, "--json"])).unwrap();
    assert_eq!(view["status"], "succeeded");
    assert_eq!(view["steps"][0]["path"], "hello");
    assert_eq!(view["steps"][0]["attempts"][0]["number"], 1);
    assert_eq!(view["output"]["message"], "hi B-2");

    let by_key: Vec<Value> =
        serde_json::from_str(&cli.ok(&["run", "list", "--key", "B-2", "--json"])).unwrap();
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0]["id"], id);
    let listed = cli.ok(&[
        "run",
        "list",
        "--status",
        "succeeded",
        "--workflow",
        "greet",
    ]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let err = cli.fails(&["run", "list", "--status", "done"]);
    assert!(err.contains("`done` is not a run status"), "{err}");
    let err = cli.fails(&["run", "start", "greet", "--input", "{oops"]);
    assert!(err.contains("--input is not valid JSON"), "{err}");
}

/// The run log table (host/src/store/tables.rs): a transition's events are one entry
/// keyed `E` ++ the first event's seq, each event as its length (u32) ++ hash ++ JSON.
const LOG: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("run_log");

/// The seq and JSON of each event in a run log entry; `None` for other entries.
fn events_in(key: &[u8], value: &[u8]) -> Option<Vec<(u64, String)>> {
    let [b'E', first @ ..] = key else {
        return None;
    };
    let mut seq = u64::from_be_bytes(first.try_into().ok()?);
    let (mut rest, mut events) = (value, Vec::new());
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        events.push((
            seq,
            String::from_utf8_lossy(&tail[32..32 + len]).into_owned(),
        ));
        (rest, seq) = (&tail[32 + len..], seq + 1);
    }
    Some(events)
}

#[test]
fn audit_verify_finds_an_edited_or_deleted_event() {
    let cli = Cli::new();
    cli.with_echo_workflow();
    cli.ok(&[
        "run",
        "start",
        "greet",
        "--input",
        r#"{"id":"A-1"}"#,
        "--wait",
    ]);
    cli.ok(&[
        "run",
        "start",
        "greet",
        "--input",
        r#"{"id":"A-2"}"#,
        "--wait",
    ]);
    assert!(cli.ok(&["audit", "verify"]).starts_with("ok: 2 runs"));

    // Someone with the database file edits what a step returned.
    let (run, row, seq, original) = {
        let db = db(&cli.data());
        let txn = db.begin_write().unwrap();
        let target = {
            let mut table = txn.open_table(LOG).unwrap();
            let (key, value) = table
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .find_map(|(k, v)| {
                    let (seq, _) = events_in(k.value().1, v.value())?
                        .into_iter()
                        .find(|(_, json)| json.contains("hi A-1"))?;
                    Some((
                        (k.value().0.to_owned(), k.value().1.to_vec(), seq),
                        v.value().to_vec(),
                    ))
                })
                .unwrap();
            // Byte for byte: the entry's lengths and hashes are not text.
            let at = value.windows(6).position(|w| w == b"hi A-1").unwrap();
            let mut edited = value.clone();
            edited[at + 5] = b'9';
            table
                .insert((key.0.as_str(), key.1.as_slice()), edited.as_slice())
                .unwrap();
            (key.0, key.1, key.2, value)
        };
        txn.commit().unwrap();
        target
    };
    let out = cli.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("BROKEN: run {run} at event {seq}")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("edited"), "{text}");

    // Deleting the other run's last transition's events is found too.
    let other = {
        let db = db(&cli.data());
        let txn = db.begin_write().unwrap();
        let other = {
            let mut table = txn.open_table(LOG).unwrap();
            // Undo the edit, so only the deletion remains.
            table
                .insert((run.as_str(), row.as_slice()), original.as_slice())
                .unwrap();
            let last = table
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|(k, v)| k.value().0 != run && events_in(k.value().1, v.value()).is_some())
                .map(|(k, _)| (k.value().0.to_owned(), k.value().1.to_vec()))
                .last()
                .unwrap();
            table.remove((last.0.as_str(), last.1.as_slice())).unwrap();
            last.0
        };
        txn.commit().unwrap();
        other
    };
    let json: Value =
        serde_json::from_slice(&cli.run(&["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(json["broken"]["run"], other.as_str(), "{json}");
    assert!(
        json["broken"]["problem"]
            .as_str()
            .unwrap()
            .contains("cut off"),
        "{json}"
    );
}

/// Rewrites the format version stored in the database, as another build would have.
fn set_format_version(cli: &Cli, version: u32) {
    let db = db(&cli.data());
    let txn = db.begin_write().unwrap();
    let meta: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    txn.open_table(meta)
        .unwrap()
        .insert("format_version", version.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
    assert!(db.begin_read().unwrap().open_table(LOG).is_ok());
}

#[test]
fn a_database_from_a_newer_baton_is_refused() {
    let cli = Cli::new();
    cli.with_echo_workflow();
    set_format_version(&cli, 99);
    let err = cli.fails(&["run", "list"]);
    assert!(
        err.contains("written by a newer Baton (format version 99)"),
        "{err}"
    );
    assert!(err.contains("reads format version 2"), "{err}");
}

#[test]
fn a_database_from_an_older_development_build_is_refused() {
    let cli = Cli::new();
    cli.with_echo_workflow();
    set_format_version(&cli, 1);
    let err = cli.fails(&["run", "list"]);
    assert!(err.contains("format version 1"), "{err}");
    assert!(err.contains("not migrated"), "{err}");
}

#[test]
fn a_data_directory_in_use_is_named_as_such() {
    let cli = Cli::new();
    cli.with_echo_workflow();
    let _held = db(&cli.data());
    let err = cli.fails(&["run", "list"]);
    assert!(err.contains("in use by another baton process"), "{err}");
}
