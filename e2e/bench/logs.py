"""Count requests in the API server's audit log and in the registry's access log.

Both logs are shared and only ever appended to, so a measurement remembers the file size at its
start and reads what was added since; nothing is truncated under another engineer's feet.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class LogTail:
    """The part of a growing file written after `mark()`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def lines_between(self, start: int, end: int | None = None) -> list[str]:
        """Lines written between two marks (`end` None: up to now)."""
        try:
            with self.path.open("rb") as handle:
                if handle.seek(0, 2) < start:  # rotated or truncated: read it all
                    start = 0
                handle.seek(start)
                data = handle.read() if end is None else handle.read(max(0, end - start))
        except FileNotFoundError:
            return []
        return data.decode(errors="replace").splitlines()


@dataclasses.dataclass
class RequestTally:
    """Requests of one user, by verb and by verb + resource."""

    by_verb: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_resource: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    codes: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    elsewhere: int = 0  # requests about objects in other namespaces (left out of the counts)

    @property
    def total(self) -> int:
        return sum(self.by_verb.values())

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb in WRITE_VERBS)

    def write_resources(self) -> dict[str, int]:
        return {k: n for k, n in self.by_resource.items() if k.split(" ", 1)[0] in WRITE_VERBS}

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "writes": self.writes, "by_verb": dict(sorted(self.by_verb.items())),
                "by_verb_resource": dict(sorted(self.by_resource.items())),
                "status_codes": {str(k): v for k, v in sorted(self.codes.items())},
                "other_namespaces_left_out": self.elsewhere}


def _resource(ref: dict[str, Any]) -> str:
    resource = ref.get("resource") or "?"
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    return resource


def tally_audit(lines: list[str], username: str, namespace: str | None = None) -> RequestTally:
    """One count per request. A watch is counted when it opens (stage ResponseStarted), because
    it completes only when it ends, often after the window; everything else at ResponseComplete.

    With `namespace`, only requests about that namespace or cluster-scoped objects count: on a
    shared cluster a cluster-wide operator also works on other people's leftovers."""
    tally = RequestTally()
    for line in lines:
        if username not in line:  # cheap pre-filter: the log holds every component's requests
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (event.get("user") or {}).get("username") != username:
            continue
        verb, stage = event.get("verb", "?"), event.get("stage")
        if stage != ("ResponseStarted" if verb == "watch" else "ResponseComplete"):
            continue
        where = (event.get("objectRef") or {}).get("namespace")
        if namespace is not None and where not in (None, "", namespace):
            tally.elsewhere += 1
            continue
        tally.by_verb[verb] += 1
        tally.by_resource[f"{verb} {_resource(event.get('objectRef') or {})}"] += 1
        tally.codes[int((event.get("responseStatus") or {}).get("code") or 0)] += 1
    return tally


def foreign_writers(lines: list[str], namespace: str, ignore: set[str]) -> dict[str, int]:
    """Users other than `ignore` that wrote in `namespace`: another operator would spoil the numbers."""
    found: collections.Counter[str] = collections.Counter()
    needle = f'"namespace":"{namespace}"'
    for line in lines:
        if needle not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        user = (event.get("user") or {}).get("username", "?")
        if (event.get("stage") == "ResponseComplete" and event.get("verb") in WRITE_VERBS and user not in ignore
                and not user.startswith("system:serviceaccount:kube-system:") and user != "wasmkube-kwok"
                and not user.startswith("system:kube-")):
            found[user] += 1
    return dict(found)


# distribution's access log is the Apache combined format.
_ACCESS = re.compile(r'^\S+ \S+ \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) ')
_V2_PATH = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs|tags)/")


def tally_registry(lines: list[str]) -> dict[str, Any]:
    """Registry requests by `METHOD kind` and by repository, from access-log lines."""
    by_kind: collections.Counter[str] = collections.Counter()
    by_repo: collections.Counter[str] = collections.Counter()
    for line in lines:
        match = _ACCESS.match(line)
        if not match:
            continue
        path = match["path"].split("?", 1)[0]
        v2 = _V2_PATH.match(path)
        kind = v2["kind"] if v2 else ("ping" if path.rstrip("/") == "/v2" else "other")
        by_kind[f"{match['method']} {kind}"] += 1
        if v2:
            by_repo[v2["repo"]] += 1
    return {"total": sum(by_kind.values()), "by_kind": dict(sorted(by_kind.items())),
            "by_repository": dict(sorted(by_repo.items()))}
