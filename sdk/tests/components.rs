//! Builds the first-party and test plugins as components and checks each one's world:
//! connectors export exactly `describe` and `invoke`, rules exactly `describe` and
//! `evaluate`, and a rule never imports `wasi:http` or the connector-only interfaces.
//!
//! This runs `cargo build --target wasm32-wasip2 --profile plugin` for the five plugins
//! in one invocation (so cargo's feature unification is exercised too), into the same
//! target directory as the end-to-end tests, which build the same components.

use std::path::{Path, PathBuf};
use std::process::Command;

const CONNECTORS: [(&str, &str); 3] = [
    ("plugin-echo", "echo"),
    ("plugin-http", "http"),
    ("plugin-hostile", "hostile"),
];
const RULES: [(&str, &str); 2] = [
    ("plugin-invoice-rules", "invoice_rules"),
    ("plugin-hostile-rule", "hostile_rule"),
];

fn build_all() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(&target_dir);
    for (pkg, _) in CONNECTORS.iter().chain(RULES.iter()) {
        cmd.args(["-p", pkg]);
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building the plugins failed");
    target_dir.join("wasm32-wasip2").join("plugin")
}

/// (imports, exports) of a component, read as the host reads it on install.
fn world_of(path: &Path) -> (Vec<String>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let world = baton::runtime::component_world(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (world.imports, world.exports)
}

#[test]
fn components_have_only_their_worlds() {
    let dir = build_all();
    for (_, lib) in CONNECTORS {
        let (imports, exports) = world_of(&dir.join(format!("{lib}.wasm")));
        assert_eq!(exports, ["describe", "invoke"], "{lib} exports");
        assert!(
            imports.iter().all(|i| !i.starts_with("wasi:http/incoming")),
            "{lib}: {imports:?}"
        );
    }
    for (_, lib) in RULES {
        let (imports, exports) = world_of(&dir.join(format!("{lib}.wasm")));
        assert_eq!(exports, ["describe", "evaluate"], "{lib} exports");
        for forbidden in [
            "wasi:http/",
            "wasi:sockets/",
            "baton:plugin/config",
            "baton:plugin/feedback",
        ] {
            assert!(
                imports.iter().all(|i| !i.starts_with(forbidden)),
                "{lib} imports {forbidden}: {imports:?}"
            );
        }
    }
    let (imports, _) = world_of(&dir.join("echo.wasm"));
    assert!(
        imports
            .iter()
            .any(|i| i == "wasi:http/outgoing-handler@0.2.12")
    );
}
