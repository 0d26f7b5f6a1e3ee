//! Installing, signing, upgrading and removing plugins on a real redb file.

use baton::config::{Config, TrustedKey};
use baton::registry::{GrantChange, InstallRequest, LoadSource, RegistryError, signing};
use baton::runtime::CallContext;
use baton::store::Signer;
use baton_tests::{TestRegistry, open_registry, plugin_bytes};
use serde_json::json;

fn request(component: Vec<u8>, signature: Option<Vec<u8>>) -> InstallRequest {
    InstallRequest {
        component,
        signature,
        ..Default::default()
    }
}

fn assert_nothing_stored(t: &TestRegistry) {
    assert!(t.registry.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_that_are_not_a_plugin_are_refused_and_store_nothing() {
    let t = TestRegistry::unsigned();
    let cases: [(&[u8], &str); 4] = [
        (b"MZ\x90\x00 this is not wasm", "not a WebAssembly file"),
        (
            b"\0asm\x01\0\0\0",
            "core WebAssembly module, not a component",
        ),
        (
            b"\0asm\x0d\0\x01\0",
            "implements neither baton:plugin world",
        ),
        (b"\0asm\x0d\0\x01\0\xff\xff", "malformed"),
    ];
    for (bytes, phrase) in cases {
        let err = t
            .registry
            .install(request(bytes.to_vec(), None))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(phrase),
            "expected {phrase:?}, got: {err}"
        );
        assert_nothing_stored(&t);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_required_checked_and_recorded() {
    let key = signing::generate_key();
    let rival = signing::generate_key();
    let trust = |name: &str, key: &signing::SigningKey| TrustedKey {
        name: name.into(),
        public_key: signing::encode_public_key(&key.verifying_key()),
    };
    let config = Config {
        trusted_keys: vec![trust("acme", &key), trust("globex", &rival)],
        ..Default::default()
    };
    let t = TestRegistry::with_config(config);
    let echo = plugin_bytes("echo");
    let sig = |k, bytes: &[u8]| Some(serde_json::to_vec(&signing::sign(k, bytes)).unwrap());

    let unsigned = t
        .registry
        .install(request(echo.clone(), None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            unsigned,
            RegistryError::Signature(signing::SignatureError::Unsigned)
        ),
        "{unsigned}"
    );
    assert!(unsigned.to_string().contains("baton plugin sign"));

    let stranger = signing::generate_key();
    let untrusted = t
        .registry
        .install(request(echo.clone(), sig(&stranger, &echo)))
        .await
        .unwrap_err();
    assert!(
        untrusted.to_string().contains("does not trust"),
        "{untrusted}"
    );

    let mut tampered = echo.clone();
    tampered.extend_from_slice(b"\0\x05\x04evil"); // an extra custom section
    let mismatch = t
        .registry
        .install(request(tampered, sig(&key, &echo)))
        .await
        .unwrap_err();
    assert!(
        mismatch.to_string().contains("changed after signing"),
        "{mismatch}"
    );

    let mut forged = signing::sign(&key, b"something else");
    forged.digest = signing::digest(&echo);
    let forged = t
        .registry
        .install(request(
            echo.clone(),
            Some(serde_json::to_vec(&forged).unwrap()),
        ))
        .await
        .unwrap_err();
    assert!(
        forged
            .to_string()
            .contains("does not verify with trusted key acme"),
        "{forged}"
    );
    assert_nothing_stored(&t);

    let report = t
        .registry
        .install(request(echo.clone(), sig(&key, &echo)))
        .await
        .unwrap();

    // Another trusted publisher cannot ship a newer "echo" and inherit echo's grants.
    let next = plugin_bytes("echo_next");
    let takeover = t
        .registry
        .install(request(next.clone(), sig(&rival, &next)))
        .await
        .unwrap_err();
    let text = takeover.to_string();
    assert!(
        text.contains("plugin echo 0.1.0 is published by key acme") && text.contains("key globex"),
        "{text}"
    );
    assert_eq!(t.registry.list().unwrap().len(), 1);
    // The same publisher can.
    t.registry
        .install(request(next.clone(), sig(&key, &next)))
        .await
        .unwrap();
    assert!(matches!(&report.plugin.record.signer, Signer::Key { name, .. } if name == "acme"));
    assert_eq!(report.plugin.record.digest, signing::digest(&echo));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_the_cached_artifact_instead_of_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        allow_unsigned: true,
        ..Default::default()
    };
    {
        let registry = open_registry(dir.path(), config.clone());
        registry
            .install(request(plugin_bytes("echo"), None))
            .await
            .unwrap();
    }
    let registry = open_registry(dir.path(), config);
    let record = registry.resolve(&"echo".parse().unwrap()).unwrap();
    let loaded = registry.load(&record).unwrap();
    assert_eq!(loaded.source, LoadSource::CachedArtifact);
    let r = registry
        .call(
            &"echo".parse().unwrap(),
            "echo",
            r#"{"message":"after restart"}"#,
            &CallContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.result.unwrap(), json!({"message": "after restart"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_live_side_by_side_and_upgrades_wait_for_new_grants() {
    let t = TestRegistry::unsigned();
    t.install("echo").await;
    t.registry
        .grant(
            "echo",
            &GrantChange {
                set_secrets: vec![("token".into(), "token-value".into())],
                ..Default::default()
            },
        )
        .unwrap();

    // 0.2.0 asks for a secret 0.1.0 never had: it installs, without it.
    let upgrade = t.install("echo_next").await;
    assert_eq!(upgrade.plugin.record.manifest.version, "0.2.0");
    assert_eq!(upgrade.plugin.pending_secrets, ["api-key"]);
    let versions: Vec<String> = t
        .registry
        .list()
        .unwrap()
        .iter()
        .map(|v| v.record.manifest.id())
        .collect();
    assert_eq!(versions, ["echo@0.1.0", "echo@0.2.0"]);

    let secrets = |target: &'static str| {
        let registry = &t.registry;
        async move {
            registry
                .call(
                    &target.parse().unwrap(),
                    "secrets",
                    "{}",
                    &CallContext::default(),
                )
                .await
                .unwrap()
                .result
                .unwrap()
        }
    };
    assert_eq!(secrets("echo").await, json!({"visible": ["token"]}));
    t.registry
        .grant(
            "echo",
            &GrantChange {
                set_secrets: vec![("api-key".into(), "api-key-value".into())],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        secrets("echo").await,
        json!({"visible": ["api-key", "token"]})
    );

    // The old version is still callable by its version.
    let r = t
        .registry
        .call(
            &"echo@0.1.0".parse().unwrap(),
            "echo",
            r#"{"message":"v1"}"#,
            &CallContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.plugin, "echo@0.1.0");

    // Same name and version with other bytes is refused; identical bytes are a no-op.
    let again = t.install("echo").await;
    assert!(!again.newly_installed);
    let mut altered = plugin_bytes("echo");
    altered.extend_from_slice(b"\0\x05\x04note");
    let err = t
        .registry
        .install(request(altered, None))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("echo@0.1.0 is already installed with a different digest"),
        "{err}"
    );

    let removed = t.registry.remove(&"echo@0.2.0".parse().unwrap()).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        t.registry
            .resolve(&"echo".parse().unwrap())
            .unwrap()
            .manifest
            .version,
        "0.1.0"
    );
    t.registry.remove(&"echo".parse().unwrap()).unwrap();
    assert!(t.registry.list().unwrap().is_empty());
    // Grants and secrets went with the last version.
    assert!(t.registry.store().secrets("echo").unwrap().is_empty());
}
