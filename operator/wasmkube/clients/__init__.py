"""Clients for the outside world: the Kubernetes API (and, in `wasmkube.registry`, OCI registries)."""
