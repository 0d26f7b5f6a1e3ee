//! Connectors written in JavaScript (`plugins/fx-rates`, built with componentize-js) and
//! Python (`plugins/vendor-master`, built with componentize-py), installed into a real
//! registry and called through the same WIT contract as the Rust plugins, against
//! local stand-ins of the REST APIs they wrap.

use baton::registry::{CallReport, GrantChange, InstallRequest, RegistryError};
use baton::runtime::{CallContext, Failure};
use baton_tests::TestRegistry;
use baton_tests::polyglot::{Lang, plugin_wasm};
use baton_tests::stand_in::{Recorded, Reply, StandIn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

/// The API key the stand-ins accept.
const KEY: &str = "sk-live-4f9a2c7e1b55";

/// A stand-in REST API with the faults the tests switch on.
struct Upstream {
    server: StandIn,
    /// Answer every request with this status (0: behave).
    outage: Arc<AtomicU16>,
    /// Refuse the key, echoing it back in the error message as careless APIs do.
    revoke_key: Arc<AtomicBool>,
}

impl Upstream {
    /// Serves `answer(path)` (status, body) to requests carrying the key in `key_header`
    /// (`authorization` as `Bearer KEY`, or `x-api-key` as `KEY`).
    fn start(key_header: &'static str, answer: fn(&str) -> (u16, Value)) -> Upstream {
        let outage = Arc::new(AtomicU16::new(0));
        let revoke_key = Arc::new(AtomicBool::new(false));
        let (down, revoked) = (outage.clone(), revoke_key.clone());
        let server = StandIn::start(move |r: &Recorded| {
            let sent = r.headers.get(key_header).map(String::as_str).unwrap_or("");
            let sent = sent.strip_prefix("Bearer ").unwrap_or(sent);
            let status = down.load(Ordering::SeqCst);
            if status != 0 {
                return Reply::json(status, json!({"message": "service unavailable"}));
            }
            if sent != KEY || revoked.load(Ordering::SeqCst) {
                let message = format!("API key {sent} is not valid for this account");
                return Reply::json(401, json!({ "message": message }));
            }
            let (status, body) = answer(&r.path);
            Reply::json(status, body)
        });
        Upstream {
            server,
            outage,
            revoke_key,
        }
    }

    fn base_url(&self) -> String {
        self.server.url("")
    }

    fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }
}

