# wasmkube developer commands. Every target installs what it needs on first use
# (Debian packages, a virtualenv, binaries built from source into ~/.cache/wasmkube).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT      := $(abspath .)
VENV      := $(ROOT)/.venv
PY        := $(VENV)/bin/python
STATE     := $(ROOT)/.wasmkube
export KUBECONFIG_LOCAL := $(STATE)/kubeconfig
export WASMKUBE_CACHE ?= $(HOME)/.cache/wasmkube

.PHONY: help deps venv system-deps cluster cluster-status cluster-down real-node demo demo-down test unit integration lint crds bench clean

help: ## List the commands.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

system-deps: ## Install the Debian packages the cluster and tests need (root, apt).
	@bash e2e/cluster/ensure-system-deps.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## Create the virtualenv with the operator and test tools.

deps: system-deps venv

cluster: deps ## Start the local cluster, or repair a broken one (idempotent); writes .wasmkube/kubeconfig.
	@$(PY) -m e2e.cluster.localcluster up

cluster-status: venv ## Show which local cluster components are up.
	@$(PY) -m e2e.cluster.localcluster status

cluster-down: venv ## Stop the local cluster (and the real node, if up); leaves no process behind.
	@$(PY) -m e2e.node.realnode down
	@$(PY) -m e2e.cluster.localcluster down

real-node: cluster ## Add real-node-1 (kubelet + containerd + Wasm shim; builds them once, ~40 min cold).
	@$(PY) -m e2e.node.realnode up

demo: cluster ## Local cluster + operator (Helm chart) + examples, then show the WasmApps Ready.
	@$(PY) -m e2e.demo up

demo-down: venv ## Stop the demo's operator process (the cluster stays up).
	@$(PY) -m e2e.demo down

unit: venv ## Unit tests (no cluster).
	@$(PY) -m pytest -q operator/tests

integration: deps ## Integration tests against the real local cluster (started and stopped if not running).
	@bash e2e/run-integration.sh

test: lint unit integration ## All checks: lint (ruff, mypy, lint-imports), unit tests, then integration against the real local cluster.

lint: venv ## ruff, mypy and the import layering (lint-imports, contracts in pyproject.toml).
	@$(VENV)/bin/ruff check operator e2e
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

crds: venv ## Regenerate crds/, the chart's CRD copies and docs/api-reference.md from the models.
	@$(PY) -m wasmkube.cli crds --output-dir crds
	@bash charts/wasmkube/sync-crds.sh
	@$(PY) -m wasmkube.cli api-reference > docs/api-reference.md

bench: deps ## Benchmarks against the local cluster; prints a table, writes .wasmkube/bench/*.json.
	@bash e2e/run-bench.sh

clean: cluster-down
	rm -rf $(STATE)
