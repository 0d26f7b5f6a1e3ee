//! Plugins: every installed version, who signed it, what it asks for beside what it
//! was granted, and how its calls have gone since the server started.

use super::html::{self, badge, time};
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::metrics::CallFigures;
use crate::registry::PluginView;
use crate::store::Signer;
use axum::extract::State;
use maud::{Markup, html};

/// `GET /plugins`.
pub async fn list(State(state): State<Shared>, page: Page) -> PageResult {
    let plugins = state
        .engine
        .registry()
        .list()
        .map_err(crate::api::plugins::registry_error)?;
    let figures = state.engine.metrics().plugin_calls();
    let body = html! {
        h1 { "Plugins" }
        @if plugins.is_empty() {
            p.empty { "No plugins installed. An admin installs one with " code { "baton plugin install FILE.wasm" } "." }
        }
        @for plugin in &plugins {
            (card(plugin, figures.get(&plugin.record.manifest.name)))
        }
    };
    Ok(page.render("Plugins", Section::Plugins, None, body))
}

fn card(plugin: &PluginView, calls: Option<&CallFigures>) -> Markup {
    let m = &plugin.record.manifest;
    html! {
        article.card.plugin #{ "plugin-" (m.name) "-" (m.version) } {
            h2 { (m.name) " " span.muted { (m.version) } " " (badge(&html::label(&m.kind))) }
            @if !m.description.is_empty() { p { (m.description) } }
            dl.summary {
                dt { "Digest" } dd { code title=(plugin.record.digest) { (short_digest(&plugin.record.digest)) } }
                dt { "Signed by" } dd { @match &plugin.record.signer {
                    Signer::Key { name, public_key } => { (name) " " code.muted title=(public_key) { (short_digest(public_key)) } },
                    Signer::Unsigned => { (badge("unsigned")) },
                } }
                dt { "Installed" } dd { (time(plugin.record.installed_at_ms)) }
                dt { "Actions" } dd { (m.actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")) }
                dt { "Calls since start" } dd { (calls_summary(calls)) }
            }
            table.capabilities {
                caption { "Capabilities: requested and granted" }
                thead { tr { th { "" } th { "Requested" } th { "Granted" } th { "Waiting for a grant" } } }
                tbody {
                    tr { th scope="row" { "Hosts" } td { (names(&m.capabilities.hosts)) } td { (names(&plugin.granted_hosts)) } td.pending { (names(&plugin.pending_hosts)) } }
                    tr { th scope="row" { "Secrets" } td { (names(&m.capabilities.secrets)) } td { (names(&plugin.granted_secrets)) } td.pending { (names(&plugin.pending_secrets)) } }
                }
            }
            @if !plugin.config.is_empty() {
                (html::json_details("Configuration", &serde_json::to_value(&plugin.config).unwrap_or_default()))
            }
        }
    }
}

fn calls_summary(calls: Option<&CallFigures>) -> String {
    match calls {
        None => "none yet".into(),
        // Failures can come before any call (input the plugin's schema refuses).
        Some(c) if c.calls == 0 => format!("no calls; {} refused before calling", c.failures),
        Some(c) => {
            let rate = 100.0 * c.failures as f64 / c.calls.max(c.failures) as f64;
            let p95 = c
                .p95_within
                .map_or("over the largest bucket".to_owned(), |d| {
                    format!("≤ {}", html::duration(d))
                });
            format!(
                "{} calls, mean {}, p95 {p95}, {} failed ({rate:.1} %)",
                c.calls,
                html::duration(c.mean),
                c.failures
            )
        }
    }
}

fn names(items: &[String]) -> Markup {
    html! {
        @if items.is_empty() { span.muted { "none" } }
        @else { @for (i, item) in items.iter().enumerate() { @if i > 0 { ", " } code { (item) } } }
    }
}

/// `sha256:0123456789ab…`: enough to tell versions apart on screen.
fn short_digest(digest: &str) -> String {
    let (scheme, hex) = digest.split_once(':').unwrap_or(("", digest));
    let head: String = hex.chars().take(12).collect();
    if scheme.is_empty() {
        format!("{head}…")
    } else {
        format!("{scheme}:{head}…")
    }
}
