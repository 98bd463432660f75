"""API models of wasmkube.dev/v1alpha1: the single source of the CRD schemas."""
