//! The end-to-end tests, one module per capability, built as a single test binary
//! (`cargo test -p baton-tests --test all`; filter by module, e.g. `languages::`).

mod cli;
mod cli_http;
mod connectors;
mod console;
mod crash;
mod engine;
mod hostile;
mod http_api;
mod http_hooks;
mod http_openapi;
mod http_plugins;
mod http_stream;
mod http_tasks;
mod invoice;
mod languages;
mod network;
mod plugin_contract;
mod readme;
mod registry;
mod rules;
mod workflow_cli;
