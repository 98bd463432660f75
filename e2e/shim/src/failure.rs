//! Turning a failure into something a Kubernetes user can read.
//!
//! Whatever the shim cannot do is printed to stderr, which is the container log, and written to
//! `/dev/termination-log` (kubelet mounts it into every container; the pod status then carries
//! the text as `lastState.terminated.message`, which wasmkube copies into the WasmApp's
//! conditions). Exit codes follow process conventions, because that is what `kubectl` shows.

use std::io::Write as _;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Exit status when the guest traps: that of a process killed by SIGKILL, which Kubernetes
/// users already read as "did not finish normally".
pub const TRAP_EXIT_CODE: i32 = 137;

/// Exit status when the shim cannot even start the guest (bad binary, missing imports).
pub const START_FAILURE_EXIT_CODE: i32 = 1;

const TERMINATION_LOG: &str = "/dev/termination-log";

/// Report a fatal failure: container log and termination message.
pub fn report(message: &str) {
    eprintln!("wasmkube-shim: {message}");
    // Absent outside Kubernetes (e.g. `ctr run`); best effort by design.
    if let Ok(mut file) = std::fs::OpenOptions::new().write(true).truncate(true).open(TERMINATION_LOG) {
        let _ = file.write_all(message.as_bytes());
    }
}

/// Interface namespaces this shim implements; anything else a component imports is missing.
const PROVIDED_PACKAGES: &[&str] = &[
    "wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/",
    "wasi:http/",
];

/// The imports of `component` that no interface of this shim can satisfy, e.g. Spin's
/// `fermyon:spin/variables@2.0.0`: named in the error so the user knows which host it needs.
pub fn foreign_imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !PROVIDED_PACKAGES.iter().any(|p| name.starts_with(p)))
        .collect()
}

/// The message for a component that failed to link: the foreign imports first (the usual
/// cause), then wasmtime's own words.
pub fn link_error_message(engine: &Engine, component: &Component, err: &wasmtime::Error) -> String {
    let foreign = foreign_imports(engine, component);
    if foreign.is_empty() {
        format!("cannot instantiate the component: {err:#}")
    } else {
        format!(
            "cannot instantiate the component: it imports {} which this shim does not provide \
             (it provides WASI 0.2: wasi:cli, clocks, filesystem, io, random, sockets and wasi:http); \
             a component built for another host (e.g. Spin) needs that host's runtime. wasmtime: {err:#}",
            foreign.join(", ")
        )
    }
}
