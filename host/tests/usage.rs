//! The binary's command-line surface. (Also makes `cargo test` build `baton` itself,
//! which the end-to-end tests in `tests/` then drive.)

use std::process::Command;

fn baton(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .output()
        .expect("baton runs")
}

#[test]
fn help_lists_the_plugin_commands() {
    let out = baton(&["plugin", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "install", "list", "show", "remove", "grant", "sign", "invoke",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn a_mistyped_command_is_refused_with_a_suggestion() {
    let out = baton(&["plugin", "instal", "x.wasm"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unrecognized subcommand 'instal'") && err.contains("install"),
        "{err}"
    );
}

#[test]
fn a_bad_config_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("baton.toml");
    std::fs::write(&config, "allow_unsigned = true\ntrusted_keys = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--data", dir.path().to_str().unwrap(), "plugin", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("baton.toml is invalid") && err.contains("line 2"),
        "{err}"
    );
}
