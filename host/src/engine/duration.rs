//! Durations and times as written in definitions: `500ms`, `30s`, `5m`, `1h 30m`, `2d`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a duration such as `500ms`, `30s`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 500ms, 30s, 5m, 1h 30m or 2d")
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A time for `wait.until`: an RFC 3339 string or unix milliseconds.
pub fn parse_time(value: &serde_json::Value) -> Result<u64, String> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a time in unix milliseconds")),
        serde_json::Value::String(s) => humantime::parse_rfc3339_weak(s)
            .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e})"))
            .map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64)
            }),
        other => Err(format!(
            "{other} is not a time: give an RFC 3339 string or unix milliseconds"
        )),
    }
}

/// Unix milliseconds as an RFC 3339 UTC time with milliseconds.
pub fn format_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("`soon` is not a duration")
        );
        assert_eq!(
            parse_time(&serde_json::json!("1970-01-01T00:00:01Z")).unwrap(),
            1000
        );
        assert_eq!(parse_time(&serde_json::json!(5)).unwrap(), 5);
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.500Z");
    }
}
