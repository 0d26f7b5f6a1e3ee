//! `baton-standins`: deterministic stand-ins for the systems the invoice flow talks to (an
//! ERP, an OpenAI-compatible LLM, a payment service, a chat and mail sink), each on its
//! own port. The contract they keep is `examples/invoice/SYSTEMS.md`.

mod erp;
mod http;
mod invoice_text;
mod llm;
mod payments;
mod sink;
mod state;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Deterministic stand-ins for an ERP, an LLM, a payment service and a chat/mail sink.
/// Prints one JSON line with their base URLs once all four listen.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen_host: String,
    /// Port of the ERP (0: the OS picks).
    #[arg(long, default_value_t = 0)]
    erp_port: u16,
    /// Port of the LLM (0: the OS picks).
    #[arg(long, default_value_t = 0)]
    llm_port: u16,
    /// Port of the payment service (0: the OS picks).
    #[arg(long, default_value_t = 0)]
    payments_port: u16,
    /// Port of the chat and mail sink (0: the OS picks).
    #[arg(long, default_value_t = 0)]
    sink_port: u16,
    /// Keep posted invoices, payments and messages as JSON files in DIR.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// ERP vendors, purchase orders and receipts (default: the built-in demo seed).
    #[arg(long, value_name = "FILE")]
    erp_seed: Option<PathBuf>,
    /// Misread FIELD as VALUE for VENDOR's invoices ('VENDOR:FIELD=VALUE'; repeatable).
    #[arg(long, value_name = "VENDOR:FIELD=VALUE")]
    misread: Vec<llm::Misread>,
    /// Start with the ERP unavailable for this PO (repeatable).
    #[arg(long, value_name = "PO")]
    erp_outage: Vec<String>,
    /// The bearer key the LLM, ERP, payment service and mail API accept.
    #[arg(long, default_value = "demo-key")]
    api_key: String,
    /// Exit when standard input reaches end of file (so the stand-ins die with their parent).
    #[arg(long)]
    exit_with_stdin: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let state = state::State::load(args.state.as_deref())?;
    let seed = erp::Seed::load(args.erp_seed.as_deref())?;
    let key: Arc<str> = args.api_key.as_str().into();
    let auth = http::Auth {
        key: key.clone(),
        style: http::ErrorStyle::Plain,
    };

    let erp = Arc::new(erp::Erp::new(seed, Arc::new(state.erp), &args.erp_outage));
    let llm = Arc::new(llm::Llm::new(args.misread));
    let routers = [
        ("erp", args.erp_port, erp::router(erp, &auth), ""),
        ("llm", args.llm_port, llm::router(llm, key), "/v1"),
        (
            "payments",
            args.payments_port,
            payments::router(Arc::new(state.payments), &auth),
            "",
        ),
        (
            "sink",
            args.sink_port,
            sink::router(Arc::new(state.messages), &auth),
            "",
        ),
    ];

    // Bind all four before announcing any, so a reader of the line can use them at once.
    let mut bound: Vec<(TcpListener, Router)> = Vec::new();
    let mut urls = serde_json::Map::new();
    for (name, port, router, suffix) in routers {
        let listener = TcpListener::bind((args.listen_host.as_str(), port))
            .await
            .with_context(|| format!("{name}: binding {}:{port}", args.listen_host))?;
        let address = reachable(listener.local_addr()?);
        urls.insert(name.into(), format!("http://{address}{suffix}").into());
        bound.push((
            listener,
            router.layer(axum::middleware::from_fn(http::read_whole_body)),
        ));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::Value::Object(urls))?;
    stdout.flush()?;
    drop(stdout);

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(on_signal(stop.clone()));
    if args.exit_with_stdin {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            shut_down(&stop);
        });
    }

    let servers: Vec<_> = bound
        .into_iter()
        .map(|(listener, router)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        })
        .collect();
    for server in servers {
        server.await??;
    }
    Ok(())
}

/// The address to print: an unspecified listen address (`0.0.0.0`) is reached as loopback.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// Waits for SIGINT or SIGTERM, then shuts down.
async fn on_signal(stop: watch::Sender<bool>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    shut_down(&stop);
}

/// Asks the servers to finish; a client holding a connection open cannot keep the
/// process alive for more than a few seconds after that.
fn shut_down(stop: &watch::Sender<bool>) {
    let _ = stop.send(true);
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(3));
        std::process::exit(0);
    });
}
