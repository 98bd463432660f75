//! One wasmtime configuration for compiling and for running, and the precompile hook.
//!
//! The shim library calls [`WasmtimeCompiler::compile`] in the shim process the first time an
//! image's Wasm layer is run on a node, stores the machine code in containerd's content store
//! under a label derived from [`WasmtimeCompiler::cache_key`], and hands later containers of the
//! same image the precompiled bytes. A second pod of a digest therefore skips Cranelift entirely.
//! Compiling and running must agree on every setting that changes generated code, which is why
//! both start from [`base_config`].

use std::hash::Hash;
use std::sync::LazyLock;

use containerd_shim_wasm::sandbox::context::{WasmBinaryType, WasmLayer};
use containerd_shim_wasm::shim::Compiler;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Bytes of each linear memory and table a pooled slot keeps resident between instances. With
/// PAGEMAP_SCAN only the pages a request dirtied are restored, so a generous bound costs resident
/// memory only up to what requests really touch; anything above it is madvise()d away (an IPI
/// per request). At 1 MiB the TLB-shootdown IPIs were still 4 % of the shim's CPU under wrk, and
/// the Python component dirties more than that per request: 8 MiB took it from 248 to 369 req/s.
const MEMORY_KEEP_RESIDENT: usize = 8 << 20;
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// Settings that affect compiled code: shared by the precompiler and the runtime engine.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.parallel_compilation(true);
    config
}

/// The engine that runs a container's Wasm: the base settings plus, where the host allows it,
/// the pooling allocator, which makes the per-request instantiation of an HTTP component a
/// matter of microseconds (slots are reserved once, reused with copy-on-write resets).
pub fn runtime_engine() -> anyhow::Result<Engine> {
    let mut config = base_config();
    let pooling = pooling_supported();
    eprintln!(
        "wasmkube-shim: instance allocator: {}",
        if pooling { "pooling" } else { "on-demand (this host cannot reserve the pooling allocator's address space)" }
    );
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // A pod serves one component; these bound concurrent requests (one instance each),
        // not memory: slots are virtual address space until touched.
        pool.total_component_instances(1000);
        pool.total_core_instances(1000);
        pool.total_memories(1000);
        pool.total_tables(1000);
        // Resetting a slot for the next request: by default wasmtime madvise()s the instance's
        // memory and tables away, which in a multi-threaded process means a TLB shootdown (an
        // IPI to every core) per request, plus copy-on-write page faults when the next instance
        // touches them again: a third of the shim's CPU under load, measured with perf. Kept
        // resident instead, the pages a request dirtied are found with the PAGEMAP_SCAN ioctl
        // (Linux 6.7+, used where available) and restored with memset/memcpy. The cost is up to
        // this much resident memory per warm slot, and slots are reused most-recently-first,
        // so an idle pod keeps about one slot's worth.
        pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        pool.table_keep_resident(TABLE_KEEP_RESIDENT);
        pool.pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&config)?)
}

/// Whether this host can reserve the address space the pooling allocator needs. Containers
/// with a small `ulimit -v` or kernels without overcommit cannot; those fall back to on-demand
/// allocation, which is slower per instance but correct.
fn pooling_supported() -> bool {
    static SUPPORTED: LazyLock<bool> = LazyLock::new(|| {
        const PROBE_BITS: u32 = 42;
        let mut config = Config::new();
        config.wasm_memory64(true);
        config.memory_reservation(1 << PROBE_BITS);
        let Ok(engine) = Engine::new(&config) else {
            return false;
        };
        let mut store = wasmtime::Store::new(&engine, ());
        let ty = wasmtime::MemoryType::new64(0, Some(1 << (PROBE_BITS - 16)));
        wasmtime::Memory::new(&mut store, ty).is_ok()
    });
    *SUPPORTED
}

/// Compiles Wasm layers to machine code for the node-wide cache.
pub struct WasmtimeCompiler(Engine);

impl WasmtimeCompiler {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self(Engine::new(&base_config())?))
    }
}

impl Compiler for WasmtimeCompiler {
    /// wasmtime's own compatibility hash (version, target, code-affecting settings): cached
    /// code from another shim build or CPU is recompiled instead of loaded.
    fn cache_key(&self) -> impl Hash {
        self.0.precompile_compatibility_hash()
    }

    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let mut compiled = Vec::with_capacity(layers.len());
        for layer in layers {
            let bytes = &layer.layer;
            let output = if Engine::detect_precompiled(bytes).is_some() {
                None
            } else {
                match WasmBinaryType::from_bytes(bytes) {
                    Some(WasmBinaryType::Module) => Some(self.0.precompile_module(bytes)?),
                    Some(WasmBinaryType::Component) => Some(self.0.precompile_component(bytes)?),
                    // Not Wasm (e.g. a runtime config layer): passed through untouched.
                    None => None,
                }
            };
            compiled.push(output);
        }
        Ok(compiled)
    }
}
