"""kubelet: its configuration and the daemon as the supervisor runs it."""

from __future__ import annotations

import json

from e2e.cluster.api import http_status
from e2e.support.supervisor import Daemon

from .binaries import NodeBinaries
from .certs import kubelet_kubeconfig
from .layout import (
    CGROUP_ROOT,
    CHILD_PATH,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    NODE_ADDRESS,
    NODE_LABELS,
    NODE_NAME,
    REAL_NODE_TAINT,
)
from .paths import NodePaths


def kubelet_config(paths: NodePaths) -> str:
    """KubeletConfiguration: loopback only, x509 + webhook auth, cgroupfs under /wasmkube, our
    runtime socket, and thresholds that keep a shared test VM from tripping evictions or GC."""
    endpoint = f"unix://{paths.socket}"
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": NODE_ADDRESS, "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False}, "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(paths.cluster_pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": endpoint, "imageServiceEndpoint": endpoint,
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False, "failCgroupV1": False,
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.kubelet_root / "volume-plugins"),
        "resolvConf": "/etc/resolv.conf",
        "registerWithTaints": [REAL_NODE_TAINT],
        "serializeImagePulls": False,
        "maxPods": 150,  # make bench's density row (e2e/bench/density_row.py) runs 100 pods of a kind
        "rotateCertificates": False, "serverTLSBootstrap": False,
    }, indent=2)


def kubelet_healthy() -> bool:
    return http_status("/healthz", KUBELET_HEALTHZ_PORT) == 200


def kubelet_daemon(paths: NodePaths, bins: NodeBinaries) -> Daemon:
    """kubelet as the supervisor runs it: registered as NODE_NAME with the cloud-provider taint,
    which registration.py (playing the cloud controller) then lifts."""
    config, kubeconfig = paths.config / "kubelet.yaml", paths.config / "kubelet.kubeconfig"
    labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
    argv = [
        str(bins.kubelet), f"--config={config}", f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_root}", f"--cert-dir={paths.kubelet_root}/pki",
        f"--hostname-override={NODE_NAME}", f"--node-labels={labels}",
        "--cloud-provider=external", "--v=2",
    ]
    env = {"PATH": CHILD_PATH, "HOME": str(paths.root)}
    return Daemon("kubelet", argv, kubelet_healthy, timeout=120,
                  files={config: kubelet_config(paths), kubeconfig: kubelet_kubeconfig(paths)},
                  env=env, identity={"env": env})
