//! `/openapi.json` against the real server: every documented operation exists and
//! answers with a status it documents, JSON where it says JSON, and a body its schema
//! accepts. The requests, their bodies included, are generated from the document itself.

use baton_tests::http::{EventStream, Server};
use baton_tests::plugin_wasm;
use serde_json::{Value, json};

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
    // Every schema in the document is one a validator accepts.
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        validator(&document, schema, name);
    }
    let mut answers_checked = 0;
    let mut requests_refused = 0;
    let mut queries_refused = 0;
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
        if op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["in"] == "query")
        {
            // A parameter the query string type does not know is refused, and named.
            let answer = server.request(
                &method.to_uppercase(),
                &format!("{url}?no_such_param=1"),
                Some(&server.admin),
                &[],
                b"",
            );
            assert_eq!(
                answer.status, 400,
                "{what}?no_such_param=1: {}",
                answer.body
            );
            assert!(
                answer.body.contains("no_such_param"),
                "{what}: {}",
                answer.body
            );
            assert_eq!(answer.json()["error"]["field"], "no_such_param", "{what}");
            queries_refused += 1;
        }
        if returns == "text/event-stream" {
            let stream = EventStream::open(&server.address, &url, &server.admin, &[]);
            assert!(
                documented.contains(&stream.status),
                "{what}: {}",
                stream.status
            );
            continue;
        }
        let request_schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let body: Vec<u8> = match op["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.keys().next().cloned())
        {
            Some(t) if t == "application/wasm" => wasm.clone(),
            Some(t) if t == "application/yaml" => GREET.as_bytes().to_vec(),
            Some(_) if request_schema.is_object() => {
                let body = example(&document, request_schema);
                let accepts = validator(&document, request_schema, &what);
                assert!(
                    accepts.is_valid(&body),
                    "{what}: the example {body} is not valid"
                );
                if resolve(&document, request_schema)["additionalProperties"] == false {
                    // A field the schema does not know is refused, and named.
                    let mut unknown = body.clone();
                    unknown["no_such_field"] = json!(1);
                    let answer = server.request(
                        &method.to_uppercase(),
                        &url,
                        Some(&server.admin),
                        &[],
                        unknown.to_string().as_bytes(),
                    );
                    assert_eq!(answer.status, 400, "{what} with {unknown}: {}", answer.body);
                    assert!(
                        answer.body.contains("no_such_field"),
                        "{what}: {}",
                        answer.body
                    );
                    requests_refused += 1;
                }
                body.to_string().into_bytes()
            }
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
            let json: Value = serde_json::from_str(&answer.body)
                .unwrap_or_else(|_| panic!("{what} is not JSON: {}", answer.body));
            let schema = &op["responses"][answer.status.to_string()]["content"][&returns]["schema"];
            // Every JSON answer but this document's own has a schema.
            assert!(
                schema.is_object() || path == "/openapi.json",
                "{what}: no schema for its answer"
            );
            if schema.is_object() {
                let errors: Vec<String> = validator(&document, schema, &what)
                    .iter_errors(&json)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{what}: the answer does not match its schema: {errors:#?}\n{json:#}"
                );
                answers_checked += 1;
            }
        }
        // Without a token, every route but the public ones is refused.
        if op.get("security").is_some() {
            let anonymous = server.request(&method.to_uppercase(), &url, None, &[], &body);
            assert_eq!(anonymous.status, 401, "{what} without a token");
        }
    }
    // Answers were checked against their schemas, and typed bodies refuse unknown fields.
    assert!(answers_checked >= 20, "{answers_checked} answers checked");
    assert!(requests_refused >= 5, "{requests_refused} requests refused");
    assert!(
        queries_refused >= 10,
        "{queries_refused} query strings refused"
    );
    // A value of the wrong type is refused with the parameter's name.
    let bad = server.admin("GET", "/v1/runs?limit=many", "");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["error"]["field"], "limit", "{}", bad.body);
}

/// A validator of `schema`, with the document's components beside it so that its
/// `$ref`s resolve.
fn validator(document: &Value, schema: &Value, what: &str) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{what}: bad schema: {e}"))
}

/// `schema`, or the schema its `$ref` names.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => document
            .pointer(target.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {target}")),
        None => schema,
    }
}

/// A small value that `schema` accepts: its required fields only, each the simplest
/// value of its type.
fn example(document: &Value, schema: &Value) -> Value {
    let schema = resolve(document, schema);
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema["oneOf"].get(0).or(schema["anyOf"].get(0)) {
        return example(document, first);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned(),
        kind => Some(kind.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("object") => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                out.insert(name.into(), example(document, &schema["properties"][name]));
            }
            Value::Object(out)
        }
        Some("array") => json!([]),
        Some("string") => json!("sample"),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(false),
        _ => Value::Null,
    }
}
