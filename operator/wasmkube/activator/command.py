"""`wasmkube activator`: its flags (each with a `WASMKUBE_ACTIVATOR_*` environment fallback)."""

from __future__ import annotations

import argparse
import asyncio
import os

from wasmkube.activator.server import ActivatorConfig


def _env(name: str, default: str) -> str:
    return os.environ.get(f"WASMKUBE_ACTIVATOR_{name}", default)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("activator", help="run the activator: hold, wake and forward requests of apps at zero")
    p.add_argument("-n", "--namespace", action="append", dest="namespaces",
                   default=[n for n in _env("NAMESPACES", "").replace(",", " ").split() if n],
                   help="serve only this namespace's apps (repeatable; default: all namespaces)")
    p.add_argument("--port", type=int, default=int(_env("PORT", "8012")), help="port for the apps' requests")
    p.add_argument("--admin-port", type=int, default=int(_env("ADMIN_PORT", "9090")),
                   help="port for /healthz, /readyz and /metrics")
    p.add_argument("--bind-address", default=_env("BIND_ADDRESS", "0.0.0.0"))
    p.add_argument("--cluster-domain", default=_env("CLUSTER_DOMAIN", "cluster.local"))
    p.add_argument("--idle-interval-seconds", type=float, default=float(_env("IDLE_INTERVAL_SECONDS", "5")),
                   help="how often the idle loop reads the pods' request counters")
    p.add_argument("--pod-metrics-port", type=int, default=int(_env("POD_METRICS_PORT", "9091")))
    p.add_argument("--connect-timeout-seconds", type=float, default=float(_env("CONNECT_TIMEOUT_SECONDS", "5")))
    p.add_argument("--upstream-timeout-seconds", type=float, default=float(_env("UPSTREAM_TIMEOUT_SECONDS", "300")),
                   help="longest wait for the next bytes from a pod (its response headers included)")
    p.add_argument("--shutdown-delay-seconds", type=float, default=float(_env("SHUTDOWN_DELAY_SECONDS", "5")),
                   help="on SIGTERM, keep accepting this long while unready, so endpoints move away first")
    p.add_argument("--shutdown-timeout-seconds", type=float, default=float(_env("SHUTDOWN_TIMEOUT_SECONDS", "120")),
                   help="then wait at most this long for held and in-flight requests")
    p.add_argument("--leader-elect", action="store_true",
                   default=_env("LEADER_ELECT", "").lower() in {"1", "true", "yes"},
                   help="several replicas: only the holder of a Lease runs the idle loop (all serve requests)")
    p.add_argument("--lease-namespace", default=_env("LEASE_NAMESPACE", os.environ.get("WASMKUBE_POD_NAMESPACE")
                                                     or "default"))
    p.add_argument("--lease-name", default=_env("LEASE_NAME", "wasmkube-activator"))
    p.add_argument("--lease-seconds", type=float, default=float(_env("LEASE_SECONDS", "15")))
    p.add_argument("--log-format", choices=["auto", "json", "console"], default=_env("LOG_FORMAT", "auto"))
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))


def config_from_args(args: argparse.Namespace) -> ActivatorConfig:
    return ActivatorConfig(
        port=args.port,
        admin_port=args.admin_port,
        bind_address=args.bind_address,
        cluster_domain=args.cluster_domain,
        idle_interval_seconds=args.idle_interval_seconds,
        metrics_port=args.pod_metrics_port,
        connect_timeout_seconds=args.connect_timeout_seconds,
        upstream_timeout_seconds=args.upstream_timeout_seconds,
        shutdown_delay_seconds=args.shutdown_delay_seconds,
        shutdown_timeout_seconds=args.shutdown_timeout_seconds,
        leader_elect=args.leader_elect,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_seconds=args.lease_seconds,
        namespaces=tuple(args.namespaces or ()),
    )


def cmd_activator(args: argparse.Namespace) -> int:
    from wasmkube.activator.server import run_activator
    from wasmkube.logging_setup import configure_logging

    configure_logging(args.log_format, args.log_level)
    asyncio.run(run_activator(config_from_args(args)))
    return 0
