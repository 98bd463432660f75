//! Components (WASI 0.2): what a component is for, decided from its exports, and running the
//! non-HTTP kinds. HTTP components are served by [`crate::http`].

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::failure;
use crate::module::exit_status;

/// The world a component was built for, as its exports say.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `wasi:http/incoming-handler`: a server, one instance per request.
    HttpHandler,
    /// `wasi:cli/run`: a program that runs to completion.
    Command,
    /// Neither: call the exported function named by arg0's `#function` suffix.
    Function(String),
}

impl Target {
    pub fn of(engine: &Engine, component: &Component, func: &str) -> Self {
        let exports: Vec<String> =
            component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
        Self::from_exports(&exports, func)
    }

    fn from_exports(exports: &[String], func: &str) -> Self {
        if exports.iter().any(|name| name.starts_with("wasi:http/incoming-handler@0.2")) {
            Self::HttpHandler
        } else if exports.iter().any(|name| name.starts_with("wasi:cli/run@0.2")) {
            Self::Command
        } else {
            Self::Function(func.to_string())
        }
    }
}

/// Per-instance host state: WASI, WASI HTTP and the resource table they share.
pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
}

impl HostState {
    pub fn new(wasi: WasiCtx) -> Self {
        Self { wasi, http: WasiHttpCtx::new(), table: ResourceTable::new() }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

/// Every interface this shim provides: WASI 0.2 and `wasi:http` (outgoing requests included).
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// Link a component, naming the imports this shim lacks when that is why it fails.
pub fn instantiate_pre(
    engine: &Engine,
    component: &Component,
) -> Result<wasmtime::component::InstancePre<HostState>, String> {
    let linker = linker(engine).map_err(|err| format!("building the linker: {err:#}"))?;
    linker.instantiate_pre(component).map_err(|err| failure::link_error_message(engine, component, &err))
}

/// Run a `wasi:cli/run` component; its result is the exit status (`Err` from `run` is 1).
pub async fn run_command(engine: &Engine, component: &Component, wasi: WasiCtx) -> wasmtime::Result<i32> {
    let pre = instantiate_pre(engine, component).map_err(wasmtime::Error::msg)?;
    let mut store = Store::new(engine, HostState::new(wasi));
    let command = CommandPre::new(pre)?.instantiate_async(&mut store).await?;
    let outcome = command.wasi_cli_run().call_run(&mut store).await;
    Ok(match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(err) => exit_status(Err(err), "wasi:cli/run"),
    })
}

/// Call an exported `func: () -> ()` of a component that is neither a server nor a command.
pub async fn run_function(
    engine: &Engine,
    component: &Component,
    func: &str,
    wasi: WasiCtx,
) -> wasmtime::Result<i32> {
    let pre = instantiate_pre(engine, component).map_err(wasmtime::Error::msg)?;
    let mut store = Store::new(engine, HostState::new(wasi));
    let instance = pre.instantiate_async(&mut store).await?;
    let function = instance.get_typed_func::<(), ()>(&mut store, func).with_context(|| {
        format!("the component exports neither wasi:http/incoming-handler, wasi:cli/run nor a `{func}: func()`")
    })?;
    let outcome = function.call_async(&mut store, ()).await;
    Ok(exit_status(outcome, func))
}

#[cfg(test)]
mod tests {
    use super::Target;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn http_handler_wins_over_other_exports() {
        let exports = names(&["wasi:cli/run@0.2.0", "wasi:http/incoming-handler@0.2.6"]);
        assert_eq!(Target::from_exports(&exports, "_start"), Target::HttpHandler);
    }

    #[test]
    fn command_component() {
        assert_eq!(Target::from_exports(&names(&["wasi:cli/run@0.2.3"]), "_start"), Target::Command);
    }

    #[test]
    fn anything_else_calls_the_named_function() {
        assert_eq!(Target::from_exports(&names(&["run"]), "run"), Target::Function("run".into()));
    }
}
