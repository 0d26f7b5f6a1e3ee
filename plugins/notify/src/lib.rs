//! `notify`: tells people what happened, in chat (a Slack-compatible incoming webhook)
//! and by mail (a SendGrid-style API), as `examples/invoice/SYSTEMS.md` describes.
//! See README.md.

use baton_sdk::config;
use baton_sdk::http::{Method, Request, endpoint};
use baton_sdk::prelude::*;
use serde_json::{Value, json};

baton_sdk::connector! {
    name: "notify", version: "0.1.0",
    description: "Notifications: chat messages (Slack-compatible webhook) and e-mail (SendGrid-style API)",
    hosts: ["*"], secrets: ["mail-api-key"],
    actions: {
        "send-chat" => send_chat: "Post a message to the team's chat channel",
        "send-email" => send_email: "Send a plain-text e-mail",
    }
}

/// A chat message.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChatIn {
    /// The message (Slack `mrkdwn` is passed through as it is).
    pub text: String,
    /// A channel to post to instead of the webhook's own, e.g. `#finance` (webhooks
    /// that do not allow overriding ignore it).
    #[serde(default)]
    pub channel: Option<String>,
}

/// The chat service took the message.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
pub struct ChatOut {
    /// Always `true`: failures are failures.
    pub delivered: bool,
}

/// A plain-text e-mail.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EmailIn {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The body, plain text.
    pub text: String,
}

/// The mail service accepted the message for delivery.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
pub struct EmailOut {
    /// Always `true`: failures are failures.
    pub accepted: bool,
}

fn send_chat(_ctx: &Call, input: ChatIn) -> Result<ChatOut, Failure> {
    if input.text.trim().is_empty() {
        return Err(Failure::invalid_input("`text` must not be empty"));
    }
    let webhook = config::require_str("chat_webhook_url")?;
    let response = Request::new(Method::Post, webhook)
        .json(&chat_body(&input))
        .send()
        .map_err(|e| e.upstream_failure("the chat webhook"))?;
    response.success("the chat webhook")?;
    Ok(ChatOut { delivered: true })
}

/// Slack's incoming-webhook body: `{"text"}`, plus `channel` when given.
fn chat_body(input: &ChatIn) -> Value {
    let mut body = json!({ "text": input.text });
    if let Some(channel) = input.channel.as_deref().filter(|c| !c.trim().is_empty()) {
        body["channel"] = json!(channel.trim());
    }
    body
}

fn send_email(_ctx: &Call, input: EmailIn) -> Result<EmailOut, Failure> {
    if !looks_like_address(&input.to) {
        return Err(Failure::invalid_input(format!(
            "`to` must be an e-mail address, got `{}`",
            input.to
        )));
    }
    let base_url = config::require_str("mail_base_url")?;
    let from = config::require_str("mail_from")?;
    let api_key = config::require_secret("mail-api-key")?;
    let response = Request::new(Method::Post, endpoint(&base_url, "/v3/mail/send"))
        .bearer(&api_key)
        .json(&mail_body(&input, &from))
        .send()
        .map_err(|e| e.upstream_failure("the mail service"))?;
    response.success("the mail service")?;
    Ok(EmailOut { accepted: true })
}

/// The SendGrid v3 `mail/send` body. `from` is `address` or `Name <address>`.
fn mail_body(input: &EmailIn, from: &str) -> Value {
    let from = match from.rsplit_once('<') {
        Some((name, rest)) if rest.trim_end().ends_with('>') => {
            let email = rest.trim_end().trim_end_matches('>').trim();
            let name = name.trim().trim_matches('"').trim();
            if name.is_empty() {
                json!({ "email": email })
            } else {
                json!({ "email": email, "name": name })
            }
        }
        _ => json!({ "email": from.trim() }),
    };
    json!({
        "personalizations": [{ "to": [{ "email": input.to.trim() }] }],
        "from": from,
        "subject": input.subject,
        "content": [{ "type": "text/plain", "value": input.text }],
    })
}

/// One `@` with something on both sides and no spaces: enough to catch a wrong field.
fn looks_like_address(text: &str) -> bool {
    let text = text.trim();
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> EmailIn {
        EmailIn {
            to: "alice@example.com".into(),
            subject: "Invoice INV-1 was rejected".into(),
            text: "Prices differ.".into(),
        }
    }

    #[test]
    fn chat_bodies_are_slack_webhook_bodies() {
        let mut input = ChatIn {
            text: "Invoice posted".into(),
            channel: None,
        };
        assert_eq!(chat_body(&input), json!({ "text": "Invoice posted" }));
        input.channel = Some(" #finance ".into());
        assert_eq!(
            chat_body(&input),
            json!({ "text": "Invoice posted", "channel": "#finance" })
        );
    }

    #[test]
    fn mail_bodies_are_sendgrid_bodies() {
        let body = mail_body(&email(), "Baton <baton@example.com>");
        assert_eq!(
            body,
            json!({
                "personalizations": [{ "to": [{ "email": "alice@example.com" }] }],
                "from": { "email": "baton@example.com", "name": "Baton" },
                "subject": "Invoice INV-1 was rejected",
                "content": [{ "type": "text/plain", "value": "Prices differ." }],
            })
        );
        assert_eq!(
            mail_body(&email(), "baton@example.com")["from"],
            json!({ "email": "baton@example.com" })
        );
        assert_eq!(
            mail_body(&email(), "<baton@example.com>")["from"],
            json!({ "email": "baton@example.com" })
        );
    }

    #[test]
    fn addresses_are_checked_loosely() {
        assert!(looks_like_address("alice@example.com"));
        assert!(!looks_like_address("alice"));
        assert!(!looks_like_address("@example.com"));
        assert!(!looks_like_address("a b@example.com"));
        assert!(!looks_like_address("a@b@c"));
    }

    #[test]
    fn failed_deliveries_are_failures() {
        let r = |status: u16| baton_sdk::http::Response {
            status,
            headers: vec![],
            body: b"no_service".to_vec(),
        };
        assert!(r(200).success("x").is_ok());
        assert!(r(202).success("x").is_ok());
        let f = r(404).success("the chat webhook").unwrap_err();
        assert_eq!(f.message, "the chat webhook answered 404: no_service");
        assert!(r(500).success("x").unwrap_err().retryable);
    }

    #[test]
    fn missing_config_is_named() {
        let call = Call::default();
        let f = BatonPlugin::invoke(&call, "send-chat", r#"{"text": "hi"}"#).unwrap_err();
        assert_eq!(f.code, "invalid_config");
        assert!(f.message.contains("`chat_webhook_url`"), "{f}");
        let f = BatonPlugin::invoke(
            &call,
            "send-email",
            r#"{"to": "a@example.com", "subject": "s", "text": "t"}"#,
        )
        .unwrap_err();
        assert_eq!(f.details, Some(json!({ "key": "mail_base_url" })));
        let f = BatonPlugin::invoke(
            &call,
            "send-email",
            r#"{"to": "a", "subject": "s", "text": "t"}"#,
        )
        .unwrap_err();
        assert_eq!(f.code, "invalid_input");
    }
}
