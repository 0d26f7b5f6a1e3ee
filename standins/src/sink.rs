//! The chat and mail sink: a Slack-style incoming webhook and a SendGrid-style mail API
//! that only record what they are sent, for `GET /messages`.

use crate::http::{self, Auth, json};
use crate::state::{Mailbox, Message, Persisted, Step, now_ms};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

type Book = Arc<Persisted<Mailbox>>;

/// The sink's routes: mail behind the bearer key; the chat webhook (its URL is the
/// secret) and `GET /messages` (the stand-in's own inspection) open.
pub fn router(book: Book, auth: &Auth) -> Router {
    let mail = Router::new().route("/mail/v3/mail/send", post(mail));
    auth.guard(mail)
        .route("/chat/{channel}", post(chat))
        .route("/messages", get(messages))
        .fallback(http::not_found)
        .with_state(book)
}

/// Records `message` and answers `done`, or 500 if the state file could not be written.
fn record(book: &Book, message: Message, done: Response) -> Response {
    let saved = book.update(|b| {
        b.messages.push(message);
        Step::Save(())
    });
    match saved {
        Ok(()) => done,
        Err(e) => http::error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

/// Slack answers webhook errors in plain text, e.g. `no_text`.
async fn chat(State(book): State<Book>, Path(channel): Path<String>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let text = match (&body["text"], &body["blocks"]) {
        (Value::String(text), _) => text.clone(),
        // Blocks without text are valid in Slack; keep their JSON as the text.
        (Value::Null, Value::Array(blocks)) if !blocks.is_empty() => body["blocks"].to_string(),
        _ => return (StatusCode::BAD_REQUEST, "no_text").into_response(),
    };
    let message = Message {
        kind: "chat".into(),
        to: channel,
        subject: None,
        text,
        at: now_ms(),
    };
    record(&book, message, (StatusCode::OK, "ok").into_response())
}

/// SendGrid's error shape: `{"errors": [{"message", "field"}]}`.
fn mail_error(field: &str, message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({ "errors": [{ "message": message, "field": field }] }),
    )
}

async fn mail(State(book): State<Book>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return mail_error("", "the body is not JSON");
    };
    let recipients: Vec<&str> = body["personalizations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["to"].as_array().into_iter().flatten())
        .filter_map(|to| to["email"].as_str())
        .collect();
    if recipients.is_empty() {
        return mail_error(
            "personalizations.0.to",
            "at least one recipient is required",
        );
    }
    if body["from"]["email"].as_str().is_none() {
        return mail_error("from.email", "the from address is required");
    }
    let Some(subject) = body["subject"].as_str() else {
        return mail_error("subject", "the subject is required");
    };
    let contents = body["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    // The plain-text part when there is one, else the first part.
    let text = contents
        .iter()
        .find(|c| c["type"] == "text/plain")
        .or(contents.first())
        .and_then(|c| c["value"].as_str());
    let Some(text) = text else {
        return mail_error("content", "content with a value is required");
    };
    let message = Message {
        kind: "mail".into(),
        to: recipients.join(", "),
        subject: Some(subject.to_owned()),
        text: text.to_owned(),
        at: now_ms(),
    };
    record(&book, message, StatusCode::ACCEPTED.into_response())
}

async fn messages(State(book): State<Book>) -> Response {
    let messages = book.read(|b| b.messages.clone());
    json(StatusCode::OK, json!({ "messages": messages }))
}
