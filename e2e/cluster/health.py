"""How to tell that each component of the cluster serves: one probe per component.

The probes need no binaries and no build, so `status` can use them as they are; `up` uses the
same ones to wait for a start and to judge a process that is already running.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from .api import http_status, insecure_tls
from .layout import APISERVER_PORT, CONTROLLER_MANAGER_PORT, ETCD_CLIENT_PORT, KWOK_PORT, REGISTRY_PORT, SCHEDULER_PORT
from .pki import pki_is_current

Probe = Callable[[], bool]


def probes(pki: Path) -> dict[str, Probe]:
    """component -> "does it answer its health endpoint with 200 right now" (a 2 s bound each).

    The apiserver's is /readyz, which includes etcd and its own post-start hooks; without a
    current PKI nothing can authenticate to it, so it counts as down.
    """
    tls = insecure_tls()
    found: dict[str, Probe] = {
        "etcd": lambda: http_status("/health", ETCD_CLIENT_PORT) == 200,
        "registry": lambda: http_status("/v2/", REGISTRY_PORT) == 200,
        "kube-controller-manager": lambda: http_status("/healthz", CONTROLLER_MANAGER_PORT, context=tls) == 200,
        "kube-scheduler": lambda: http_status("/healthz", SCHEDULER_PORT, context=tls) == 200,
        "kwok": lambda: http_status("/healthz", KWOK_PORT) == 200,
    }
    if pki_is_current(pki):
        admin = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        admin.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        found["kube-apiserver"] = lambda: http_status("/readyz", APISERVER_PORT, context=admin) == 200
    else:
        found["kube-apiserver"] = lambda: False
    return found
