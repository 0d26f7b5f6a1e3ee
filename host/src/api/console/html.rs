//! Building blocks every console page uses: times, durations, JSON, status badges,
//! action forms, and forms generated from a JSON Schema.

use crate::url::segment;
use maud::{Markup, PreEscaped, html};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// A point in time: the UTC date and time, and how long ago (or ahead) it is.
pub fn time(ms: u64) -> Markup {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let shown = stamp.replace('T', " ").replace('Z', " UTC");
    html! { time datetime=(stamp) title=(shown) { (shown) " " span.muted { "(" (relative(ms, crate::engine::duration::now_ms())) ")" } } }
}

/// `ms` relative to `now`: `12 s ago`, `in 3 min`.
pub fn relative(ms: u64, now: u64) -> String {
    let (span, future) = if ms > now {
        (ms - now, true)
    } else {
        (now - ms, false)
    };
    let secs = span / 1000;
    let text = match secs {
        0 => return "just now".into(),
        1..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A duration for people: `840 µs`, `3.2 ms`, `1.4 s`, `2 min 5 s`.
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..=999 => format!("{us} µs"),
        1000..=999_999 => format!("{:.1} ms", us as f64 / 1000.0),
        1_000_000..=59_999_999 => format!("{:.1} s", us as f64 / 1e6),
        _ => format!("{} min {} s", us / 60_000_000, (us / 1_000_000) % 60),
    }
}

/// JSON, pretty-printed in a `<pre>`.
pub fn json(value: &Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { code { (text) } } }
}

/// JSON in a collapsed section titled `summary`.
pub fn json_details(summary: &str, value: &Value) -> Markup {
    html! { details { summary { (summary) } (json(value)) } }
}

/// A status as a coloured badge (`running`, `failed`, `escalated`, …).
pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge status-" (status) } { (status) } }
}

/// A form the console's script sends as JSON to the API route `api` (`POST /v1/…`).
/// Its fields are `fields`; its buttons are `buttons` (a button's `name`/`value`
/// becomes a field too). With `refusal`, the controls are disabled and say why; the
/// API refuses the request anyway.
pub fn action_form(api: &str, refusal: Option<&str>, fields: Markup, buttons: Markup) -> Markup {
    html! {
        form.action data-api=(api) {
            fieldset disabled[refusal.is_some()] title=[refusal] {
                (fields)
                div.buttons { (buttons) }
            }
            @if let Some(refusal) = refusal { p.muted.refusal { (refusal) } }
            p.form-status role="alert" {}
        }
    }
}

/// The API route of an action on one step of a run (a task's, an exception's):
/// `POST /v1/{queue}/{run}/{path}/{action}`, for [`action_form`].
pub fn step_action(queue: &str, run: &str, path: &str, action: &str) -> String {
    format!(
        "POST /v1/{queue}/{}/{}/{action}",
        segment(run),
        segment(path)
    )
}

/// A labelled JSON text area named `name`, holding `value` pretty-printed.
pub fn json_field(id: &str, name: &str, label: &str, value: Option<&Value>) -> Markup {
    let text = value
        .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
        .unwrap_or_default();
    let rows = text.lines().count().clamp(3, 16);
    html! {
        label for=(id) { (label) }
        textarea #(id) name=(name) data-json rows=(rows) spellcheck="false" { (text) }
    }
}

/// Labelled fields for an object described by the JSON Schema `schema`, named
/// `prefix.PROPERTY` and filled from `values`. Properties the schema lacks but
/// `values` has get a field too (typed by their value). With `original`, each field
/// shows beside it what the AI produced and remembers it (`data-original`), so the
/// script can tell a correction from an acceptance.
pub fn schema_fields(
    id: &str,
    prefix: &str,
    schema: Option<&Value>,
    values: Option<&Value>,
    original: Option<&Value>,
) -> Markup {
    let properties = schema.and_then(|s| s["properties"].as_object());
    let required: Vec<&str> = schema
        .and_then(|s| s["required"].as_array())
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<String> = properties
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for key in values
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|o| o.keys())
    {
        if !names.contains(key) {
            names.push(key.clone());
        }
    }
    html! {
        div.fields {
            @for name in &names {
                @let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
                @let value = values.and_then(|v| v.get(name));
                @let was = original.and_then(|v| v.get(name));
                @let field_id = format!("{id}-{}", segment(name));
                div.field {
                    label for=(field_id) {
                        (property["title"].as_str().unwrap_or(name))
                        @if required.contains(&name.as_str()) { " " abbr title="required" { "*" } }
                    }
                    (input(&field_id, &format!("{prefix}.{name}"), property, value, required.contains(&name.as_str()), was))
                    @if let Some(help) = property["description"].as_str() { small.muted { (help) } }
                    @if let Some(was) = was {
                        small.original { "AI read: " code { (compact(was)) } }
                    }
                }
            }
        }
    }
}

