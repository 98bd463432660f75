//! `containerd-shim-wasmtime-v1`: wasmkube's Wasm shim for the real node.
//!
//! containerd starts this binary for `runtime_type = "io.containerd.wasmtime.v1"`. The
//! `containerd-shim-wasm` library does the container work: it speaks the shim v2 API, reads the
//! image's Wasm layers from containerd's content store, precompiles them once per node through
//! [`engine::WasmtimeCompiler`], and builds the container (namespaces, cgroups, rootfs, mounts,
//! stdio) with youki's libcontainer. Inside that container it calls [`Sandbox::run_wasi`], which
//! is where this crate starts:
//!
//! * a component exporting `wasi:http/incoming-handler@0.2.x` is served over HTTP/1.1
//!   ([`http`]), a fresh instance per request, with a graceful drain on SIGTERM;
//! * a component exporting `wasi:cli/run` runs to completion, its result is the exit code;
//! * a WASI preview 1 core module runs its `_start` (or the `#function` named in arg0).
//!
//! The env contract (`WASMTIME_HTTP_PROXY_SOCKET_ADDR`, ...) is runwasi's wasmtime shim's, so
//! a WasmApp tested here runs unchanged on clusters that use runwasi.

mod allocator;
mod component;
mod engine;
mod failure;
mod http;
mod module;
mod shutdown;
mod wasi;

use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, WasmBinaryType};
use containerd_shim_wasm::shim::{Cli, Config, Shim, Version, version};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use component::Target;
use engine::WasmtimeCompiler;
use failure::START_FAILURE_EXIT_CODE;

/// The shim: its name, its sandbox and its precompiler; the layer types are the library's
/// defaults (`application/wasm` and the bytecodealliance component layer).
struct WasmtimeShim;

impl Shim for WasmtimeShim {
    type Sandbox = WasmtimeSandbox;

    fn name() -> &'static str {
        "wasmtime"
    }

    fn version() -> Version {
        version!()
    }

    #[allow(refining_impl_trait)]
    async fn compiler() -> Option<WasmtimeCompiler> {
        match WasmtimeCompiler::new() {
            Ok(compiler) => Some(compiler),
            Err(err) => {
                // Without the cache every container compiles for itself: slower, still correct.
                eprintln!("wasmkube-shim: precompilation disabled: {err:#}");
                None
            }
        }
    }
}

/// Runs one container's Wasm; stateless because every container gets its own process.
#[derive(Default)]
struct WasmtimeSandbox;

/// A loaded binary, compiled or deserialized, ready to link.
enum Loaded {
    Module(Module),
    Component(Component),
}

impl Sandbox for WasmtimeSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        let outcome = match Inputs::from_context(ctx) {
            Ok(inputs) => run_on_own_runtime(inputs),
            Err(message) => Err(message),
        };
        match outcome {
            Ok(code) => Ok(code),
            Err(message) => {
                failure::report(&message);
                Ok(START_FAILURE_EXIT_CODE)
            }
        }
    }
}

/// What the guest is made of, owned, so it can move to the thread that runs it.
struct Inputs {
    bytes: Vec<u8>,
    func: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Inputs {
    fn from_context(ctx: &impl RuntimeContext) -> Result<Self, String> {
        let entrypoint = ctx.entrypoint();
        let bytes = entrypoint.source.as_bytes().map_err(|err| format!("reading the Wasm entrypoint: {err:#}"))?;
        Ok(Self {
            bytes: bytes.into_owned(),
            func: entrypoint.func.clone(),
            args: ctx.args().to_vec(),
            env: wasi::env_pairs(ctx),
        })
    }
}

/// Run the guest on a Tokio runtime of its own, on a thread of its own.
///
/// `run_wasi` executes in the container's init process, which youki clones from the shim: a
/// runtime created before that clone has no worker threads here, so a server that spawns a
/// task per connection needs a runtime created inside the container. One worker per CPU the
/// container may use.
fn run_on_own_runtime(inputs: Inputs) -> Result<i32, String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("wasm-worker")
            .build()
            .map_err(|err| format!("starting the async runtime: {err}"))?;
        runtime.block_on(run(inputs))
    })
    .join()
    .map_err(|_| "the thread running the guest panicked".to_string())?
}

