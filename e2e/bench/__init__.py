"""`make bench`: how fast and how cheaply wasmkube turns WasmApps into Deployments.

Run with `.venv/bin/python -m e2e.bench` from the repository root (e2e/run-bench.sh does that
after making sure the local cluster runs). Every number is measured against the real local
cluster; a row that cannot be measured says why instead of disappearing. See `runner.py` for
the order of the rows and `config.py` for the BENCH_* environment variables.
"""
