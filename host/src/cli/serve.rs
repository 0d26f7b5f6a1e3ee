//! `baton serve` and `baton token`.

use super::remote::{Body, segment};
use super::{DataDir, block_on, print};
use anyhow::{Context, Result};
use baton::api::auth::{Role, TokenRecord, Tokens};
use baton::api::{self, ApiLimits, AppState};
use baton::engine::Recovery;
use baton::store::Store;
use clap::{Args, Subcommand};
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: `[server] listen` in the config, else 127.0.0.1:8080].
    #[arg(long, env = "BATON_LISTEN")]
    listen: Option<String>,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(context: &DataDir, args: ServeArgs) -> Result<()> {
    let config = context.config()?;
    let listen = args.listen.unwrap_or(config.server.listen.clone());
    let limits = ApiLimits {
        max_body_bytes: config.server.max_body_kb * 1024,
        bad_requests: api::guard::BadRequestBudget {
            burst: config.server.bad_request_burst,
            per_second: config.server.bad_request_rate,
        },
        connections: api::listen::ConnectionLimits {
            header_timeout: Duration::from_millis(config.server.header_timeout_ms),
            per_address: config.server.max_connections_per_address,
        },
    };
    block_on(async move {
        let engine = context.engine(Recovery::ResumeAll)?;
        let tokens = Tokens::new(engine.store().clone());
        if let Some(path) = tokens.bootstrap(context.data())? {
            println!(
                "first start: an admin token was written to {} (mode 0600)",
                path.display()
            );
        }
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        println!("listening on http://{address}");
        std::io::stdout().flush()?;
        let (close, closing) = tokio::sync::watch::channel(false);
        baton::webhooks::start(engine.clone(), closing.clone());
        let state = AppState::new(engine, tokens, closing);
        api::serve(
            listener,
            api::router(state, &limits),
            &limits,
            close,
            shutdown_signal(),
        )
        .await?;
        println!("stopped; runs in flight continue on the next start");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and stored only as a hash.
    Create {
        /// The identity recorded for everything done with the token.
        #[arg(long)]
        user: String,
        /// admin, operator, viewer or trigger.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (ids, users, roles; never the tokens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn token(context: &DataDir, command: TokenCommand) -> Result<()> {
    let remote = context.remote()?;
    // Opened only without --server: a running server holds the database.
    let local = || -> Result<(Store, Tokens)> {
        let store = context.registry()?.store().clone();
        Ok((store.clone(), Tokens::new(store)))
    };
    match command {
        TokenCommand::Create { user, role, json } => {
            let (token, record): (String, TokenRecord) = match &remote {
                Some(remote) => {
                    let body = serde_json::json!({"user": user, "role": role});
                    let created: serde_json::Value =
                        remote.post("/v1/tokens", Body::Json(&body), &[])?;
                    (
                        created["token"].as_str().unwrap_or_default().to_owned(),
                        serde_json::from_value(created["record"].clone())?,
                    )
                }
                None => {
                    let (store, tokens) = local()?;
                    let (token, record) = tokens.create(&user, role)?;
                    super::record(
                        &store,
                        "token_created",
                        &record.id,
                        Some(serde_json::json!({"user": record.user, "role": record.role})),
                    )?;
                    (token, record)
                }
            };
            if json {
                print::json(&serde_json::json!({ "token": token, "record": record }))
            } else {
                println!("{token}");
                eprintln!(
                    "token {} for user {} with role {}: shown only now, keep it secret",
                    record.id, record.user, record.role
                );
                Ok(())
            }
        }
        TokenCommand::List { json } => {
            let list: Vec<TokenRecord> = match &remote {
                Some(remote) => remote.get("/v1/tokens")?,
                None => local()?.1.list()?,
            };
            if json {
                return print::json(&list);
            }
            for t in list {
                let state = if t.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}  {:<9} {:<8} {}", t.id, t.role, state, t.user);
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let record: TokenRecord = match &remote {
                Some(remote) => remote.delete(&format!("/v1/tokens/{}", segment(&id)))?,
                None => {
                    let (store, tokens) = local()?;
                    let record = tokens.revoke(&id)?;
                    super::record(&store, "token_revoked", &id, None)?;
                    record
                }
            };
            println!("revoked token {} of user {}", record.id, record.user);
            Ok(())
        }
    }
}
