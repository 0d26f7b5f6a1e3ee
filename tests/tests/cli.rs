//! The `baton` binary, driven as a user would: keygen, sign, install, list, show,
//! invoke, grant and remove on a data directory.

use baton_tests::{baton_fails, baton_ok, plugin_wasm, run_baton};
use std::path::Path;
use std::process::Output;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        run_baton(&self.path("data"), self.dir.path(), args)
    }

    /// Runs and expects success; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> String {
        let (stdout, stderr) = baton_ok(&self.path("data"), self.dir.path(), args);
        stdout + &stderr
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        baton_fails(&self.path("data"), self.dir.path(), args).1
    }
}

fn copy_plugin(cli: &Cli, name: &str) -> String {
    let to = cli.path(&format!("{name}.wasm"));
    std::fs::copy(plugin_wasm(name), &to).unwrap();
    to.to_string_lossy().into_owned()
}

fn trust(cli: &Cli, key_prefix: &str) {
    let public = std::fs::read_to_string(cli.path(&format!("{key_prefix}.pub"))).unwrap();
    std::fs::create_dir_all(cli.path("data")).unwrap();
    std::fs::write(
        cli.path("data/baton.toml"),
        format!(
            "[[trusted_keys]]\nname = \"acme\"\npublic_key = \"{}\"\n",
            public.trim()
        ),
    )
    .unwrap();
}

#[test]
fn publisher_signs_admin_installs_and_everyone_sees_the_same_plugin() {
    let cli = Cli::new();
    let echo = copy_plugin(&cli, "echo");

    let out = cli.ok(&["keygen", "--out", "acme"]);
    assert!(out.contains("public_key = \"ed25519:"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cli.path("acme.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        cli.fails(&["keygen", "--out", "acme"])
            .contains("already exists")
    );

    // Unsigned, nothing trusted: refused with the fix in the message.
    let err = cli.fails(&["plugin", "install", &echo]);
    assert!(
        err.contains("unsigned") && err.contains("baton plugin sign"),
        "{err}"
    );
    assert_eq!(
        err.matches("baton plugin sign").count(),
        1,
        "the hint is said once: {err}"
    );

    cli.ok(&["plugin", "sign", "--key", "acme.key", &echo]);
    assert!(Path::new(&format!("{echo}.sig")).exists());
    let err = cli.fails(&["plugin", "install", &echo]);
    assert!(err.contains("does not trust"), "{err}");

    trust(&cli, "acme");
    let out = cli.ok(&[
        "plugin",
        "install",
        &echo,
        "--secret",
        "token=t0p-s3cret-value",
    ]);
    assert!(out.contains("installed echo@0.1.0 (sha256:"), "{out}");
    assert!(
        out.contains("pending: host * is requested but not granted"),
        "{out}"
    );

    let list = cli.ok(&["plugin", "list"]);
    assert!(
        list.contains("echo") && list.contains("0.1.0") && list.contains("acme"),
        "{list}"
    );

    let show = cli.ok(&["plugin", "show", "echo"]);
    for needle in [
        "echo@0.1.0 (connector)",
        "signer:    acme (ed25519:",
        "secrets  requested: token",
        "granted: token",
        "context:",
        "\"message\"",
    ] {
        assert!(show.contains(needle), "missing {needle:?} in:\n{show}");
    }
    assert!(!show.contains("t0p-s3cret-value"));

    let out = cli.ok(&[
        "plugin",
        "invoke",
        "echo",
        "echo",
        "--input",
        r#"{"message":"hi"}"#,
    ]);
    assert!(out.contains("\"message\": \"hi\""), "{out}");
    assert!(out.contains("echo@0.1.0 echo in"), "{out}");

    let err = cli.fails(&["plugin", "invoke", "echo", "echo", "--input", "{oops"]);
    assert!(
        err.contains("not valid JSON") && err.contains("line 1 column 2"),
        "{err}"
    );
    let err = cli.fails(&["plugin", "invoke", "echo", "nope"]);
    assert!(err.contains("has no action nope"), "{err}");

    let json = cli.run(&["plugin", "show", "echo", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(view["manifest"]["name"], "echo");
    assert_eq!(view["granted_secrets"], serde_json::json!(["token"]));

    let out = cli.ok(&["plugin", "remove", "echo@0.1.0"]);
    assert!(out.contains("removed echo@0.1.0"), "{out}");
    let err = cli.fails(&["plugin", "show", "echo"]);
    assert!(err.contains("no plugin named echo"), "{err}");
}

#[test]
fn a_plugin_author_invokes_a_local_component_without_a_server() {
    let cli = Cli::new();
    let echo = copy_plugin(&cli, "echo");
    let out = cli.ok(&[
        "plugin",
        "invoke",
        &echo,
        "log",
        "--input",
        r#"{"message":"dev"}"#,
    ]);
    assert!(out.contains("\"logged\": true"), "{out}");
    assert!(out.contains("log  info"), "{out}");
    assert!(out.contains("stdout: stdout: dev"), "{out}");
    let out = cli.ok(&[
        "plugin",
        "invoke",
        &echo,
        "config",
        "--input",
        r#"{"key":"region"}"#,
        "--config-value",
        "region=eu-west",
        "--secret",
        "token=abcd-1234",
    ]);
    assert!(
        out.contains("\"value\": \"eu-west\"") && out.contains("\"secret_granted\": true"),
        "{out}"
    );
    // Nothing was installed by invoking a file.
    assert!(cli.ok(&["plugin", "list"]).contains("no plugins installed"));

    let rules = copy_plugin(&cli, "hostile_rule");
    let out = cli.ok(&["plugin", "invoke", &rules, "ok"]);
    assert!(out.contains("\"outcome\": \"ok\""), "{out}");
    assert!(out.contains("fuel"), "{out}");

    let text = cli.path("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    let err = cli.fails(&["plugin", "install", text.to_str().unwrap()]);
    assert!(err.contains("not a WebAssembly file"), "{err}");
}
