"""wasmkube: run WebAssembly workloads on Kubernetes through containerd Wasm shims."""

__version__ = "0.1.0"
