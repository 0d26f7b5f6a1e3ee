//! Operational figures in the Prometheus text format: counters and histograms the engine
//! updates as it works, rendered with the gauges the server reads at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of every histogram's buckets: from a fast plugin call to a
/// step that waited a day for a person.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0, 86400.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
        self.total += 1;
    }

    /// The upper bound (seconds) of the bucket holding quantile `q`.
    fn quantile_bound(&self, q: f64) -> Option<f64> {
        let rank = (q * self.total as f64).ceil() as u64;
        let mut seen = 0;
        for (slot, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank.max(1) {
                return BUCKETS.get(slot).copied();
            }
        }
        None
    }
}

#[derive(Default)]
struct Figures {
    /// Step latency (scheduled to completed) by step kind.
    step_seconds: BTreeMap<String, Histogram>,
    /// Plugin call durations by plugin.
    call_seconds: BTreeMap<String, Histogram>,
    /// Failed plugin calls by (plugin, failure code).
    call_failures: BTreeMap<(String, String), u64>,
}

/// One plugin's calls since the server started, as the console shows them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallFigures {
    pub calls: u64,
    pub failures: u64,
    pub mean: Duration,
    /// The upper bound of the bucket that holds the 95th percentile (`None`: above
    /// every bound, or no calls).
    pub p95_within: Option<Duration>,
}

/// What the engine counts. Cheap to update: one uncontended lock per observation.
#[derive(Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
}

impl Metrics {
    /// A step of `kind` completed `latency` after it was scheduled.
    pub fn step_completed(&self, kind: &str, latency: Duration) {
        let mut f = self.figures.lock().expect("metrics lock");
        entry(&mut f.step_seconds, kind).observe(latency.as_secs_f64());
    }

    /// A call of `plugin` returned after `duration`.
    pub fn plugin_call(&self, plugin: &str, duration: Duration) {
        let mut f = self.figures.lock().expect("metrics lock");
        entry(&mut f.call_seconds, plugin).observe(duration.as_secs_f64());
    }

    /// A call of `plugin` failed with `code`.
    pub fn plugin_failure(&self, plugin: &str, code: &str) {
        let mut f = self.figures.lock().expect("metrics lock");
        *f.call_failures
            .entry((plugin.to_owned(), code.to_owned()))
            .or_default() += 1;
    }

    /// Calls and failures per plugin since the server started.
    pub fn plugin_calls(&self) -> BTreeMap<String, CallFigures> {
        let f = self.figures.lock().expect("metrics lock");
        let mut out: BTreeMap<String, CallFigures> = f
            .call_seconds
            .iter()
            .map(|(plugin, h)| {
                let figures = CallFigures {
                    calls: h.total,
                    failures: 0,
                    mean: Duration::from_secs_f64(h.sum / h.total.max(1) as f64),
                    p95_within: h.quantile_bound(0.95).map(Duration::from_secs_f64),
                };
                (plugin.clone(), figures)
            })
            .collect();
        for ((plugin, _), n) in &f.call_failures {
            out.entry(plugin.clone()).or_default().failures += n;
        }
        out
    }

    /// Appends the counters and histograms to `out` in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let f = self.figures.lock().expect("metrics lock");
        histogram(
            out,
            "baton_step_duration_seconds",
            "Time from a step's scheduling to its completion, by step kind.",
            "kind",
            &f.step_seconds,
        );
        histogram(
            out,
            "baton_plugin_call_duration_seconds",
            "Time inside plugin calls, by plugin.",
            "plugin",
            &f.call_seconds,
        );
        header(
            out,
            "baton_plugin_call_failures_total",
            "Failed plugin calls, by plugin and failure code.",
            "counter",
        );
        for ((plugin, code), n) in &f.call_failures {
            let _ = writeln!(
                out,
                "baton_plugin_call_failures_total{{plugin=\"{}\",code=\"{}\"}} {n}",
                escape(plugin),
                escape(code)
            );
        }
    }
}

fn entry<'a>(map: &'a mut BTreeMap<String, Histogram>, key: &str) -> &'a mut Histogram {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), Histogram::default());
    }
    map.get_mut(key).expect("inserted")
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One gauge sample per label value.
pub fn gauge(out: &mut String, name: &str, help: &str, samples: &[(Option<(&str, &str)>, u64)]) {
    header(out, name, help, "gauge");
    for (label, value) in samples {
        match label {
            Some((key, v)) => {
                let _ = writeln!(out, "{name}{{{key}=\"{}\"}} {value}", escape(v));
            }
            None => {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &BTreeMap<String, Histogram>,
) {
    header(out, name, help, "histogram");
    for (value, h) in series {
        let value = escape(value);
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}\n{name}_sum{{{label}=\"{value}\"}} {}\n{name}_count{{{label}=\"{value}\"}} {}",
            h.total, h.sum, h.total
        );
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_figures_count_calls_failures_and_the_p95_bucket() {
        let m = Metrics::default();
        for _ in 0..19 {
            m.plugin_call("erp", Duration::from_micros(300));
        }
        m.plugin_call("erp", Duration::from_millis(30));
        m.plugin_failure("erp", "timeout");
        m.plugin_failure("erp", "upstream_unavailable");
        let figures = &m.plugin_calls()["erp"];
        assert_eq!((figures.calls, figures.failures), (20, 2));
        assert_eq!(figures.p95_within, Some(Duration::from_micros(500)));
        let mean_us = figures.mean.as_micros();
        assert!((1780..=1790).contains(&mean_us), "{mean_us}");
        m.plugin_call("erp", Duration::from_millis(30));
        m.plugin_call("erp", Duration::from_millis(30));
        assert_eq!(
            m.plugin_calls()["erp"].p95_within,
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.plugin_call("echo", Duration::from_micros(300));
        m.plugin_call("echo", Duration::from_millis(3));
        m.plugin_failure("a\"b", "boom");
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "baton_plugin_call_duration_seconds_bucket{plugin=\"echo\",le=\"0.0005\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "baton_plugin_call_duration_seconds_bucket{plugin=\"echo\",le=\"0.005\"} 2"
            ),
            "{out}"
        );
        assert!(
            out.contains("baton_plugin_call_duration_seconds_count{plugin=\"echo\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("baton_plugin_call_failures_total{plugin=\"a\\\"b\",code=\"boom\"} 1"),
            "{out}"
        );
    }
}
