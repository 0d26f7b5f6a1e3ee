//! `/openapi.json` against the real server: every documented operation exists and
//! answers with a status it documents, JSON where it says JSON. The requests are
//! generated from the document itself.

use baton_tests::http::{EventStream, Server};
use baton_tests::plugin_wasm;
use serde_json::Value;

const GREET: &str =
    "name: greet\nkey: .input.id\nsteps:\n  - id: hello\n    human: { title: Say hello }\n";

#[test]
fn every_documented_route_answers_as_documented() {
    let server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", GREET).status, 201);
    let run = server.admin("POST", "/v1/workflows/greet/runs?wait=5s", r#"{"id":"K"}"#);
    let run_id = run.json()["id"].as_str().unwrap().to_owned();
    let wasm = std::fs::read(plugin_wasm("echo")).unwrap();

    let document = server.request("GET", "/openapi.json", None, &[], b"");
    assert_eq!(document.status, 200);
    let document = document.json();
    assert_eq!(document["openapi"], "3.1.0");
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations.push((method.clone(), path.clone(), op.clone()));
        }
    }
    assert!(operations.len() >= 30, "{} operations", operations.len());
    // Removals last, so the other requests find what they name.
    operations.sort_by_key(|(method, _, _)| method == "delete");

    for (method, path, op) in &operations {
        let mut url = path.clone();
        for parameter in op["parameters"].as_array().unwrap() {
            if parameter["in"] != "path" {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let value = match (name, parameter["schema"]["enum"].get(0)) {
                (_, Some(word)) => word.as_str().unwrap().to_owned(),
                ("name" | "workflow", _) => "greet".into(),
                ("id" | "run", _) => run_id.clone(),
                ("path", _) => "hello".into(),
                ("plugin", _) => "echo".into(),
                (other, _) => format!("sample-{other}"),
            };
            url = url.replace(&format!("{{{name}}}"), &value);
        }
        let returns = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .and_then(|(_, r)| r["content"].as_object())
            .and_then(|c| c.keys().next().cloned())
            .unwrap_or_default();
        let documented: Vec<u16> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        let what = format!("{} {url}", method.to_uppercase());
        if returns == "text/event-stream" {
            let stream = EventStream::open(&server.address, &url, &server.admin, &[]);
            assert!(
                documented.contains(&stream.status),
                "{what}: {}",
                stream.status
            );
            continue;
        }
        let body: Vec<u8> = match op["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.keys().next().cloned())
        {
            Some(t) if t == "application/wasm" => wasm.clone(),
            Some(t) if t == "application/yaml" => GREET.as_bytes().to_vec(),
            Some(_) => b"{}".to_vec(),
            None => Vec::new(),
        };
        let answer = server.request(
            &method.to_uppercase(),
            &url,
            Some(&server.admin),
            &[],
            &body,
        );
        assert!(
            documented.contains(&answer.status),
            "{what} answered {} (documented: {documented:?}): {}",
            answer.status,
            answer.body
        );
        let code = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        assert_ne!(
            code.as_deref(),
            Some("not_found"),
            "{what} reached no route"
        );
        if answer.status >= 400 {
            assert!(
                answer.json()["error"]["message"].is_string(),
                "{what}: {}",
                answer.body
            );
        } else if returns == "application/json" {
            assert!(
                serde_json::from_str::<Value>(&answer.body).is_ok(),
                "{what} is not JSON: {}",
                answer.body
            );
        }
        // Without a token, every route but the public ones is refused.
        if op.get("security").is_some() {
            let anonymous = server.request(&method.to_uppercase(), &url, None, &[], &body);
            assert_eq!(anonymous.status, 401, "{what} without a token");
        }
    }
}
