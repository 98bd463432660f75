//! WASI preview 1 core modules: instantiate once, call the entry function, report its exit.

use wasmtime::error::Context as _;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::{self, WasiP1Ctx};

use crate::failure::TRAP_EXIT_CODE;

/// Run `func` (default `_start`) of a module to completion and map the outcome to an exit
/// status: `proc_exit(n)` gives n, a normal return 0, a trap [`TRAP_EXIT_CODE`] after printing
/// the trap to the container log.
pub async fn run(engine: &Engine, module: &Module, func: &str, wasi: WasiP1Ctx) -> wasmtime::Result<i32> {
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_async(&mut linker, |state| state)?;
    let mut store = Store::new(engine, wasi);
    let instance = linker
        .instantiate_async(&mut store, module)
        .await
        .context("instantiating the module (missing imports?)")?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, func)
        .with_context(|| format!("the module exports no `{func}: () -> ()` function"))?;
    Ok(exit_status(start.call_async(&mut store, ()).await, func))
}

/// The exit status of a finished guest call (shared with command components).
pub fn exit_status(outcome: wasmtime::Result<()>, what: &str) -> i32 {
    match outcome {
        Ok(()) => 0,
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => exit.0,
            None => {
                eprintln!("wasm trap in `{what}`: {err:?}");
                TRAP_EXIT_CODE
            }
        },
    }
}
