//! Host-side bindings for the two worlds of `wit/plugin.wit`.

/// `baton:plugin/connector`: the shared `types`, `log`, `config` and `feedback`
/// interfaces are generated here; wasi types come from wasmtime-wasi(-http).
pub mod connector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "baton:plugin/connector",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// `baton:plugin/rule`, reusing the connector world's shared interfaces so both worlds
/// speak the same Rust types.
pub mod rule {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "baton:plugin/rule",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "baton:plugin/types": super::connector::baton::plugin::types,
            "baton:plugin/log": super::connector::baton::plugin::log,
        },
    });
}

pub use connector::baton::plugin::{config, feedback, log, types};
