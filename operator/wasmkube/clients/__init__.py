"""Clients for the outside world: the Kubernetes API, its watches and a Lease for leader election
(and, in `wasmkube.registry`, OCI registries). Both the operator and the activator use them."""
