"""The result of resolving a reference: an immutable record the operator can cache and copy.

Frozen so that one cached instance can be handed to any number of callers safely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout


@dataclass(frozen=True)
class ResolvedArtifact:
    """What a reference pointed to at ``resolved_at`` (wall-clock seconds).

    ``digest`` is the digest of the document the tag names, i.e. of the *index* for a
    multi-platform image: that is what a node resolves the tag to, so ``pinned`` keeps pointing to
    the same content on every node. ``kind``/``layout``/``size``/``exports``/``config_media_type``
    describe the platform manifest chosen from it (``platform_digest``).
    """

    reference: str
    registry: str
    repository: str
    tag: str | None
    digest: str
    pinned: str
    kind: ArtifactKind
    layout: ArtifactLayout
    media_type: str
    config_media_type: str
    size: int
    exports: tuple[str, ...]
    platform: str | None
    resolved_at: float
    platform_digest: str | None = None

    @property
    def is_index(self) -> bool:
        return self.platform_digest is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (enums as strings, tuples as lists)."""
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["layout"] = str(self.layout)
        data["exports"] = list(self.exports)
        return data
