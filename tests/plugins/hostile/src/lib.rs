//! `hostile`: a connector that misbehaves on purpose, for Baton's sandbox tests.
//! Built only for tests; never install it anywhere else.

use std::hint::black_box;

use baton_sdk::prelude::*;
use baton_sdk::{config, log};

baton_sdk::connector! {
    name: "hostile", version: "0.1.0", description: "Misbehaves on purpose, for sandbox tests",
    hosts: ["allowed.test"], secrets: ["token"],
    actions: {
        "loop" => spin: "Loop forever",
        "alloc" => alloc: "Allocate memory without end",
        "stack-overflow" => stack_overflow: "Recurse without end",
        "trap" => trap: "Execute `unreachable`",
        "panic" => panic: "Panic",
        "big-output" => big_output: "Return a string of `bytes` bytes",
        "print-flood" => print_flood: "Print `bytes` bytes to stdout, then succeed",
        "counter" => counter: "Count calls in a static: 1 every time if instances are fresh",
        "sleep" => sleep: "Sleep for an hour (waiting in the host, not computing)",
        "http" => fetch: "GET a URL through the SDK",
        "read-file" => read_file: "Try to read a file",
        "read-env" => read_env: "Try to read an environment variable",
        "leak-secret" => leak_secret: "Try to leak secret `token` every way it can",
    }
}

/// No input.
#[derive(Deserialize, JsonSchema)]
pub struct Empty {}

type Never = Result<serde_json::Value, Failure>;

fn spin(_ctx: &Call, _input: Empty) -> Never {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn alloc(_ctx: &Call, _input: Empty) -> Never {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Non-zero fill so every page is really written.
        hoard.push(black_box(vec![1u8; 1 << 20]));
        black_box(&hoard);
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[0] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    // Not a tail call: the result is used after the call returns.
    recurse(depth + 1).wrapping_add(u64::from(frame[black_box(1)]))
}

fn stack_overflow(_ctx: &Call, _input: Empty) -> Never {
    Ok(recurse(0).into())
}

fn trap(_ctx: &Call, _input: Empty) -> Never {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort()
}

fn panic(_ctx: &Call, _input: Empty) -> Never {
    panic!("hostile panic")
}

/// How big.
#[derive(Deserialize, JsonSchema)]
pub struct BigIn {
    /// The length of the returned string, in bytes.
    pub bytes: usize,
}

fn big_output(_ctx: &Call, input: BigIn) -> Result<String, Failure> {
    Ok("x".repeat(input.bytes))
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn counter(_ctx: &Call, _input: Empty) -> Result<u32, Failure> {
    Ok(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
}

fn sleep(_ctx: &Call, _input: Empty) -> Result<u32, Failure> {
    std::thread::sleep(std::time::Duration::from_secs(3600));
    Ok(0)
}

fn print_flood(_ctx: &Call, input: BigIn) -> Result<usize, Failure> {
    let line = "y".repeat(1023);
    for _ in 0..input.bytes / 1024 {
        println!("{line}");
    }
    Ok(input.bytes)
}

/// A URL.
#[derive(Deserialize, JsonSchema)]
pub struct UrlIn {
    /// What to GET.
    pub url: String,
}

/// A response.
#[derive(Serialize, JsonSchema)]
pub struct FetchOut {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

fn fetch(_ctx: &Call, input: UrlIn) -> Result<FetchOut, Failure> {
    let response = http::get(&input.url)?;
    Ok(FetchOut {
        status: response.status,
        body: response.text(),
    })
}

/// A path.
#[derive(Deserialize, JsonSchema)]
pub struct PathIn {
    /// The file to read.
    pub path: String,
}

/// File contents.
#[derive(Serialize, JsonSchema)]
pub struct FileOut {
    /// What the file contained.
    pub contents: String,
}

fn read_file(_ctx: &Call, input: PathIn) -> Result<FileOut, Failure> {
    std::fs::read_to_string(&input.path)
        .map(|contents| FileOut { contents })
        .map_err(|e| Failure::new("io", e.to_string()))
}

/// An environment variable name.
#[derive(Deserialize, JsonSchema)]
pub struct EnvIn {
    /// The variable to read.
    pub name: String,
}

/// What the environment holds.
#[derive(Serialize, JsonSchema)]
pub struct EnvOut {
    /// The variable's value, if set.
    pub value: Option<String>,
    /// How many variables the environment has.
    pub all: usize,
}

fn read_env(_ctx: &Call, input: EnvIn) -> Result<EnvOut, Failure> {
    Ok(EnvOut {
        value: std::env::var(&input.name).ok(),
        all: std::env::vars_os().count(),
    })
}

/// How to leak.
#[derive(Deserialize, JsonSchema)]
pub struct LeakIn {
    /// Leak through a failure message instead of the output.
    #[serde(default)]
    pub as_failure: bool,
}

/// The leaked secret.
#[derive(Serialize, JsonSchema)]
pub struct LeakOut {
    /// The value of secret `token`, if granted.
    pub secret: Option<String>,
}

fn leak_secret(_ctx: &Call, input: LeakIn) -> Result<LeakOut, Failure> {
    let secret = config::secret("token");
    let shown = secret.as_deref().unwrap_or("<not granted>");
    log::info(&format!("the secret is {shown}"));
    println!("the secret is {shown}");
    eprintln!("the secret is {shown}");
    if input.as_failure {
        return Err(Failure::new("leak", format!("the secret is {shown}"))
            .with_details(serde_json::json!({ "secret": secret })));
    }
    Ok(LeakOut { secret })
}
