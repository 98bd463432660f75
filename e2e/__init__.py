"""wasmkube's end-to-end harness: the local cluster, the real node, the demo, tests and benchmark.

One package rooted at the repository root, so every script runs as a module (`python -m
e2e.cluster.localcluster up`) and every shared helper is imported one way: `e2e.support.<name>`.
"""
