//! `invoice-demo`: the README's first Quick start command.
//!
//! It builds Baton, the stand-ins and the first-party plugins, starts the stand-ins and
//! `baton serve` on a data directory, installs the plugins signed with a demo publisher
//! key, grants them their hosts and secrets, applies the invoice workflow, submits the
//! sample batch, prints where every invoice stands, and keeps serving until Ctrl-C.
//! Everything after the build goes through the real `baton` CLI against the server,
//! and the demo prints each command, so it doubles as a walk-through.
//!
//! Running it again reuses the data directory: plugins, workflow versions, tokens and
//! runs are all idempotent, so nothing is duplicated.

mod batch;
mod cli;
mod compile;
mod processes;
mod setup;

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    about = "Run the invoice demo: stand-ins, `baton serve`, plugins, workflow and a batch of 20 invoices"
)]
struct Args {
    /// Data directory of `baton serve` (the demo's own files go to DATA/demo).
    #[arg(long, default_value = "baton-data")]
    data: PathBuf,
    /// Address `baton serve` listens on (`127.0.0.1:0` lets the OS pick a port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Submit only these invoices of the batch (comma-separated ids, e.g. INV-1001).
    #[arg(long, value_delimiter = ',')]
    invoices: Vec<String>,
    /// How long to wait for the submitted runs to finish or stop for a person.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    settle_timeout: Duration,
    /// Stop everything after the summary instead of serving until Ctrl-C.
    #[arg(long)]
    exit_after_summary: bool,
    /// Use what an earlier build left in the target directory instead of running cargo
    /// (the tests build everything themselves).
    #[arg(long)]
    no_build: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let example = compile::example_dir();
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;
    let data = args.data.canonicalize()?;
    let demo = data.join("demo");
    std::fs::create_dir_all(&demo)?;

    let built = if args.no_build {
        compile::already_built()?
    } else {
        println!("== Building Baton, the stand-ins and the plugins (cargo; a no-op when fresh)");
        compile::build_all()?
    };

    println!("== Starting the stand-ins and `baton serve`");
    let key = setup::publisher_key(&built.baton, &demo)?;
    setup::write_config(&data, &key)?;
    let standins = processes::StandIns::start(&built.standins, &demo, &example)?;
    let mut server = processes::Server::start(&built.baton, &data, &args.listen, &demo)?;
    println!(
        "   baton serve: {} (pid {}, log {})",
        server.url,
        server.pid(),
        server.log.display()
    );
    for (name, url) in standins.urls() {
        println!("   {name:<9} {url}");
    }

    let admin = cli::Cli::new(&built.baton, &server.url, &data.join("admin.token"));
    println!("== The commands below talk to the server as the admin, as if after");
    println!(
        "   $ export BATON_SERVER={} BATON_TOKEN_FILE={}",
        server.url,
        data.join("admin.token").display()
    );
    println!("== Installing the plugins, signed by the demo publisher");
    setup::install_plugins(&admin, &built.plugins, &key, &demo)?;
    setup::grant_plugins(&admin, &standins, &example)?;
    println!("== People and their tokens");
    let people = setup::people(&admin, &demo)?;
    println!("== Applying the workflow");
    admin.run(&[
        "workflow",
        "apply",
        &example.join("workflow.yaml").to_string_lossy(),
    ])?;

    println!("== Submitting the batch");
    let intake = admin.as_token_file(&people.join("intake.token"));
    let submitted = batch::submit(&intake, &example, &args.invoices)?;
    let summary = batch::settle(&admin, &submitted, args.settle_timeout, &mut server)?;
    print!("{summary}");

    println!();
    println!(
        "Baton API:    {}   (OpenAPI: {}/openapi.json)",
        server.url, server.url
    );
    println!(
        "Console:      {}/   (sign in with a token below; alice's inbox has the reviews)",
        server.url
    );
    println!("Admin token:  {}", data.join("admin.token").display());
    println!(
        "People:       {} (alice reviews, maria and omar approve, intake submits)",
        people.display()
    );
    println!("Work alice's inbox:");
    println!(
        "  BATON_TOKEN=$(cat {}) {} --server {} task list",
        people.join("alice.token").display(),
        built.baton.display(),
        server.url
    );

    if args.exit_after_summary {
        server.stop();
        return Ok(());
    }
    println!();
    println!("Serving until Ctrl-C.");
    processes::wait_for_stop(&mut server)?;
    println!("Stopping.");
    server.stop();
    drop(standins);
    Ok(())
}
