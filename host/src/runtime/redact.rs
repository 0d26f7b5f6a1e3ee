//! Keeps granted secret values out of everything a call reports.
//!
//! A plugin may read a secret (to send it to its API) but whatever it logs, prints,
//! returns or fails with is scrubbed before it leaves the runtime.

use super::Invocation;
use super::bindings::connector::baton::plugin::types as wit;

/// Replaces each secret value (and its JSON-escaped form) with `[redacted secret NAME]`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// (needle, replacement), longest needle first so overlapping secrets redact whole.
    needles: Vec<(String, String)>,
}

/// Values shorter than this are not redacted: replacing every `a` would destroy output
/// while protecting nothing.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    /// A redactor for `secrets` given as (name, value).
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        let mut needles = Vec::new();
        for (name, value) in secrets {
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            let replacement = format!("[redacted secret {name}]");
            let escaped = serde_json::to_string(value).expect("strings serialise");
            let escaped = &escaped[1..escaped.len() - 1];
            if escaped != value {
                needles.push((escaped.to_owned(), replacement.clone()));
            }
            needles.push((value.to_owned(), replacement));
        }
        needles.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        Redactor { needles }
    }

    /// `text` with every secret replaced.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        self.apply_in_place(&mut out);
        out
    }

    /// Replaces every secret inside `text`.
    pub fn apply_in_place(&self, text: &mut String) {
        for (needle, replacement) in &self.needles {
            if text.contains(needle.as_str()) {
                *text = text.replace(needle.as_str(), replacement);
            }
        }
    }

    /// Whether there is anything to redact at all (the common case is not).
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// Anything a call returns that could carry a secret.
pub(super) trait Redact {
    fn redact(&mut self, redactor: &Redactor);
}

impl Redact for String {
    fn redact(&mut self, redactor: &Redactor) {
        redactor.apply_in_place(self);
    }
}

impl Redact for wit::Decision {
    fn redact(&mut self, redactor: &Redactor) {
        self.reasons
            .iter_mut()
            .for_each(|r| redactor.apply_in_place(r));
    }
}

impl Redact for wit::PluginInfo {
    fn redact(&mut self, _: &Redactor) {}
}

pub(super) fn redact_invocation<T: Redact>(call: &mut Invocation<T>, redactor: &Redactor) {
    match &mut call.result {
        Ok(value) => value.redact(redactor),
        Err(failure) => {
            redactor.apply_in_place(&mut failure.message);
            if let Some(details) = &mut failure.details {
                let text = redactor.apply(&details.to_string());
                *details = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            }
        }
    }
    call.logs
        .iter_mut()
        .for_each(|l| redactor.apply_in_place(&mut l.message));
    call.denied
        .iter_mut()
        .for_each(|d| redactor.apply_in_place(d));
    redactor.apply_in_place(&mut call.stdout);
    redactor.apply_in_place(&mut call.stderr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_raw_and_json_escaped_values() {
        let r = Redactor::new([("token", "s3cr\"et"), ("short", "ab")]);
        assert_eq!(r.apply("x s3cr\"et y"), "x [redacted secret token] y");
        let json = serde_json::json!({ "t": "s3cr\"et" }).to_string();
        let redacted = r.apply(&json);
        assert!(!redacted.contains("s3cr"), "{redacted}");
        assert!(serde_json::from_str::<serde_json::Value>(&redacted).is_ok());
        assert_eq!(r.apply("ab"), "ab");
    }
}
