//! Command-line parsing and dispatch. Commands parse arguments, call the library and
//! print; none of them holds logic of its own.

mod audit;
mod keys;
mod people;
mod plugin;
mod print;
mod remote;
mod run;
mod scaffold;
mod serve;
mod workflow;

use anyhow::{Context, Result};
use baton::config::{CONFIG_FILE, Config};
use baton::engine::{Engine, Recovery};
use baton::registry::Registry;
use baton::runtime::{Runtime, RuntimeConfig};
use baton::store::Store;
use clap::{Parser, Subcommand};
use remote::Remote;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Baton: the execution layer for business workflows.
#[derive(Parser, Debug)]
#[command(name = "baton", version, about)]
pub struct Cli {
    /// Data directory: the redb database and the config file live here.
    #[arg(long, global = true, env = "BATON_DATA", default_value = "baton-data")]
    data: PathBuf,
    /// Config file [default: DATA/baton.toml].
    #[arg(long, global = true, env = "BATON_CONFIG")]
    config: Option<PathBuf>,
    /// Talk to this running server (`http://HOST:PORT`) instead of opening the data
    /// directory. The token comes from BATON_TOKEN, else --token-file, else
    /// DATA/admin.token.
    #[arg(long, global = true, env = "BATON_SERVER")]
    server: Option<String>,
    /// File holding the API token for --server.
    #[arg(long, global = true, env = "BATON_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an ed25519 publisher key pair for signing plugins.
    Keygen(keys::KeygenArgs),
    /// Install, inspect, grant, remove, sign and invoke plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Apply and list workflow definitions.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Start, inspect and steer runs.
    #[command(subcommand)]
    Run(run::RunCommand),
    /// Send external events to waiting runs.
    #[command(subcommand)]
    Event(run::EventCommand),
    /// Run the workflow engine on the data directory until no run has work left.
    Worker(run::WorkerArgs),
    /// Work your inbox of human tasks: list, claim, unclaim, complete.
    #[command(subcommand)]
    Task(people::TaskCommand),
    /// Work the exception queue: list, retry, resolve, skip, abort.
    #[command(subcommand)]
    Exception(people::ExceptionCommand),
    /// Check and export the hash-chained audit logs.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Serve the HTTP API (and run the engine) on the data directory.
    Serve(serve::ServeArgs),
    /// Create, list and revoke API tokens (over HTTP with --server; otherwise with the
    /// server stopped).
    #[command(subcommand)]
    Token(serve::TokenCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let context = DataDir {
        data: cli.data,
        config: cli.config,
        server: cli.server,
        token_file: cli.token_file,
    };
    match cli.command {
        Command::Keygen(args) => keys::keygen(args),
        Command::Plugin(command) => plugin::run(&context, command),
        Command::Workflow(command) => workflow::run(&context, command),
        Command::Run(command) => run::run(&context, command),
        Command::Event(command) => run::event(&context, command),
        Command::Worker(args) => run::worker(&context, args),
        Command::Task(command) => people::task(&context, command),
        Command::Exception(command) => people::exception(&context, command),
        Command::Audit(command) => audit::run(&context, command),
        Command::Serve(args) => serve::serve(&context, args),
        Command::Token(command) => serve::token(&context, command),
    }
}

/// Where the command's data lives (a data directory, or a server with `--server`);
/// opened lazily because some commands need none.
pub(crate) struct DataDir {
    data: PathBuf,
    config: Option<PathBuf>,
    server: Option<String>,
    token_file: Option<PathBuf>,
}

impl DataDir {
    /// The server to talk to, when `--server` names one.
    fn remote(&self) -> Result<Option<Remote>> {
        self.server
            .as_deref()
            .map(|server| Remote::new(server, self.token_file.as_deref(), &self.data))
            .transpose()
    }

    fn data(&self) -> &Path {
        &self.data
    }

    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| self.data.join(CONFIG_FILE))
    }

    fn config(&self) -> Result<Config> {
        Ok(Config::load(&self.config_path())?)
    }

    /// The registry over the data directory (created if missing).
    fn registry(&self) -> Result<Registry> {
        let config = self.config()?;
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("cannot create data directory {}", self.data.display()))?;
        let store = Store::open(&database_path(&self.data))?;
        Ok(Registry::new(store, runtime()?, config))
    }

    /// The workflow engine over the data directory. Call inside [`block_on`].
    fn engine(&self, recovery: Recovery) -> Result<Engine> {
        Ok(Engine::start(Arc::new(self.registry()?), recovery)?)
    }
}

/// Text from a command-line argument: `-` reads stdin, `@FILE` a file, anything else
/// is the text itself.
pub(crate) fn read_input(arg: &str) -> Result<String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read stdin")?;
        Ok(text)
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read input file {path}"))
    } else {
        Ok(arg.to_owned())
    }
}

/// A JSON argument (see [`read_input`]); `what` names it in the error.
pub(crate) fn read_json(arg: &str, what: &str) -> Result<serde_json::Value> {
    let text = read_input(arg)?;
    serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON"))
}

/// Who a person acting from this command line is.
pub(crate) fn local_actor() -> String {
    std::env::var("USER")
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

/// Records in the system audit log that the person at this command line did `action`.
pub(crate) fn record(
    store: &Store,
    action: &str,
    target: &str,
    detail: Option<serde_json::Value>,
) -> Result<()> {
    baton::engine::audit::record(store, &local_actor(), action, target, detail)
        .context("cannot record the action in the audit log")
}

/// A person acting from this command line on the data directory itself: they hold the
/// database, so they act as an admin.
pub(crate) fn local_person() -> baton::engine::task::Person {
    baton::engine::task::Person {
        actor: local_actor(),
        user: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        role: "admin".into(),
    }
}

fn database_path(data: &Path) -> PathBuf {
    data.join("baton.redb")
}

fn runtime() -> Result<Arc<Runtime>> {
    Ok(Arc::new(Runtime::new(&RuntimeConfig::default())?))
}

/// Runs a future to completion on a fresh tokio runtime (the CLI is one-shot).
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(future)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
