//! Command-line parsing and dispatch. Commands parse arguments, call the library and
//! print; none of them holds logic of its own.

mod keys;
mod plugin;
mod print;

use anyhow::{Context, Result};
use baton::config::{CONFIG_FILE, Config};
use baton::registry::Registry;
use baton::runtime::{Runtime, RuntimeConfig};
use baton::store::Store;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Baton: the execution layer for business workflows.
#[derive(Parser, Debug)]
#[command(name = "baton", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory: the redb database and the config file live here.
    #[arg(long, global = true, env = "BATON_DATA", default_value = "baton-data")]
    data: PathBuf,
    /// Config file [default: DATA/baton.toml].
    #[arg(long, global = true, env = "BATON_CONFIG")]
    config: Option<PathBuf>,
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
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let context = DataDir::new(cli.data, cli.config);
    match cli.command {
        Command::Keygen(args) => keys::keygen(args),
        Command::Plugin(command) => plugin::run(&context, command),
    }
}

/// Where the command's data lives; opened lazily because some commands need none.
pub(crate) struct DataDir {
    data: PathBuf,
    config: Option<PathBuf>,
}

impl DataDir {
    fn new(data: PathBuf, config: Option<PathBuf>) -> Self {
        DataDir { data, config }
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
