//! The README's "Write a plugin" walk-through, followed literally: its Cargo.toml and
//! src/lib.rs blocks become a new crate outside this workspace, built for wasm32-wasip2
//! and run with `baton plugin invoke`.

use baton_tests::{baton_bin, workspace_root};
use std::process::Command;

/// The fenced code blocks of `language` inside the README section titled `section`.
fn code_blocks(readme: &str, section: &str, language: &str) -> Vec<String> {
    let start = readme
        .find(&format!("## {section}"))
        .expect("section exists");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 3 + e);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(lang)) if lang == language => current = Some(String::new()),
            (Some(block), Some("")) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line.strip_prefix("   ").unwrap_or(line));
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn pinned_toolchain() -> String {
    let text = std::fs::read_to_string(workspace_root().join("rust-toolchain.toml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("channel")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn a_newcomer_can_follow_write_a_plugin_from_cargo_new_to_invoke() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let tomls = code_blocks(&readme, "Write a plugin", "toml");
    let rust = code_blocks(&readme, "Write a plugin", "rust");
    assert_eq!(
        (tomls.len(), rust.len()),
        (1, 1),
        "one Cargo.toml and one lib.rs block"
    );
    assert!(
        rust[0].lines().count() <= 40,
        "the example action fits in 40 lines"
    );

    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("greeter");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let sdk = workspace_root().join("sdk");
    let manifest = tomls[0].replace("/path/to/baton/sdk", sdk.to_str().unwrap());
    std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(krate.join("src/lib.rs"), &rust[0]).unwrap();

    // A target directory under ours, so repeated runs reuse the build.
    let target = workspace_root().join("target/readme-plugin");
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&krate)
        .env("RUSTUP_TOOLCHAIN", pinned_toolchain())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "the README plugin builds");

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
