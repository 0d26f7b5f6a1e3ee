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

/// With `autotests = false`, a file in tests/ that is not a module above never runs.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let declared = include_str!("all.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs")
            && module != "all"
        {
            assert!(
                declared.contains(&format!("\nmod {module};\n")),
                "tests/{name} would never run: add `mod {module};` to tests/tests/all.rs"
            );
        }
    }
}