/// Load the entrypoint and run it the way its kind asks; `Err` is a message for the user.
async fn run(inputs: Inputs) -> Result<i32, String> {
    let Inputs { bytes, func, args, env } = inputs;
    let guest = wasi::Guest::of(&args, &env);
    let engine = engine::runtime_engine().map_err(|err| format!("creating the wasmtime engine: {err:#}"))?;
    let wasi_failure = |err: wasmtime::Error| format!("setting up WASI: {err:#}");
    let loaded = load(&engine, &bytes)?;
    // wasmtime copied what it needs (machine code in its own mapping): the entrypoint's bytes,
    // 18 MB for a Python component, would otherwise stay resident for the pod's whole life.
    drop(bytes);
    match loaded {
        Loaded::Module(module) => {
            let wasi = wasi::builder(&guest).map_err(wasi_failure)?.build_p1();
            module::run(&engine, &module, &func, wasi).await.map_err(|err| format!("{err:#}"))
        }
        Loaded::Component(component) => match Target::of(&engine, &component, &func) {
            Target::HttpHandler => {
                let pre = component::instantiate_pre(&engine, &component)?;
                let pre = ProxyPre::new(pre).map_err(|err| format!("not a wasi:http/proxy component: {err:#}"))?;
                http::serve(pre, guest, &env).await.map_err(|err| format!("{err:#}"))
            }
            Target::Command => {
                let wasi = wasi::builder(&guest).map_err(wasi_failure)?.build();
                component::run_command(&engine, &component, wasi).await.map_err(|err| format!("{err:#}"))
            }
            Target::Function(func) => {
                let wasi = wasi::builder(&guest).map_err(wasi_failure)?.build();
                component::run_function(&engine, &component, &func, wasi).await.map_err(|err| format!("{err:#}"))
            }
        },
    }
}

/// Compile a Wasm binary, or deserialize the node cache's machine code for it.
fn load(engine: &Engine, bytes: &[u8]) -> Result<Loaded, String> {
    let compiled = |err: wasmtime::Error| format!("compiling the Wasm binary: {err:#}");
    match WasmBinaryType::from_bytes(bytes) {
        Some(WasmBinaryType::Module) => Module::from_binary(engine, bytes).map(Loaded::Module).map_err(compiled),
        Some(WasmBinaryType::Component) => {
            Component::from_binary(engine, bytes).map(Loaded::Component).map_err(compiled)
        }
        // SAFETY (both arms): the bytes are what `WasmtimeCompiler` wrote into containerd's
        // content store for this image, and wasmtime checks its version and settings header.
        None => match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Module) => unsafe { Module::deserialize(engine, bytes) }
                .map(Loaded::Module)
                .map_err(|err| format!("loading the precompiled module: {err:#}")),
            Some(Precompiled::Component) => unsafe { Component::deserialize(engine, bytes) }
                .map(Loaded::Component)
                .map_err(|err| format!("loading the precompiled component: {err:#}")),
            None => Err("the entrypoint is neither a Wasm module nor a component".to_string()),
        },
    }
}

/// `--serve FILE [ARG...]`: run a Wasm file the way a container would, in this process, with
/// this process's env, outside containerd. It is for profiling and A/B-testing the serving path
/// on loopback (`perf record` then sees the serving path alone, no pod machinery around it);
/// the guest gets the host's `/` as its root, so serve only components you trust;
/// a real pod goes through containerd and `run_wasi` instead.
fn serve_outside_containerd(mut argv: impl Iterator<Item = String>) -> i32 {
    let Some(file) = argv.next() else {
        eprintln!("usage: containerd-shim-wasmtime-v1 --serve FILE [ARG...]");
        return 2;
    };
    let outcome = std::fs::read(&file).map_err(|err| format!("reading {file}: {err}")).and_then(|bytes| {
        let args = std::iter::once(file.clone()).chain(argv).collect();
        run_on_own_runtime(Inputs { bytes, func: "_start".to_string(), args, env: std::env::vars().collect() })
    });
    outcome.unwrap_or_else(|message| {
        eprintln!("wasmkube-shim: {message}");
        START_FAILURE_EXIT_CODE
    })
}

fn main() {
    allocator::limit_arenas();
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("--serve") {
        std::process::exit(serve_outside_containerd(argv));
    }
    WasmtimeShim::run(Config::default());
}