/// The exchange-rate API of `fx-rates` (Frankfurter's shape), base EUR only.
fn exchange_rates(path: &str) -> (u16, Value) {
    let rates = [("USD", 1.0835), ("GBP", 0.8571), ("JPY", 162.4)];
    let Some(query) = path.strip_prefix("/latest?") else {
        return (404, json!({"message": "no such route"}));
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    if param("from").as_deref() != Some("EUR") {
        return (404, json!({"message": "not found"}));
    }
    let mut out = serde_json::Map::new();
    for symbol in param("to").iter().flat_map(|to| to.split(',')) {
        let symbol = symbol.replace("%2C", ",");
        match rates.iter().find(|(s, _)| *s == symbol) {
            Some((s, rate)) => out.insert(s.to_string(), json!(rate)),
            None => return (404, json!({"message": "not found"})),
        };
    }
    if param("to").is_none() {
        out.extend(rates.iter().map(|(s, r)| (s.to_string(), json!(r))));
    }
    let body = json!({"amount": 1.0, "base": "EUR", "date": "2026-11-24", "rates": out});
    (200, body)
}

/// The vendor master API of `vendor-master`.
fn vendor_master(path: &str) -> (u16, Value) {
    let acme = json!({
        "id": "V-100", "name": "Acme Supplies Ltd.", "country": "DE", "status": "active",
        "iban": "DE89370400440532013000", "payment_terms_days": 30,
    });
    let blocked = json!({
        "id": "V-200", "name": "Shady Parts GmbH", "country": "AT", "status": "blocked",
        "iban": "AT611904300234573201", "payment_terms_days": 14,
    });
    let summary = |v: &Value| json!({"id": v["id"], "name": v["name"], "country": v["country"], "status": v["status"]});
    match path {
        "/vendors/V-100" => (200, acme),
        "/vendors/V-200" => (200, blocked),
        "/vendors?name=acme" => (200, json!({"vendors": [summary(&acme)]})),
        p if p.starts_with("/vendors?name=") => (200, json!({"vendors": []})),
        _ => (404, json!({"message": "no such vendor"})),
    }
}

/// `plugins/NAME` built with its language's tooling and installed, granted the stand-in's
/// host, its base URL and the API key.
async fn installed(lang: Lang, name: &str, upstream: &Upstream) -> TestRegistry {
    let t = TestRegistry::unsigned();
    let component = std::fs::read(plugin_wasm(lang, name)).unwrap();
    let report = t
        .registry
        .install(InstallRequest {
            component,
            grant: GrantChange {
                add_hosts: vec![upstream.server.addr.to_string()],
                set_config: vec![("base_url".into(), json!(upstream.base_url()))],
                set_secrets: vec![("api_key".into(), KEY.into())],
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
    assert_eq!(report.plugin.record.manifest.name, name);
    eprintln!(
        "{name} ({lang:?}) compiled at install in {:?}",
        report.compile_time
    );
    t
}

/// The actions `plugin` declared in `describe()`; every plugin here also asks for the
/// `api_key` secret.
fn declared_actions(t: &TestRegistry, plugin: &str) -> Vec<String> {
    let described = t.registry.resolve(&plugin.parse().unwrap()).unwrap();
    assert_eq!(described.manifest.capabilities.secrets, ["api_key"]);
    described
        .manifest
        .actions
        .into_iter()
        .map(|a| a.name)
        .collect()
}

async fn call(t: &TestRegistry, plugin: &str, action: &str, input: Value) -> CallReport {
    let context = CallContext {
        run_id: "run-1".into(),
        step_id: action.into(),
        attempt: 1,
        idempotency_key: format!("run-1/{action}"),
    };
    t.registry
        .call(
            &plugin.parse().unwrap(),
            action,
            &input.to_string(),
            &context,
        )
        .await
        .unwrap_or_else(|e| panic!("{plugin} {action}: {e}"))
}

async fn ok(t: &TestRegistry, plugin: &str, action: &str, input: Value) -> (Value, CallReport) {
    let report = call(t, plugin, action, input).await;
    match &report.result {
        Ok(out) => (out.clone(), report),
        Err(f) => panic!(
            "{plugin} {action} failed: {f:?}\nlogs: {:?}\nstderr: {}",
            report.logs, report.stderr
        ),
    }
}

/// A call expected to fail with `expected` (code, retryable).
async fn fails(
    t: &TestRegistry,
    plugin: &str,
    action: &str,
    input: Value,
    expected: (&str, bool),
) -> (Failure, CallReport) {
    let report = call(t, plugin, action, input).await;
    match &report.result {
        Ok(out) => panic!("{plugin} {action} should fail, returned {out}"),
        Err(f) => {
            assert_eq!((f.code.as_str(), f.retryable), expected, "{f:?}");
            (f.clone(), report)
        }
    }
}

/// Input the action's declared schema refuses before the plugin runs.
async fn refused(t: &TestRegistry, plugin: &str, action: &str, input: &str) -> RegistryError {
    let refused = t
        .registry
        .call(
            &plugin.parse().unwrap(),
            action,
            input,
            &CallContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RegistryError::InvalidInput { .. }),
        "{refused}"
    );
    refused
}

/// Everything a call reported, as one text (to look for leaked secrets).
fn everything(report: &CallReport) -> String {
    serde_json::to_string(report).unwrap()
}

/// What every connector owes its admin, whatever its language: it reaches only granted
/// hosts, a missing secret is a clear failure before any request, the key never shows in
/// outputs, failures, logs or stdio, even when the upstream echoes it back, and an
/// upstream outage is a failure worth retrying.
/// `t` has `plugin` installed as [`installed`] leaves it, and gets it back that way.
///
/// `denied` is the failure a request to a host that was not granted ends in: the Rust and
/// Python SDKs see wasi:http's `HTTP-request-denied` and report `host_denied`, but
/// JavaScript's `fetch` turns every error into one TypeError, so its SDK can only say
/// `unreachable` (retryable). Either way the host reports the denial itself.
async fn check_sandbox(
    t: &TestRegistry,
    plugin: &str,
    action: &str,
    input: Value,
    upstream: &Upstream,
    denied: (&str, bool),
) {
    let grant = |change: GrantChange| {
        t.registry.grant(plugin, &change).unwrap();
    };
    let base_url = |url: String| GrantChange {
        set_config: vec![("base_url".into(), json!(url))],
        ..Default::default()
    };

    upstream.outage.store(503, Ordering::SeqCst);
    fails(
        t,
        plugin,
        action,
        input.clone(),
        ("upstream_unavailable", true),
    )
    .await;
    upstream.outage.store(0, Ordering::SeqCst);

    // A host that was not granted: the request never leaves, the denial is reported.
    let elsewhere = StandIn::start(|_| Reply::json(200, json!({})));
    grant(base_url(elsewhere.url("")));
    let (_, report) = fails(t, plugin, action, input.clone(), denied).await;
    grant(base_url(upstream.base_url()));
    assert!(
        report
            .denied
            .iter()
            .any(|d| d.contains(&elsewhere.addr.to_string()) && d.contains("not granted")),
        "the denial names the host: {:?}",
        report.denied
    );
    assert!(elsewhere.requests().is_empty(), "nothing reached it");

    // No key granted: a clear failure, no request.
    let before = upstream.requests().len();
    grant(GrantChange {
        remove_secrets: vec!["api_key".into()],
        ..Default::default()
    });
    let (failure, _) = fails(t, plugin, action, input.clone(), ("not_configured", false)).await;
    grant(GrantChange {
        set_secrets: vec![("api_key".into(), KEY.into())],
        ..Default::default()
    });
    assert!(failure.message.contains("api_key"), "{failure:?}");
    assert_eq!(
        upstream.requests().len(),
        before,
        "no request without a key"
    );

    // The key is sent, but never shown, even when the upstream repeats it.
    upstream.revoke_key.store(true, Ordering::SeqCst);
    let (failure, report) = fails(t, plugin, action, input, ("unauthorized", false)).await;
    upstream.revoke_key.store(false, Ordering::SeqCst);
    assert!(
        failure.message.contains("[redacted secret api_key]"),
        "the upstream's message is kept, the key in it redacted: {failure:?}"
    );
    let reported = everything(&report);
    assert!(!reported.contains(KEY), "the key leaked: {reported}");
    assert!(!report.logs.is_empty(), "the plugin logged its request");
    let sent = upstream.requests().pop().unwrap();
    assert!(
        sent.headers.values().any(|v| v.contains(KEY)),
        "the key was sent upstream: {:?}",
        sent.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_connector_converts_currencies() {
    let upstream = Upstream::start("authorization", exchange_rates);
    let t = installed(Lang::JavaScript, "fx-rates", &upstream).await;

    assert_eq!(declared_actions(&t, "fx-rates"), ["convert", "rates"]);

    let (out, report) = ok(
        &t,
        "fx-rates",
        "convert",
        json!({"amount": 100, "from": "EUR", "to": "USD"}),
    )
    .await;
    assert_eq!(out["converted"], 108.35, "{out}");
    assert_eq!(out["rate"], 1.0835, "{out}");
    assert_eq!(out["date"], "2026-11-24", "{out}");
    let sent = upstream.requests().pop().unwrap();
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, "/latest?from=EUR&to=USD");
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));
    let logged = report
        .logs
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>();
    assert!(
        logged.iter().any(|l| l.contains("/latest?from=EUR&to=USD")),
        "{logged:?}"
    );

    // Same currency: no request at all.
    let before = upstream.requests().len();
    let (out, _) = ok(
        &t,
        "fx-rates",
        "convert",
        json!({"amount": 12.5, "from": "GBP", "to": "GBP"}),
    )
    .await;
    assert_eq!(
        (out["rate"].as_f64(), out["converted"].as_f64()),
        (Some(1.0), Some(12.5))
    );
    assert_eq!(upstream.requests().len(), before);

    let (out, _) = ok(
        &t,
        "fx-rates",
        "rates",
        json!({"base": "EUR", "symbols": ["USD", "JPY"]}),
    )
    .await;
    assert_eq!(out["rates"], json!({"USD": 1.0835, "JPY": 162.4}), "{out}");

    // Typed failures the engine can act on.
    let (failure, _) = fails(
        &t,
        "fx-rates",
        "convert",
        json!({"amount": 1, "from": "EUR", "to": "XXX"}),
        ("unknown_currency", false),
    )
    .await;
    assert!(failure.message.contains("XXX"), "{failure:?}");

    // The declared schema guards the input before the plugin runs.
    let refused = refused(
        &t,
        "fx-rates",
        "convert",
        r#"{"amount": 1, "from": "euro", "to": "USD"}"#,
    )
    .await;
    assert!(refused.to_string().contains("from"), "{refused}");

    check_sandbox(
        &t,
        "fx-rates",
        "convert",
        json!({"amount": 1, "from": "EUR", "to": "USD"}),
        &upstream,
        ("unreachable", true),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_connector_looks_up_vendors() {
    let upstream = Upstream::start("x-api-key", vendor_master);
    let t = installed(Lang::Python, "vendor-master", &upstream).await;

    assert_eq!(
        declared_actions(&t, "vendor-master"),
        ["lookup-vendor", "search-vendors"]
    );

    let (out, report) = ok(
        &t,
        "vendor-master",
        "lookup-vendor",
        json!({"vendor_id": "V-100"}),
    )
    .await;
    assert_eq!(out["name"], "Acme Supplies Ltd.", "{out}");
    assert_eq!(out["payable"], true, "{out}");
    assert_eq!(out["payment_terms_days"], 30, "{out}");
    let masked = out["iban_masked"].as_str().unwrap();
    assert!(
        masked.starts_with("DE89") && masked.ends_with("3000"),
        "{masked}"
    );
    assert!(
        !masked.contains("370400440532"),
        "the IBAN is masked: {masked}"
    );
    let sent = upstream.requests().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/vendors/V-100")
    );
    assert_eq!(sent.headers["x-api-key"], KEY);
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.message.contains("/vendors/V-100")),
        "{:?}",
        report.logs
    );

    let (out, _) = ok(
        &t,
        "vendor-master",
        "lookup-vendor",
        json!({"vendor_id": "V-200"}),
    )
    .await;
    assert_eq!(
        (out["status"].as_str(), out["payable"].as_bool()),
        (Some("blocked"), Some(false))
    );

    let (out, _) = ok(
        &t,
        "vendor-master",
        "search-vendors",
        json!({"name": "acme"}),
    )
    .await;
    assert_eq!(out["vendors"][0]["id"], "V-100", "{out}");
    assert!(out["vendors"][0].get("iban").is_none(), "{out}");

    let (failure, _) = fails(
        &t,
        "vendor-master",
        "lookup-vendor",
        json!({"vendor_id": "V-404"}),
        ("vendor_not_found", false),
    )
    .await;
    assert!(failure.message.contains("V-404"), "{failure:?}");

    refused(&t, "vendor-master", "search-vendors", r#"{"name": "a"}"#).await;

    check_sandbox(
        &t,
        "vendor-master",
        "lookup-vendor",
        json!({"vendor_id": "V-100"}),
        &upstream,
        ("host_denied", false),
    )
    .await;
}

/// `baton plugin new connector NAME --lang js|python` writes a project outside this
/// workspace; the build command it prints works as printed, and the component answers.
#[test]
fn scaffolded_javascript_and_python_connectors_build_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    // The printed commands install the tooling into each project, as a newcomer's would:
    // npm from its cache, the Python virtualenv from pip's after the first time.
    let readme = std::fs::read_to_string(baton_tests::workspace_root().join("README.md")).unwrap();
    // The names the README uses.
    let languages = [
        ("js", "greeter-js", "src/index.js"),
        ("python", "greeter-py", "app.py"),
    ];
    for (lang, name, source) in languages {
        let (printed, _) = baton_tests::baton_ok(
            dir.path(),
            dir.path(),
            &["plugin", "new", "connector", name, "--lang", lang],
        );
        let line = |prefix: &str| {
            printed
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{printed}"))
                .to_owned()
        };
        // The README shows the source `plugin new` writes.
        let shown = baton_tests::code_blocks(&readme, "Write a plugin", lang);
        let written = std::fs::read_to_string(dir.path().join(name).join(source)).unwrap();
        assert!(
            shown.len() == 1 && written.contains(&shown[0]),
            "the README shows the {source} that `plugin new --lang {lang}` writes:\n{written}"
        );
        let build = std::process::Command::new("sh")
            .args(["-c", &line("next: ")])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&build.stdout),
            String::from_utf8_lossy(&build.stderr)
        );
        let project = dir.path().join(name);
        match lang {
            // The SDK is copied in with its own componentize-js (`.npmrc`), not linked to
            // the checkout, whose node_modules a newcomer has not installed.
            "js" => assert!(
                project
                    .join("node_modules/@bytecodealliance/componentize-js")
                    .is_dir(),
                "{name} holds its own build tooling"
            ),
            // Its unit tests pass natively, as its README says to run them.
            _ => {
                let tests = std::process::Command::new(project.join(".venv/bin/python"))
                    .args(["-m", "unittest"])
                    .current_dir(&project)
                    .env(
                        "PYTHONPATH",
                        baton_tests::workspace_root().join("sdk/python"),
                    )
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .output()
                    .unwrap();
                let report = String::from_utf8_lossy(&tests.stderr);
                assert!(
                    tests.status.success() && report.contains("Ran 2 tests"),
                    "{report}"
                );
            }
        }
        let invoke = line("then: baton ");
        let invoke = invoke.replace("--input '{\"name\":\"Ada\"}'", "");
        let mut args: Vec<&str> = invoke.split_whitespace().collect();
        args.extend(["--input", r#"{"name":"Ada"}"#, "--json"]);
        let (out, _) = baton_tests::baton_ok(dir.path(), &project, &args);
        let out: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            out["result"]["Ok"]["greeting"], "Hello, Ada!",
            "{name}: {out}"
        );
    }
}

