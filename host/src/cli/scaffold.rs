//! `baton plugin new connector|rule NAME`: a plugin crate that builds and passes its
//! own tests out of the box.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// The kind of plugin to create.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// Actions that reach other systems (HTTP, secrets, config).
    Connector,
    /// Deterministic decisions with outcomes; no network, metered by fuel.
    Rule,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    kind: Kind,
    /// The plugin's name: 1-64 characters of a-z, 0-9 and `-`.
    name: String,
    /// Where to create the crate [default: ./NAME].
    #[arg(long)]
    path: Option<PathBuf>,
    /// The Baton SDK crate the plugin depends on [default: the `sdk/` of the checkout
    /// this `baton` was built from].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

// Templates, with `{{name}}`, `{{lib}}`, `{{sdk}}` and the kind's words to fill in.
const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.tmpl");
const README: &str = include_str!("../../templates/plugin/README.md.tmpl");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.tmpl");
const CONNECTOR: &str = include_str!("../../templates/plugin/connector.rs.tmpl");
const RULE: &str = include_str!("../../templates/plugin/rule.rs.tmpl");

pub fn new(args: NewArgs) -> Result<()> {
    if let Some(problem) = baton::registry::name_problem(&args.name) {
        bail!("cannot create plugin `{}`: {problem}", args.name);
    }
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} already exists and is not empty; choose another --path",
            dir.display()
        );
    }
    let sdk = match args.sdk {
        Some(sdk) => sdk,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = sdk
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "no Baton SDK crate at {}; pass --sdk PATH to the sdk/ folder of a Baton checkout",
                sdk.display()
            )
        })?;
    let (kind, source, action, input, what, item) = match args.kind {
        Kind::Connector => (
            "connector",
            CONNECTOR,
            "greet",
            r#"{"name":"Ada"}"#,
            "hosts, secrets and actions",
            "action",
        ),
        Kind::Rule => (
            "rule",
            RULE,
            "within-limit",
            r#"{"total":90,"limit":100}"#,
            "rules and their outcomes",
            "rule",
        ),
    };
    let lib = args.name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", &args.name)
            .replace("{{lib}}", &lib)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{kind}}", kind)
            .replace("{{action}}", action)
            .replace("{{input}}", input)
            .replace("{{what}}", what)
            .replace("{{item}}", item)
    };
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("README.md", README),
        (".gitignore", GITIGNORE),
        ("src/lib.rs", source),
    ];
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(template))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("created {kind} plugin `{}` in {}", args.name, dir.display());
    println!(
        "next: cd {} && cargo test && cargo build --release --target wasm32-wasip2",
        dir.display()
    );
    println!(
        "then: baton plugin invoke target/wasm32-wasip2/release/{lib}.wasm {action} --input '{input}'"
    );
    Ok(())
}
