//! `containerd-shim-wasmtime-v1`: wasmkube's minimal Wasm shim for its real-node tests.
//!
//! containerd starts this binary for `runtime_type = "io.containerd.wasmtime.v1"`. The
//! `containerd-shim-wasm` library does all the container work: it speaks the shim v2 API, reads
//! the image's Wasm layers from containerd's content store, and builds the container (namespaces,
//! cgroups, rootfs, mounts, stdio) with youki's libcontainer. Inside that container it calls
//! [`Sandbox::run_wasi`], which is the only part written here: run a WASI preview 1 command
//! module with wasmtime.
//!
//! What the workload sees:
//! * argv = the OCI process args (Kubernetes `command` + `args`); arg0 names the module or, for an
//!   image with Wasm layers, is just a placeholder such as `/`. A `#name` suffix on arg0 selects
//!   the exported function to call instead of `_start`.
//! * the OCI process env;
//! * stdin, stdout and stderr of the container, so output lands in the container log;
//! * the container's root filesystem (its mounts included) preopened as `/`.
//!
//! Components (WASI preview 2) are refused with a clear error rather than half supported.

use anyhow::{anyhow, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, WasmBinaryType};
use containerd_shim_wasm::shim::{Cli, Config, Shim, Version, version};
// wasmtime 48 has its own error type; the shim library speaks anyhow. wasmtime's is used inside
// the module runner and converted once, at the `run_wasi` boundary.
use wasmtime::error::Context as _;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// Exit status reported when the module traps (same convention as a process killed by SIGKILL,
/// which is what Kubernetes users already read as "did not finish normally").
const TRAP_EXIT_CODE: i32 = 137;

/// The shim: names itself and picks the sandbox; layer types and precompilation keep the
/// library defaults (`application/wasm` and the bytecodealliance component layer, no cache).
struct WasmtimeShim;

impl Shim for WasmtimeShim {
    type Sandbox = WasmtimeSandbox;

    fn name() -> &'static str {
        "wasmtime"
    }

    fn version() -> Version {
        version!()
    }
}

/// Runs one container's module; stateless because every container gets its own process.
#[derive(Default)]
struct WasmtimeSandbox;

impl Sandbox for WasmtimeSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        let entrypoint = ctx.entrypoint();
        let bytes = entrypoint.source.as_bytes()?;
        match WasmBinaryType::from_bytes(&bytes) {
            Some(WasmBinaryType::Module) => {}
            Some(WasmBinaryType::Component) => {
                bail!("this shim runs WASI preview 1 core modules only; got a component")
            }
            None => bail!("the entrypoint is not a Wasm binary"),
        }
        let (bytes, func) = (bytes.into_owned(), entrypoint.func.clone());
        let (args, envs) = (ctx.args().to_vec(), ctx.envs().to_vec());
        // wasmtime-wasi's synchronous preview 1 calls `Handle::block_on` on whatever Tokio
        // runtime is current, and we are being polled by the shim library's runtime: Tokio
        // refuses such a nested block_on. A plain thread has no runtime context, so
        // wasmtime-wasi starts its own runtime there.
        let outcome =
            std::thread::spawn(move || run_module(&bytes, &func, wasi_context(&args, &envs)?))
                .join()
                .map_err(|_| anyhow!("the thread running the module panicked"))?;
        outcome.map_err(|err| anyhow!("{err:?}"))
    }
}

/// The WASI view of the container: its args and env, its stdio, and `/` = the container rootfs.
///
/// `run_wasi` executes inside the container after youki's pivot_root, so the host path `/` is
/// already the container's root with every volume mounted; one preopen covers them all.
fn wasi_context(args: &[String], envs: &[String]) -> wasmtime::Result<WasiP1Ctx> {
    let envs: Vec<(&str, &str)> = envs
        .iter()
        .map(|pair| pair.split_once('=').unwrap_or((pair.as_str(), "")))
        .collect();
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&guest_args(args))
        .envs(&envs)
        .inherit_stdio()
        .preopened_dir("/", "/", FsPerms::ReadWrite)
        .context("preopening the container root as /")?;
    Ok(builder.build_p1())
}

/// argv for the guest: the OCI args with the `#function` selector removed from arg0, which is
/// shim syntax and not something the program should see.
fn guest_args(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    if let Some(arg0) = out.first_mut()
        && let Some((path, _)) = arg0.split_once('#')
    {
        *arg0 = path.to_string();
    }
    out
}

/// Compile and instantiate the module, call `func`, and turn the outcome into an exit status:
/// `proc_exit(n)` gives n, a normal return gives 0, a trap gives [`TRAP_EXIT_CODE`] after
/// printing the trap to stderr (the container log).
fn run_module(bytes: &[u8], func: &str, wasi: WasiP1Ctx) -> wasmtime::Result<i32> {
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).context("compiling the module")?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |state| state)?;
    let mut store = Store::new(&engine, wasi);
    let instance = linker
        .instantiate(&mut store, &module)
        .context("instantiating the module (missing imports?)")?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, func)
        .with_context(|| format!("the module exports no `{func}: () -> ()` function"))?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => {
                eprintln!("wasm trap in `{func}`: {err:?}");
                Ok(TRAP_EXIT_CODE)
            }
        },
    }
}

fn main() {
    WasmtimeShim::run(Config::default());
}

#[cfg(test)]
mod tests {
    use super::guest_args;

    #[test]
    fn function_selector_is_not_part_of_argv() {
        let args = vec!["app.wasm#init".to_string(), "--flag".to_string()];
        assert_eq!(guest_args(&args), ["app.wasm", "--flag"]);
    }

    #[test]
    fn plain_args_pass_through() {
        let args = vec!["/".to_string(), "x=y#z".to_string()];
        assert_eq!(guest_args(&args), ["/", "x=y#z"]);
    }
}
