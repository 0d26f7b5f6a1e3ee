//! The README's "Write a plugin" walk-through, followed literally: `baton plugin new`
//! writes the crate whose src/lib.rs the README shows, outside this workspace; its own
//! tests pass, it builds for wasm32-wasip2 and runs with `baton plugin invoke`. The same
//! for a rule.

use baton_tests::{baton_bin, code_blocks, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn pinned_toolchain() -> String {
    let text = std::fs::read_to_string(workspace_root().join("rust-toolchain.toml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("channel")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

/// Runs cargo in `krate` with the pinned toolchain and a target directory under ours,
/// so repeated runs reuse the build; returns stdout and stderr after checking success.
fn cargo(krate: &Path, args: &[&str]) -> String {
    let out = Command::new("cargo")
        .args(args)
        .current_dir(krate)
        .env("RUSTUP_TOOLCHAIN", pinned_toolchain())
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo {args:?} in {}: {text}",
        krate.display()
    );
    text
}

fn target_dir() -> PathBuf {
    workspace_root().join("target/readme-plugin")
}

/// `baton ARGS` in `dir`; panics unless it succeeds.
fn baton(dir: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(baton_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "baton {args:?}: {stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn a_newcomer_can_follow_write_a_plugin_from_plugin_new_to_invoke() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let rust = code_blocks(&readme, "Write a plugin", "rust");
    assert_eq!(rust.len(), 1, "one lib.rs block");
    assert!(
        rust[0].lines().count() <= 40,
        "the example action fits in 40 lines"
    );

    let dir = tempfile::tempdir().unwrap();
    baton(dir.path(), &["plugin", "new", "connector", "greeter"]);
    let krate = dir.path().join("greeter");
    let source = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(
        source.starts_with(&rust[0]),
        "the README shows the lib.rs that `plugin new` writes:\n{source}"
    );
    let tests = cargo(&krate, &["test"]);
    assert!(tests.contains("test result: ok. 2 passed"), "{tests}");
    cargo(
        &krate,
        &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
    );

    let target = target_dir();
    let wasm = target.join("wasm32-wasip2/release/greeter.wasm");
    let invoke = |input: &str| {
        Command::new(baton_bin())
            .args([
                "plugin",
                "invoke",
                wasm.to_str().unwrap(),
                "greet",
                "--input",
                input,
            ])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = invoke(r#"{"name":"Ada"}"#);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"greeting\": \"Hello, Ada!\""), "{stdout}");
    assert!(
        stderr.contains("greeting Ada"),
        "the log line is shown: {stderr}"
    );

    let out = invoke(r#"{"name":""}"#);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed: empty_name"));
}

#[test]
fn plugin_new_makes_a_rule_that_tests_builds_and_decides() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = baton(dir.path(), &["plugin", "new", "rule", "credit-check"]);
    assert!(out.contains("created rule plugin `credit-check`"), "{out}");
    let krate = dir.path().join("credit-check");
    let tests = cargo(&krate, &["test"]);
    assert!(tests.contains("test result: ok. 2 passed"), "{tests}");
    cargo(
        &krate,
        &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
    );
    let wasm = target_dir().join("wasm32-wasip2/release/credit_check.wasm");
    let (decision, _) = baton(
        dir.path(),
        &[
            "plugin",
            "invoke",
            wasm.to_str().unwrap(),
            "within-limit",
            "--input",
            r#"{"total":120,"limit":100}"#,
        ],
    );
    let decision: serde_json::Value = serde_json::from_str(&decision).unwrap();
    assert_eq!(decision["outcome"], "review");

    // Refusals name what is wrong and write nothing.
    let refuse = |args: &[&str]| {
        let out = Command::new(baton_bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refuse(&["plugin", "new", "rule", "Credit_Check"]);
    assert!(err.contains("a-z, 0-9 and `-`"), "{err}");
    assert!(!dir.path().join("Credit_Check").exists());
    let err = refuse(&["plugin", "new", "connector", "credit-check"]);
    assert!(err.contains("already exists and is not empty"), "{err}");
    let err = refuse(&["plugin", "new", "connector", "x", "--sdk", "/nonexistent"]);
    assert!(err.contains("pass --sdk PATH"), "{err}");
}
