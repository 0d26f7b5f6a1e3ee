//! Plugins written in JavaScript and Python, built with their own ecosystems' tooling:
//! componentize-js from npm and componentize-py from PyPI.
//!
//! The tooling is installed on first use, the way a newcomer would: `npm ci` at the
//! workspace root (the lock file pins componentize-js), and a virtualenv under
//! `target/python-sdk` with `sdk/python/requirements.txt`. A file lock keeps test
//! binaries that run at the same time from installing or building at once.

use crate::{target_dir, workspace_root};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A plugin language other than Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    JavaScript,
    Python,
}

/// The component of the in-repo plugin `plugins/NAME` written in `lang`, built once per
/// process (a build takes seconds: the language's runtime is snapshotted into it).
pub fn plugin_wasm(lang: Lang, name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(Lang, String), PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(path) = built.get(&(lang, name.to_owned())) {
        return path.clone();
    }
    let dir = workspace_root().join("plugins").join(name);
    // Tooling first: it takes the lock itself when it has to install.
    let mut build = match lang {
        Lang::JavaScript => {
            let mut npm = npm();
            npm.args(["run", "--silent", "build"]);
            npm
        }
        Lang::Python => python_build(),
    };
    let _lock = tooling_lock();
    run(build.current_dir(&dir), &format!("building plugins/{name}"));
    let path = dir.join("dist").join(format!("{name}.wasm"));
    assert!(path.is_file(), "building plugins/{name} made no {path:?}");
    built.insert((lang, name.to_owned()), path.clone());
    path
}

/// `npm`, with the workspace's JavaScript tooling installed.
pub fn npm() -> Command {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let root = workspace_root();
        if !root.join("node_modules/.bin/componentize-js").exists() {
            let _lock = tooling_lock();
            if !root.join("node_modules/.bin/componentize-js").exists() {
                run(
                    Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund"])
                        .current_dir(&root),
                    "installing the JavaScript tooling (npm ci)",
                );
            }
        }
    });
    Command::new("npm")
}

/// The Python of the virtualenv that holds componentize-py.
pub fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let venv = target_dir().join("python-sdk");
            let python = venv.join("bin/python");
            let ready = |python: &Path| {
                Command::new(python)
                    .args(["-c", "import componentize_py"])
                    .output()
                    .is_ok_and(|out| out.status.success())
            };
            if !ready(&python) {
                let _lock = tooling_lock();
                if !ready(&python) {
                    run(
                        Command::new("python3").arg("-m").arg("venv").arg(&venv),
                        "creating the Python virtualenv (python3 -m venv)",
                    );
                    run(
                        Command::new(&python)
                            .args(["-m", "pip", "install", "--quiet", "-r"])
                            .arg(workspace_root().join("sdk/python/requirements.txt")),
                        "installing the Python tooling (pip install -r sdk/python/requirements.txt)",
                    );
                }
            }
            python
        })
        .clone()
}

/// The command that builds the Python plugin in the current directory into
/// `dist/NAME.wasm`.
pub fn python_build() -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(workspace_root().join("sdk/python/build.py"));
    cmd
}

/// Serialises tooling installs and builds across test processes.
fn tooling_lock() -> File {
    let dir = target_dir();
    std::fs::create_dir_all(&dir).expect("target dir");
    let file = File::create(dir.join("polyglot.lock")).expect("lock file");
    file.lock().expect("lock the tooling");
    file
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
