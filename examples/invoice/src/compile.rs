//! Building what the demo runs, with the cargo that runs the demo.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first-party plugins the invoice workflow uses: (package, component file stem).
const PLUGINS: &[(&str, &str)] = &[
    ("plugin-ai-extract", "ai_extract"),
    ("plugin-erp", "erp"),
    ("plugin-invoice-rules", "invoice_rules"),
    ("plugin-payments", "payments"),
    ("plugin-notify", "notify"),
];

/// Paths of the built programs and components.
pub struct Built {
    pub baton: PathBuf,
    pub standins: PathBuf,
    /// (component file stem, path of the `.wasm`)
    pub plugins: Vec<(String, PathBuf)>,
}

/// The workspace this demo belongs to.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("examples/invoice sits two levels below the workspace")
        .to_owned()
}

/// `examples/invoice`: the workflow, the ERP seed and the sample invoices.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("`cargo {}` failed; its output is above", args.join(" "));
    }
    Ok(())
}

/// Builds `baton` and `baton-standins` (dev profile: dependencies are optimised there)
/// and the plugin components (the small, optimised `plugin` profile).
pub fn build_all() -> Result<Built> {
    cargo(&["build", "-p", "baton", "-p", "baton-standins"])?;
    let mut args = vec!["build", "--target", "wasm32-wasip2", "--profile", "plugin"];
    for (package, _) in PLUGINS {
        args.extend(["-p", package]);
    }
    cargo(&args)?;
    Ok(paths())
}

/// What [`build_all`] would build, which must already be there.
pub fn already_built() -> Result<Built> {
    let built = paths();
    let all = [&built.baton, &built.standins]
        .into_iter()
        .chain(built.plugins.iter().map(|(_, wasm)| wasm));
    for path in all {
        if !path.exists() {
            bail!(
                "--no-build: {} is missing; run without --no-build",
                path.display()
            );
        }
    }
    Ok(built)
}

fn paths() -> Built {
    let target = target_dir();
    Built {
        baton: target.join("debug/baton"),
        standins: target.join("debug/baton-standins"),
        plugins: PLUGINS
            .iter()
            .map(|(_, stem)| {
                let wasm = target.join(format!("wasm32-wasip2/plugin/{stem}.wasm"));
                (stem.to_string(), wasm)
            })
            .collect(),
    }
}