/// The Python SDK's and `vendor-master`'s own unit tests, run natively (the helpers
/// fall back to stand-ins outside a component).
#[test]
fn python_unit_tests_pass() {
    let root = baton_tests::workspace_root();
    for (dir, tests) in [("sdk/python", "tests"), ("plugins/vendor-master", ".")] {
        let out = std::process::Command::new(baton_tests::polyglot::python())
            .args(["-m", "unittest", "discover", "-v", "-s", tests])
            .current_dir(root.join(dir))
            .env("PYTHONPATH", root.join("sdk/python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{dir}: {report}");
        assert!(report.contains("\nOK"), "{dir}: {report}");
        assert!(!report.contains("Ran 0 tests"), "{dir}: {report}");
    }
}

/// Both connectors uploaded over HTTP (their components are far above the server's
/// general body limit: they carry an interpreter) and chained in one durable workflow,
/// Python's output feeding JavaScript's input.
#[test]
fn javascript_and_python_connectors_run_in_one_workflow_over_http() {
    let vendors = Upstream::start("x-api-key", vendor_master);
    let rates = Upstream::start("authorization", exchange_rates);
    let server = baton_tests::http::Server::start(&[]);
    for (lang, plugin, upstream) in [
        (Lang::Python, "vendor-master", &vendors),
        (Lang::JavaScript, "fx-rates", &rates),
    ] {
        let component = std::fs::read(plugin_wasm(lang, plugin)).unwrap();
        assert!(component.len() > 1 << 20, "above the 1 MiB body limit");
        let installed = server.request("POST", "/v1/plugins", Some(&server.admin), &[], &component);
        assert_eq!(installed.status, 201, "{plugin}: {}", installed.body);
        let grant = json!({
            "add_hosts": [upstream.server.addr.to_string()],
            "set_secrets": {"api_key": KEY},
            "set_config": {"base_url": upstream.base_url()},
        });
        let granted = server.admin(
            "POST",
            &format!("/v1/plugins/{plugin}/grant"),
            &grant.to_string(),
        );
        assert_eq!(granted.status, 200, "{plugin}: {}", granted.body);
    }
    let workflow = "name: pay-vendor
steps:
  - id: vendor
    call: vendor-master/lookup-vendor
    input: { vendor_id: .input.vendor }
  - id: amount
    call: fx-rates/convert
    input: { amount: .input.amount, from: '\"EUR\"', to: .input.currency }
";
    let applied = server.admin("POST", "/v1/workflows", workflow);
    assert_eq!(applied.status, 201, "{}", applied.body);
    let run = server.admin(
        "POST",
        "/v1/workflows/pay-vendor/runs?wait=30s",
        r#"{"vendor": "V-100", "amount": 200, "currency": "GBP"}"#,
    );
    assert_eq!(run.status, 201, "{}", run.body);
    let run = run.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["steps"][0]["output"]["name"], "Acme Supplies Ltd.",
        "{run}"
    );
    assert_eq!(run["steps"][1]["output"]["converted"], 171.42, "{run}");
}
