"""The cluster's processes as the supervisor runs them: argv, config files, health, timeout."""

from __future__ import annotations

import yaml

from e2e.support.supervisor import Daemon

from .binaries import Binaries
from .flags import (
    AUDIT_POLICY,
    apiserver_argv,
    audit_enabled,
    controller_manager_argv,
    etcd_argv,
    kwok_config,
    registry_config,
    scheduler_config,
)
from .health import probes
from .layout import HOST, SCHEDULER_PORT
from .paths import Paths
from .pki import kubeconfig_for


def plan_components(paths: Paths, bins: Binaries, pki_fingerprint: str) -> dict[str, Daemon]:
    """All processes in start order. The PKI's fingerprint is part of each one's identity, so a
    process started with older certificates is restarted."""
    pki, cfg = paths.pki, paths.config
    health = probes(pki)
    identity = {"pki": pki_fingerprint}
    kc_kcm, kc_sched, kc_kwok = (cfg / f"{n}.kubeconfig" for n in ("controller-manager", "scheduler", "kwok"))
    daemons = [
        Daemon("etcd", etcd_argv(paths, bins), health["etcd"], timeout=30, identity=identity),
        registry_component(paths, bins, pki_fingerprint),
        Daemon("kube-apiserver", apiserver_argv(paths, bins), health["kube-apiserver"], timeout=120,
               files=({cfg / "audit-policy.yaml": yaml.safe_dump(AUDIT_POLICY, sort_keys=False)}
                      if audit_enabled() else {}),
               identity=identity),
        Daemon("kube-controller-manager", controller_manager_argv(paths, bins, kc_kcm),
               health["kube-controller-manager"], files={kc_kcm: kubeconfig_for(pki, "controller-manager")},
               identity=identity),
        Daemon("kube-scheduler", [bins.kube_scheduler, f"--config={cfg / 'scheduler.yaml'}",
                                  f"--authentication-kubeconfig={kc_sched}",
                                  f"--authorization-kubeconfig={kc_sched}",
                                  f"--bind-address={HOST}", f"--secure-port={SCHEDULER_PORT}",
                                  f"--cert-dir={paths.state / 'scheduler-certs'}"],
               health["kube-scheduler"],
               files={kc_sched: kubeconfig_for(pki, "scheduler"), cfg / "scheduler.yaml": scheduler_config(kc_sched)},
               identity=identity),
        Daemon("kwok", [bins.kwok, f"--kubeconfig={kc_kwok}", f"--config={cfg / 'kwok.yaml'}"], health["kwok"],
               files={kc_kwok: kubeconfig_for(pki, "kwok"), cfg / "kwok.yaml": kwok_config()}, identity=identity),
    ]
    return {d.name: d for d in daemons}


def registry_component(paths: Paths, bins: Binaries, pki_fingerprint: str) -> Daemon:
    """The local OCI registry; needs no PKI, so existing-cluster mode runs it alone (with the
    fingerprint "external")."""
    config = paths.config / "registry.yml"
    return Daemon("registry", [bins.registry, "serve", str(config)], probes(paths.pki)["registry"],
                  files={config: registry_config(paths)}, identity={"pki": pki_fingerprint})
