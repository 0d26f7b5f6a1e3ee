//! `baton plugin new connector|rule NAME [--lang rust|js|python]`: a plugin project
//! that builds out of the box (and, in Rust, passes its own tests).

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
    /// The language to write it in (rules: Rust only).
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// The Baton SDK folder the plugin builds with [default: the `sdk/` of the checkout
    /// this `baton` was built from].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// The language the plugin is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// A Rust crate on baton-sdk, built with cargo for wasm32-wasip2.
    Rust,
    /// An npm package on sdk/js, built with componentize-js.
    Js,
    /// A Python module on sdk/python, built with componentize-py.
    Python,
}

impl Lang {
    /// The file that marks this language's SDK inside the checkout's `sdk/` folder.
    fn sdk_marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Js => "js/package.json",
            Lang::Python => "python/build.py",
        }
    }
}

/// One file of a new plugin: where it goes and its template, with `{{name}}`, `{{lib}}`,
/// `{{sdk}}` and the kind's words to fill in.
type Template = (&'static str, &'static str);

/// Every Rust plugin's files but its source.
const RUST: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugin/Cargo.toml.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugin/gitignore.tmpl"),
    ),
];
const RUST_CONNECTOR: Template = (
    "src/lib.rs",
    include_str!("../../templates/plugin/connector.rs.tmpl"),
);
const RUST_RULE: Template = (
    "src/lib.rs",
    include_str!("../../templates/plugin/rule.rs.tmpl"),
);
const JS_CONNECTOR: &[Template] = &[
    (
        "package.json",
        include_str!("../../templates/plugin-js/package.json.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin-js/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugin-js/gitignore.tmpl"),
    ),
    (
        ".npmrc",
        include_str!("../../templates/plugin-js/npmrc.tmpl"),
    ),
    (
        "src/index.js",
        include_str!("../../templates/plugin-js/index.js.tmpl"),
    ),
];
const PYTHON_CONNECTOR: &[Template] = &[
    (
        "app.py",
        include_str!("../../templates/plugin-python/app.py.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/plugin-python/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/plugin-python/gitignore.tmpl"),
    ),
    (
        "requirements.txt",
        include_str!("../../templates/plugin-python/requirements.txt.tmpl"),
    ),
    (
        "test_app.py",
        include_str!("../../templates/plugin-python/test_app.py.tmpl"),
    ),
];

pub fn new(args: NewArgs) -> Result<()> {
    if let Some(problem) = baton::registry::name_problem(&args.name) {
        bail!("cannot create plugin `{}`: {problem}", args.name);
    }
    let files = match (args.lang, args.kind) {
        (Lang::Rust, Kind::Connector) => [RUST, &[RUST_CONNECTOR]].concat(),
        (Lang::Rust, Kind::Rule) => [RUST, &[RUST_RULE]].concat(),
        (Lang::Js, Kind::Connector) => JS_CONNECTOR.to_vec(),
        (Lang::Python, Kind::Connector) => PYTHON_CONNECTOR.to_vec(),
        (Lang::Js | Lang::Python, Kind::Rule) => bail!(
            "rules are written in Rust: a rule must be deterministic and cheap to replay, and \
             the JavaScript and Python runtimes read clocks and randomness while they start; \
             use `--lang rust`, or write a connector"
        ),
    };
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
        .filter(|p| p.join(args.lang.sdk_marker()).is_file())
        .with_context(|| {
            format!(
                "no Baton SDK at {} (it has no {}); pass --sdk PATH to the sdk/ folder of a Baton checkout",
                sdk.display(),
                args.lang.sdk_marker()
            )
        })?;
    let (kind, action, input, what, item) = match args.kind {
        Kind::Connector => (
            "connector",
            "greet",
            r#"{"name":"Ada"}"#,
            "hosts, secrets and actions",
            "action",
        ),
        Kind::Rule => (
            "rule",
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
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(template))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created {kind} plugin `{}` in {} ({:?})",
        args.name,
        dir.display(),
        args.lang
    );
    let (build, wasm) = match args.lang {
        Lang::Rust => (
            "cargo test && cargo build --release --target wasm32-wasip2".to_owned(),
            format!("target/wasm32-wasip2/release/{lib}.wasm"),
        ),
        Lang::Js => (
            "npm install && npm run build".to_owned(),
            format!("dist/{}.wasm", args.name),
        ),
        Lang::Python => (
            format!(
                "python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && \
                 .venv/bin/python {}/python/build.py app -o dist/{}.wasm",
                sdk.display(),
                args.name
            ),
            format!("dist/{}.wasm", args.name),
        ),
    };
    println!("next: cd {} && {build}", dir.display());
    println!("then: baton plugin invoke {wasm} {action} --input '{input}'");
    Ok(())
}