/// The input for one schema property.
fn input(
    id: &str,
    name: &str,
    property: &Value,
    value: Option<&Value>,
    required: bool,
    original: Option<&Value>,
) -> Markup {
    let kind = property["type"]
        .as_str()
        .or_else(|| value.map(value_type))
        .unwrap_or("string");
    let original = original.map(|v| v.to_string());
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) if matches!(kind, "object" | "array") => {
            serde_json::to_string_pretty(v).unwrap_or_default()
        }
        Some(v) => v.to_string(),
    };
    if let Some(choices) = property["enum"].as_array() {
        // Choices that are not all strings travel as JSON, so `2` stays a number.
        let as_json = choices.iter().any(|c| !c.is_string());
        let current = value.map(|v| if as_json { v.to_string() } else { text.clone() });
        return html! {
            select #(id) name=(name) required[required] data-json[as_json] data-original=[original] {
                @if !required { option value="" { "—" } }
                @for choice in choices {
                    @let shown = compact(choice);
                    @let sent = if as_json { choice.to_string() } else { shown.clone() };
                    option value=(sent) selected[Some(&sent) == current.as_ref()] { (shown) }
                }
            }
        };
    }
    match kind {
        "boolean" => html! {
            input #(id) type="checkbox" name=(name) checked[value == Some(&Value::Bool(true))]
                data-original=[original];
        },
        "integer" | "number" => html! {
            input #(id) type="number" name=(name) value=(text) required[required]
                step=(if kind == "integer" { "1" } else { "any" }) data-original=[original];
        },
        "object" | "array" => html! {
            textarea #(id) name=(name) data-json rows="4" spellcheck="false" required[required]
                data-original=[original] { (text) }
        },
        _ => html! {
            input #(id) type="text" name=(name) value=(text) required[required]
                data-original=[original];
        },
    }
}

fn value_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        _ => "string",
    }
}

/// A value on one line, strings without quotes.
pub fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How a serde enum names itself (`escalated`, `warn`).
pub fn label(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Trusted markup (the step graph, built and escaped by [`super::graph`]).
pub fn trusted(svg: String) -> Markup {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_naturally() {
        assert_eq!(relative(10_000, 10_500), "just now");
        assert_eq!(relative(0, 90_000), "1 min ago");
        assert_eq!(relative(7_200_000, 0), "in 2 h");
        assert_eq!(duration(Duration::from_micros(840)), "840 µs");
        assert_eq!(duration(Duration::from_micros(3_240)), "3.2 ms");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn a_schema_becomes_labelled_typed_fields() {
        let schema = json!({
            "type": "object",
            "required": ["po_number"],
            "properties": {
                "po_number": {"type": "string", "title": "PO number"},
                "total": {"type": "number"},
                "currency": {"enum": ["EUR", "USD"]},
                "urgent": {"type": "boolean"},
            }
        });
        let values = json!({"po_number": "PO-1", "total": 12.5, "currency": "USD", "lines": [1]});
        let html =
            schema_fields("f", "output", Some(&schema), Some(&values), Some(&values)).into_string();
        assert!(
            html.contains(
                r#"<label for="f-po_number">PO number <abbr title="required">*</abbr></label>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"name="output.po_number" value="PO-1" required"#),
            "{html}"
        );
        assert!(
            html.contains(r#"type="number" name="output.total" value="12.5""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="USD" selected>USD</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"type="checkbox" name="output.urgent""#),
            "{html}"
        );
        // A property the schema does not describe still gets a (JSON) field.
        assert!(html.contains(r#"name="output.lines" data-json"#), "{html}");
        assert!(html.contains("AI read: <code>PO-1</code>"), "{html}");
    }
}
