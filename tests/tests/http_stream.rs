//! Run events as Server-Sent Events from the real `baton serve`: one run's log replayed
//! then live, in order; the global stream filtered by workflow; resuming with
//! `Last-Event-ID`; open streams do not hold up a graceful stop.

use baton_tests::http::{EventStream, Server, SseEvent};
use serde_json::json;

const SIGN: &str = "name: sign\nkey: .input.id\nsteps:\n  - id: hello\n    call: echo/echo\n    input: { message: .input.id }\n  - id: approve\n    human: { title: Sign it }\n  - id: bye\n    call: echo/echo\n    input: { message: '\"signed \" + .input.id' }\n";
const OTHER: &str =
    "name: other\nsteps:\n  - id: hello\n    call: echo/echo\n    input: { message: '\"x\"' }\n";

/// Reads until (and including) the first event of `kind`.
fn until(stream: &mut EventStream, kind: &str) -> Vec<SseEvent> {
    let mut seen = Vec::new();
    for event in stream.by_ref() {
        let done = event.event == kind;
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("the stream ended before a `{kind}` event: {seen:?}");
}

fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[test]
fn a_runs_events_stream_in_order_replayed_then_live() {
    let mut server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", SIGN).status, 201);
    assert_eq!(server.admin("POST", "/v1/workflows", OTHER).status, 201);
    let mut global = server.events("/v1/runs/events?workflow=sign", &[]);
    assert_eq!(global.status, 200);

    server.admin("POST", "/v1/workflows/other/runs?wait=5s", "{}");
    let started = server.admin("POST", "/v1/workflows/sign/runs?wait=5s", r#"{"id":"S-1"}"#);
    assert_eq!(started.json()["status"], "waiting", "{}", started.body);
    let run = started.json()["id"].as_str().unwrap().to_owned();

    // The run's stream replays its log so far...
    let mut own = server.events(&format!("/v1/runs/{run}/events"), &[]);
    assert_eq!(own.status, 200);
    let mut events = until(&mut own, "parked");
    // ...then follows it live.
    let decided = server.admin(
        "POST",
        &format!("/v1/tasks/{run}/approve/complete"),
        r#"{"outcome":"approved"}"#,
    );
    assert_eq!(decided.status, 202, "{}", decided.body);
    events.extend(until(&mut own, "run_finished"));

    assert_eq!(
        kinds(&events),
        [
            "run_started",
            "step_scheduled",
            "attempt_started",
            "step_completed",
            "step_scheduled",
            "parked",
            "decision",
            "resumed",
            "step_completed",
            "step_scheduled",
            "attempt_started",
            "step_completed",
            "run_finished",
        ]
    );
    for (seq, event) in events.iter().enumerate() {
        assert_eq!(event.id, seq.to_string(), "ids are the sequence, gap-free");
        assert_eq!(event.data["seq"], seq);
        assert_eq!(event.data["run_id"], run.as_str());
    }
    assert_eq!(events[6].data["actor"], "user:admin");
    assert_eq!(events[12].data["output"], json!({"message": "signed S-1"}));

    // The global stream saw the same events of `sign` runs only, in the same order.
    let everything = until(&mut global, "run_finished");
    assert!(everything.iter().all(|e| e.data["run_id"] == run.as_str()));
    assert_eq!(kinds(&everything), kinds(&events));
    assert_eq!(everything[0].id, format!("{run}:0"));

    // A client that reconnects resumes after the last event it saw.
    let mut resumed = server.events(&format!("/v1/runs/{run}/events"), &[("Last-Event-ID", "9")]);
    let rest = until(&mut resumed, "run_finished");
    assert_eq!(
        rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["10", "11", "12"]
    );
    let missing = server.admin("GET", "/v1/runs/01NOSUCHRUN/events", "");
    assert_eq!(
        (missing.status, missing.code()),
        (404, "unknown_run".into())
    );

    // Open streams end when the server stops; they do not hold up the stop.
    assert!(server.stop(), "a graceful stop with streams open");
    assert!(own.next().is_none() && global.next().is_none());
}

/// A console page carries, in its stream's URL, the commit count it was read at: the
/// stream starts with a catch-up `change` (a null `run_id`) if anything was committed
/// between the read and the subscription, and with the next commit if nothing was.
#[test]
fn a_live_page_misses_no_commit_between_its_read_and_its_stream() {
    let server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", OTHER).status, 201);
    let form = format!("token={}&next=/runs", server.admin);
    let login = server.request(
        "POST",
        "/login",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let page = server.request("GET", "/runs", None, &[("Cookie", cookie)], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    let live = page
        .body
        .split("data-live=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a live page: {}", page.body))
        .replace("&amp;", "&");
    assert!(live.contains("seen="), "{live}");

    // Nothing committed since the read: the first event is the next commit's.
    let mut current = server.events(&live, &[]);
    assert_eq!(current.status, 200);
    let ran = server.admin("POST", "/v1/workflows/other/runs?wait=5s", "{}");
    let run = ran.json()["id"].clone();
    let first = current.next().unwrap();
    assert_eq!(
        (first.event.as_str(), &first.data["run_id"]),
        ("change", &run)
    );

    // A stream opened with that page's count now starts by catching up.
    let mut behind = server.events(&live, &[]);
    let first = behind.next().unwrap();
    assert_eq!(first.event, "change");
    assert!(first.data["run_id"].is_null(), "{first:?}");
}
