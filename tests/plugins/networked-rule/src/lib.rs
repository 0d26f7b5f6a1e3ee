//! A rule that calls out over HTTP. It compiles (one SDK crate serves both worlds), but
//! its component imports `wasi:http`, so the host must refuse to install it: a rule
//! decision may not depend on the network.

use baton_sdk::prelude::*;

baton_sdk::rule! {
    name: "networked-rule", version: "0.1.0", description: "Asks the internet",
    rules: {
        "ask" => ask: "Decide by fetching a URL" outcomes ["ok"],
    }
}

/// Where to ask.
#[derive(Deserialize, JsonSchema)]
pub struct AskIn {
    /// A URL.
    pub url: String,
}

fn ask(input: AskIn) -> Result<Decision, Failure> {
    let response = baton_sdk::http::get(&input.url)?;
    Ok(Decision::new("ok").because(format!("status {}", response.status)))
}
