#!/usr/bin/env python3
"""Pack one static executable into a docker-archive image tar that `ctr images import` accepts.

The real node needs a pause image, and there is no registry that serves one here (and no
Docker to build one). A docker-archive (`manifest.json` + config + one layer tar) is the
smallest format ctr imports *with a name*: the name comes from `RepoTags`, so no extra
`--index-name` flag is needed. Output is byte-for-byte reproducible (fixed timestamps,
sorted JSON), so rebuilding gives the same image ID and containerd keeps its cached copy.

    pack_image.py --binary pause --name wasmkube.local/pause:3.10.1 --output pause.tar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path

CREATED = "1970-01-01T00:00:00Z"
# The upstream pause image runs as nobody; keep that so pod security behaves the same.
PAUSE_USER = "65535:65535"


def layer_tar(binary: bytes, path_in_image: str) -> bytes:
    """A one-file layer: the executable at `path_in_image`, root-owned, mode 0755, mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path_in_image.lstrip("/"))
        info.size, info.mode, info.mtime = len(binary), 0o755, 0
        tar.addfile(info, io.BytesIO(binary))
    return buffer.getvalue()


def image_config(layer: bytes, entrypoint: str, user: str) -> bytes:
    """The image config (OCI/Docker v2 schema); diff_id = sha256 of the uncompressed layer."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {"Entrypoint": [entrypoint], "User": user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(name: str, layer: bytes, config: bytes) -> bytes:
    """`docker save` layout: manifest.json naming the config, the layer and the tag."""
    config_file = f"{hashlib.sha256(config).hexdigest()}.json"
    layer_file = f"{hashlib.sha256(layer).hexdigest()}/layer.tar"
    manifest = [{"Config": config_file, "RepoTags": [name], "Layers": [layer_file]}]
    files = {
        "manifest.json": json.dumps(manifest, sort_keys=True).encode(),
        config_file: config,
        layer_file: layer,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, required=True, help="static executable to put in the image")
    parser.add_argument("--name", required=True, help="image reference, e.g. wasmkube.local/pause:3.10.1")
    parser.add_argument("--output", type=Path, required=True, help="tar file to write")
    parser.add_argument("--path-in-image", default="/pause", help="where the binary lives in the image")
    parser.add_argument("--user", default=PAUSE_USER, help="image config User")
    args = parser.parse_args(argv)

    layer = layer_tar(args.binary.read_bytes(), args.path_in_image)
    config = image_config(layer, args.path_in_image, args.user)
    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    tmp.write_bytes(docker_archive(args.name, layer, config))
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
