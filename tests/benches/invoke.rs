//! Plugin runtime benchmarks (see BENCHMARKS.md for figures and the machine).
//!
//! - `echo/runtime_fresh_instance`: one `echo` call on a fresh Store and instance
//!   (instantiate from the prepared `InstancePre`, call, tear down): DESIGN.md's
//!   "invoke a trivial connector action" target, p50 <= 20 us.
//! - `echo/registry_call`: the same through the registry: input JSON parse and schema
//!   check, grants read from redb, output schema check.
//! - `install/compile_echo`: Cranelift compilation at install.
//! - `install/load_cached_artifact`: what a restart pays instead: deserialise the cached
//!   native code and link it.

use baton::config::Config;
use baton::manifest::PluginKind;
use baton::registry::{InstallRequest, resolve_grants};
use baton::runtime::{CallContext, Limits, Runtime};
use baton_tests::{open_registry, plugin_bytes, runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bytes = plugin_bytes("echo");
    let runtime: Arc<Runtime> = runtime();
    let dir = tempfile::tempdir().unwrap();
    let registry = open_registry(
        dir.path(),
        Config {
            allow_unsigned: true,
            ..Default::default()
        },
    );
    rt.block_on(registry.install(InstallRequest {
        component: bytes.clone(),
        ..Default::default()
    }))
    .unwrap();
    let echo_ref = "echo".parse().unwrap();
    let record = registry.resolve(&echo_ref).unwrap();
    let loaded = registry.load(&record).unwrap();
    let grants = Arc::new(resolve_grants(
        &loaded.manifest,
        &[],
        Default::default(),
        Default::default(),
        None,
    ));
    let limits = Limits::default();
    let context = CallContext::default();
    let input = r#"{"message":"hello"}"#;

    let artifact = runtime.compile(PluginKind::Connector, &bytes).unwrap();
    let prepared = runtime.load(PluginKind::Connector, &artifact).unwrap();

    let mut group = c.benchmark_group("echo");
    group.bench_function("runtime_fresh_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let call = prepared
                .invoke(grants.clone(), &limits, &context, "echo", input)
                .await;
            assert!(call.result.is_ok());
        })
    });
    group.bench_function("registry_call", |b| {
        b.to_async(&rt).iter(|| async {
            let report = registry
                .call(&echo_ref, "echo", input, &context)
                .await
                .unwrap();
            assert!(report.result.is_ok());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("install");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("compile_echo", |b| {
        b.iter(|| runtime.compile(PluginKind::Connector, &bytes).unwrap())
    });
    group.bench_function("load_cached_artifact", |b| {
        b.iter(|| runtime.load(PluginKind::Connector, &artifact).unwrap())
    });
    group.finish();
}

criterion_group!(invoke, benches);
criterion_main!(invoke);
