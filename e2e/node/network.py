"""The pods' network: one bridge with a private subnet (CNI), and removing it again."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .layout import BRIDGE, POD_GATEWAY, POD_SUBNET
from .paths import NodePaths


def cni_conflist(paths: NodePaths) -> str:
    """One bridge network: private subnet, gateway on the bridge, no masquerade (pods talk only
    to each other and the node; nothing is forwarded off the machine). containerd adds `lo`."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "wasmkube",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "dataDir": str(paths.cni_ipam),
                     "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]]},
        }],
    }, indent=2)


def remove_pod_network(paths: NodePaths) -> None:
    """The bridge (its veths vanish with the pod namespaces) and host-local's IP leases."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)
    shutil.rmtree(paths.cni_ipam, ignore_errors=True)
