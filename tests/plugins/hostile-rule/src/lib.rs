//! `hostile-rule`: a rule plugin that tries to break determinism or run forever, for
//! Baton's sandbox tests. Built only for tests; never install it anywhere else.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use baton_sdk::prelude::*;

baton_sdk::rule! {
    name: "hostile-rule", version: "0.1.0", description: "Misbehaving rules for sandbox tests",
    rules: {
        "loop" => spin: "Never returns" outcomes ["ok"],
        "clock" => clock: "Reports the wall clock, a random number and elapsed time" outcomes ["ok"],
        "ok" => ok: "Always ok" outcomes ["ok"],
    }
}

/// No input.
#[derive(Deserialize, JsonSchema)]
pub struct Empty {}

fn spin(_input: Empty) -> Result<Decision, Failure> {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn clock(_input: Empty) -> Result<Decision, Failure> {
    let started = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(black_box(42u64));
    let elapsed = black_box(started).elapsed().as_nanos();
    Ok(Decision::new("ok")
        .because(format!("wall clock: {wall} ns since the Unix epoch"))
        .because(format!("random: {random}"))
        .because(format!("elapsed: {elapsed} ns")))
}

fn ok(_input: Empty) -> Result<Decision, Failure> {
    Ok(Decision::new("ok").because("fine"))
}
