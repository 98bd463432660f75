"""What every reconciler needs, bundled so that reconcilers stay plain functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from wasmkube.clients.kube import KubeClient
from wasmkube.controller.activator_endpoints import ActivatorEndpoints
from wasmkube.controller.children import ChildApplier
from wasmkube.controller.events import EventRecorder
from wasmkube.controller.pods import PodDiagnoser
from wasmkube.controller.store import Store
from wasmkube.metrics import Metrics
from wasmkube.registry.client import ArtifactResolver


@dataclass
class Context:
    client: KubeClient
    resolver: ArtifactResolver
    store: Store
    children: ChildApplier
    events: EventRecorder
    metrics: Metrics
    # Where scale-to-zero apps' Services point while they have no Ready pod.
    activator: ActivatorEndpoints = field(default_factory=ActivatorEndpoints)
    # Why a stuck rollout's pods fail, looked up only while it is stuck.
    pods: PodDiagnoser = field(default_factory=PodDiagnoser)
