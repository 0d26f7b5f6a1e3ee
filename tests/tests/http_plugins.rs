//! Plugins managed over HTTP against the real `baton serve`: a signed upload installs,
//! an unsigned or tampered one is refused; grants (secret values never echoed), list,
//! show, remove; every change in the audit log with its actor.

use base64::Engine as _;
use baton_tests::http::Server;
use baton_tests::{baton_ok, plugin_wasm};
use serde_json::json;

/// A publisher key made with `baton keygen`, and `echo` signed with it.
struct Signed {
    component: Vec<u8>,
    signature: String,
    public_key: String,
}

fn signed_echo(dir: &std::path::Path) -> Signed {
    let data = dir.join("publisher");
    baton_ok(&data, dir, &["keygen", "--out", "acme"]);
    let wasm = dir.join("echo.wasm");
    std::fs::copy(plugin_wasm("echo"), &wasm).unwrap();
    baton_ok(
        &data,
        dir,
        &["plugin", "sign", "--key", "acme.key", "echo.wasm"],
    );
    Signed {
        component: std::fs::read(&wasm).unwrap(),
        signature: base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(dir.join("echo.wasm.sig")).unwrap()),
        public_key: std::fs::read_to_string(dir.join("acme.pub"))
            .unwrap()
            .trim()
            .to_owned(),
    }
}

#[test]
fn admins_install_signed_plugins_grant_and_remove_them_over_http() {
    let publisher = tempfile::tempdir().unwrap();
    let echo = signed_echo(publisher.path());
    let trusted = format!(
        "[[trusted_keys]]\nname = \"acme\"\npublic_key = \"{}\"\n",
        echo.public_key
    );
    let server = Server::start_with(&trusted, &[]);
    let upload = |headers: &[(&str, &str)], body: &[u8]| {
        server.request("POST", "/v1/plugins", Some(&server.admin), headers, body)
    };

    let unsigned = upload(&[], &echo.component);
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (422, "signature".into())
    );
    assert!(
        unsigned.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("baton plugin sign")
    );
    // Echo's signature on other bytes.
    let tampered = std::fs::read(plugin_wasm("http")).unwrap();
    let sig = [("Baton-Signature", echo.signature.as_str())];
    let refused = upload(&sig, &tampered);
    assert_eq!(
        (refused.status, refused.code()),
        (422, "signature".into()),
        "{}",
        refused.body
    );
    let garbled = upload(&[("Baton-Signature", "not base64!")], &echo.component);
    assert_eq!(garbled.json()["error"]["field"], "Baton-Signature");
    let viewer = server.token("vera", "viewer");
    let forbidden = server.request("POST", "/v1/plugins", Some(&viewer), &sig, &echo.component);
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        server.admin("GET", "/v1/plugins", "").json(),
        json!([]),
        "nothing was installed"
    );

    let installed = upload(&sig, &echo.component);
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(
        installed.json()["plugin"]["signer"]["name"],
        "acme",
        "{}",
        installed.body
    );
    assert_eq!(
        upload(&sig, &echo.component).status,
        200,
        "the same bytes again"
    );
    let listed = server.as_user(&viewer, "GET", "/v1/plugins", "").json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let shown = server.admin("GET", "/v1/plugins/echo@0.1.0", "").json();
    assert!(
        shown["manifest"]["actions"].to_string().contains("echo"),
        "{shown}"
    );
    let missing = server.admin("GET", "/v1/plugins/nosuch", "");
    assert_eq!(
        (missing.status, missing.code()),
        (404, "unknown_plugin".into())
    );

    let granted = server.admin(
        "POST",
        "/v1/plugins/echo/grant",
        r#"{"add_hosts":["127.0.0.1"],"set_secrets":{"token":"s3cret"}}"#,
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.json()[0]["granted_secrets"], json!(["token"]));
    assert!(
        !granted.body.contains("s3cret"),
        "secret values are never echoed"
    );

    // A run calls the plugin installed over HTTP.
    let flow =
        "name: hello\nsteps:\n  - id: say\n    call: echo/echo\n    input: { message: '\"hi\"' }\n";
    assert_eq!(server.admin("POST", "/v1/workflows", flow).status, 201);
    let run = server
        .admin("POST", "/v1/workflows/hello/runs?wait=10s", "{}")
        .json();
    assert_eq!(run["output"]["message"], "hi", "{run}");

    let removed = server.admin("DELETE", "/v1/plugins/echo", "");
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["removed"][0]["plugin"], "echo@0.1.0");
    assert_eq!(server.admin("GET", "/v1/plugins/echo", "").status, 404);

    let log = server.admin("GET", "/v1/audit?run=system", "").json();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token_created",
            "plugin_installed",
            "plugin_granted",
            "workflow_applied",
            "plugin_removed"
        ]
    );
    assert!(!log.to_string().contains("s3cret"), "{log}");
    assert_eq!(log[2]["detail"]["set_secrets"], json!(["token"]));
}
