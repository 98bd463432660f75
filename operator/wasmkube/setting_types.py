"""Field types the operator's and the activator's settings share (see wasmkube.settings)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Port = Annotated[int, Field(ge=0, le=65535)]
# A listening address: an IP or a host name, with no scheme or port.
BindAddress = Annotated[str, Field(min_length=1, pattern=r"^[^\s/]+$")]
# Set by the chart from the downward API: the namespace of a Lease when none is given.
POD_NAMESPACE_ENV = "WASMKUBE_POD_NAMESPACE"
