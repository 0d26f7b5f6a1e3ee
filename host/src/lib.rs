//! Baton: the execution layer for business workflows.
//!
//! The library behind the `baton` binary, one module per layer (see DESIGN.md, "Layout").
//! Dependencies point down this list only:
//!
//! - [`engine`]: workflow definitions, the interpreter, scheduler and durable run state
//!   (uses the registry to call plugins and the store to persist);
//! - [`registry`]: plugin install, signature checks, grants, upgrades and invocation
//!   (uses the runtime and the store);
//! - [`runtime`]: wasmtime: compile, limit, invoke (knows nothing of workflows or redb);
//! - [`store`]: redb, the only module that knows table layouts and keys.
//!
//! [`config`] holds the server configuration every layer reads its settings from.

pub mod api;
pub mod config;
pub mod engine;
pub mod manifest;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod secret;
pub mod store;
pub mod url;
pub mod webhooks;

/// mimalloc for the binary and everything that links this library (tests, benches):
/// the engine and the API allocate many small short-lived values per step, and
/// glibc's allocator spent about a sixth of the HTTP benchmark's CPU time on them.
/// Built with `no_thp`: mimalloc otherwise asks for transparent huge pages, and every
/// page it purges and later reuses then faults back as a zeroed 2 MiB huge page (6% of
/// that benchmark's CPU, most of it under redb's page cache).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
