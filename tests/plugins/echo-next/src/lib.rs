//! `echo` 0.2.0: the upgrade used by the registry tests. It requests secret `api-key`
//! on top of what 0.1.0 requests, so it must run without it until the admin grants it.

use baton_sdk::prelude::*;

baton_sdk::connector! {
    name: "echo", version: "0.2.0", description: "Returns what it is given (next version)",
    hosts: ["*"], secrets: ["token", "api-key"],
    actions: {
        "echo" => echo: "Return the message unchanged",
        "secrets" => secrets: "Name the requested secrets this call can read",
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

/// Names of the secrets visible to the plugin, sorted.
#[derive(Serialize, JsonSchema)]
pub struct Visible {
    /// Secret names.
    pub visible: Vec<String>,
}

fn secrets(_ctx: &Call, _input: Empty) -> Result<Visible, Failure> {
    let visible = ["api-key", "token"]
        .into_iter()
        .filter(|name| baton_sdk::config::secret(name).is_some())
        .map(str::to_owned)
        .collect();
    Ok(Visible { visible })
}
