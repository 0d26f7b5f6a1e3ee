//! `echo`: a minimal connector for Baton's tests and benchmarks. Each action exercises
//! one part of the plugin contract; see README.md.

use baton_sdk::feedback::Correction;
use baton_sdk::prelude::*;
use baton_sdk::{config, feedback, log};

baton_sdk::connector! {
    name: "echo", version: "0.1.0", description: "Returns what it is given",
    hosts: ["*"], secrets: ["token"],
    actions: {
        "echo" => echo: "Return the message unchanged",
        "context" => context: "Return the call context",
        "log" => log_message: "Log the message and print it to stdout and stderr",
        "config" => config_value: "Return a configuration value and whether secret `token` is granted",
        "feedback" => corrections: "Return past corrections for an action",
        "fail" => fail: "Fail with the given failure",
        "fetch" => fetch: "GET a URL and return its status and body",
    }
}

/// A message.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Any text.
    pub message: String,
}

fn echo(_ctx: &Call, input: Message) -> Result<Message, Failure> {
    Ok(input)
}

/// No input.
#[derive(Deserialize, JsonSchema)]
pub struct Empty {}

fn context(ctx: &Call, _input: Empty) -> Result<Call, Failure> {
    Ok(ctx.clone())
}

/// The answer of `log`.
#[derive(Serialize, JsonSchema)]
pub struct Logged {
    /// Always true.
    pub logged: bool,
}

fn log_message(_ctx: &Call, input: Message) -> Result<Logged, Failure> {
    log::info(&input.message);
    println!("stdout: {}", input.message);
    eprintln!("stderr: {}", input.message);
    Ok(Logged { logged: true })
}

/// Which configuration value to read.
#[derive(Deserialize, JsonSchema)]
pub struct ConfigIn {
    /// The configuration key.
    pub key: String,
}

/// A configuration value, and whether secret `token` is granted (never its value).
#[derive(Serialize, JsonSchema)]
pub struct ConfigOut {
    /// The value, or null if not set.
    pub value: Option<serde_json::Value>,
    /// Whether the secret `token` is granted.
    pub secret_granted: bool,
}

fn config_value(_ctx: &Call, input: ConfigIn) -> Result<ConfigOut, Failure> {
    Ok(ConfigOut {
        value: config::get(&input.key),
        secret_granted: config::secret("token").is_some(),
    })
}

/// Which corrections to read.
#[derive(Deserialize, JsonSchema)]
pub struct FeedbackIn {
    /// The action whose outputs were corrected.
    pub action: String,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Past corrections.
#[derive(Serialize, JsonSchema)]
pub struct FeedbackOut {
    /// Newest first.
    pub corrections: Vec<Correction>,
}

fn corrections(_ctx: &Call, input: FeedbackIn) -> Result<FeedbackOut, Failure> {
    Ok(FeedbackOut {
        corrections: feedback::corrections(&input.action, input.limit),
    })
}

fn fail(_ctx: &Call, input: Failure) -> Result<serde_json::Value, Failure> {
    Err(input)
}

/// What to fetch.
#[derive(Deserialize, JsonSchema)]
pub struct FetchIn {
    /// An http(s) URL.
    pub url: String,
}

/// The response.
#[derive(Serialize, JsonSchema)]
pub struct FetchOut {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

fn fetch(_ctx: &Call, input: FetchIn) -> Result<FetchOut, Failure> {
    let response = http::get(&input.url)?;
    Ok(FetchOut {
        status: response.status,
        body: response.text(),
    })
}
