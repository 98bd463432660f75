"""shim-config/installer/install-shim.sh, run for real against throwaway node root directories.

containerd restarts and node labels go to recorder files (RESTART_CMD / LABEL_CMD), so each test
can count them; everything else the script does to the "node" is checked on disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "shim-config" / "installer" / "install-shim.sh"
SNIPPETS = REPO / "shim-config" / "containerd"

V2_PLUGIN = "io.containerd.grpc.v1.cri"
V3_PLUGIN = "io.containerd.cri.v1.runtime"

CONFIG_V2 = f"""version = 2
root = "/var/lib/containerd"

[plugins."{V2_PLUGIN}".containerd]
  default_runtime_name = "runc"
[plugins."{V2_PLUGIN}".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."{V2_PLUGIN}".containerd.runtimes.runc.options]
  SystemdCgroup = true
"""

CONFIG_V3 = f"""version = 3

[plugins."{V3_PLUGIN}".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."{V3_PLUGIN}".containerd.runtimes.runc.options]
  SystemdCgroup = false
"""


@dataclass
class Node:
    """A fake node: its root filesystem, the shim to install and the recorders."""

    root: Path
    shim: Path
    records: Path

    @property
    def config(self) -> Path:
        return self.root / "etc" / "containerd" / "config.toml"

    def write_config(self, text: str) -> None:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text)

    def backups(self) -> list[Path]:
        return sorted(self.config.parent.glob("config.toml.wasmkube-backup-*"))

    def restarts(self) -> int:
        path = self.records / "restarts"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def labels(self) -> list[str]:
        path = self.records / "labels"
        return path.read_text().splitlines() if path.exists() else []

    def runtimes(self, plugin: str) -> dict[str, dict[str, object]]:
        with self.config.open("rb") as f:
            doc = tomllib.load(f)
        runtimes: dict[str, dict[str, object]] = doc["plugins"][plugin]["containerd"]["runtimes"]
        return runtimes

    def run(self, **settings: str) -> subprocess.CompletedProcess[str]:
        """Runs the installer for the Wasmtime shim unless `settings` say otherwise."""
        # A python3 with tomllib first on PATH, whatever the machine's python3 is.
        bin_dir = self.records / "bin"
        bin_dir.mkdir(exist_ok=True)
        if not (bin_dir / "python3").exists():
            (bin_dir / "python3").symlink_to(sys.executable)
        env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "NODE_ROOT": str(self.root),
            "SHIM_NAME": "wasmtime",
            "SHIM_BINARY": str(self.shim),
            "RUNTIME_TYPE": "io.containerd.wasmtime.v1",
            "NODE_NAME": "node-a",
            "RESTART_CMD": f"echo restart >> {self.records / 'restarts'}",
            "LABEL_CMD": f'echo "$NODE_NAME $SHIM_LABEL_KEY=$SHIM_LABEL_VALUE" >> {self.records / "labels"}',
            **settings,
        }
        return subprocess.run(
            ["bash", str(INSTALLER)], env=env, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture
def node(tmp_path: Path) -> Node:
    root = tmp_path / "node"
    root.mkdir()
    records = tmp_path / "records"
    records.mkdir()
    shim = tmp_path / "containerd-shim-wasmtime-v1"
    shim.write_bytes(b"\x7fELF pretend shim v1\n")
    shim.chmod(0o600)  # the installer, not the source file, must make it executable
    return Node(root=root, shim=shim, records=records)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def test_v2_config_gets_the_runtime_under_the_grpc_cri_plugin(node: Node) -> None:
    node.write_config(CONFIG_V2)

    ok(node.run())

    runtimes = node.runtimes(V2_PLUGIN)
    assert runtimes["wasmtime"]["runtime_type"] == "io.containerd.wasmtime.v1"
    # SystemdCgroup follows runc's setting, i.e. the kubelet's cgroup driver.
    assert runtimes["wasmtime"]["options"] == {"SystemdCgroup": True}
    assert runtimes["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert node.config.read_text().startswith(CONFIG_V2), "existing settings must be kept as they were"
    [backup] = node.backups()
    assert backup.read_text() == CONFIG_V2
    assert node.restarts() == 1
    assert node.labels() == ["node-a wasmkube.dev/shim-wasmtime=ready"]


def test_second_run_changes_nothing(node: Node) -> None:
    node.write_config(CONFIG_V2)
    ok(node.run())
    configured = node.config.read_bytes()
    backups = node.backups()

    result = ok(node.run())

    assert node.config.read_bytes() == configured
    assert node.backups() == backups
    assert node.restarts() == 1
    assert "already has the wasmtime runtime" in result.stderr
    # Labelling is repeated on purpose: it puts back a label someone removed.
    assert len(node.labels()) == 2


def test_v3_config_gets_the_runtime_under_the_cri_runtime_plugin(node: Node) -> None:
    node.write_config(CONFIG_V3)

    ok(node.run(SHIM_NAME="spin", RUNTIME_TYPE="io.containerd.spin.v2"))

    runtimes = node.runtimes(V3_PLUGIN)
    assert runtimes["spin"]["runtime_type"] == "io.containerd.spin.v2"
    assert runtimes["spin"]["options"] == {"SystemdCgroup": False}
    assert V2_PLUGIN not in tomllib.loads(node.config.read_text())["plugins"]
    assert node.labels() == ["node-a wasmkube.dev/shim-spin=ready"]


@pytest.mark.parametrize(
    ("config", "toml_check", "message"),
    [
        ("version = 99\n", "python", "'version = 99'; only 2 (containerd 1.x) and 3"),
        ("version = 99\n", "grep", "'version = 99'; only 2 (containerd 1.x) and 3"),
        ('version = 2\n[plugins\n  runtime_type = "x"\n', "python", "not valid TOML"),
        ("[plugins.cri]\n  sandbox_image = 'pause'\n", "python", "no top-level 'version = 2|3' line"),
        ("[plugins.cri]\n  sandbox_image = 'pause'\n", "grep", "no top-level 'version = 2|3' line"),
        (
            f'version = 2\n[plugins."{V2_PLUGIN}".containerd.runtimes.wasmtime]\n  runtime_type = "other"\n',
            "grep",
            "already defines a 'wasmtime' runtime outside wasmkube's markers",
        ),
        (
            "version = 2\n# BEGIN wasmkube wasmtime\n[a]\n",
            "python",
            "unbalanced '# BEGIN/END wasmkube wasmtime' marker pair",
        ),
    ],
    ids=[
        "unknown-version",
        "unknown-version-grep",
        "invalid-toml",
        "version-1-layout",
        "version-1-layout-grep",
        "foreign-runtime",
        "unbalanced-markers",
    ],
)
def test_config_it_cannot_handle_is_refused_and_left_untouched(
    node: Node, config: str, toml_check: str, message: str
) -> None:
    node.write_config(config)

    result = node.run(TOML_CHECK=toml_check)

    assert result.returncode == 3
    assert message in result.stderr
    assert "file left untouched" in result.stderr
    assert node.config.read_text() == config
    assert node.backups() == []
    assert node.restarts() == 0
    assert node.labels() == []


def test_binary_is_installed_executable_and_linked_onto_containerds_path(node: Node) -> None:
    node.write_config(CONFIG_V2)

    ok(node.run())

    installed = node.root / "opt" / "wasmkube" / "bin" / "containerd-shim-wasmtime-v1"
    assert installed.read_bytes() == node.shim.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    link = node.root / "usr" / "local" / "bin" / "containerd-shim-wasmtime-v1"
    # The link is read by the node's containerd, so it names the node's path, not NODE_ROOT's.
    assert os.readlink(link) == "/opt/wasmkube/bin/containerd-shim-wasmtime-v1"


def test_binary_is_copied_only_when_its_content_changes(node: Node) -> None:
    node.write_config(CONFIG_V2)
    ok(node.run())
    installed = node.root / "opt" / "wasmkube" / "bin" / "containerd-shim-wasmtime-v1"
    first_inode = installed.stat().st_ino

    ok(node.run())
    assert installed.stat().st_ino == first_inode

    node.shim.write_bytes(b"\x7fELF pretend shim v2\n")
    ok(node.run())
    assert installed.read_bytes() == node.shim.read_bytes()
    # Replaced by rename, so running shims keep their old binary.
    assert installed.stat().st_ino != first_inode
    # containerd starts a new shim per pod, so a new binary needs no restart.
    assert node.restarts() == 1


def test_missing_config_is_created_as_version_2(node: Node) -> None:
    ok(node.run())

    assert tomllib.loads(node.config.read_text())["version"] == 2
    assert node.runtimes(V2_PLUGIN)["wasmtime"]["options"] == {"SystemdCgroup": False}
    assert node.backups() == []
    assert node.restarts() == 1


def test_changed_settings_replace_the_section_instead_of_adding_one(node: Node) -> None:
    node.write_config(CONFIG_V3)
    ok(node.run(SYSTEMD_CGROUP="false"))

    ok(node.run(SYSTEMD_CGROUP="true"))

    text = node.config.read_text()
    assert text.count("# BEGIN wasmkube wasmtime") == 1
    assert node.runtimes(V3_PLUGIN)["wasmtime"]["options"] == {"SystemdCgroup": True}
    assert len(node.backups()) == 2
    assert node.restarts() == 2


def test_two_shims_live_side_by_side(node: Node) -> None:
    node.write_config(CONFIG_V2)

    ok(node.run())
    ok(node.run(SHIM_NAME="spin", RUNTIME_TYPE="io.containerd.spin.v2"))
    configured = node.config.read_bytes()
    ok(node.run())

    runtimes = node.runtimes(V2_PLUGIN)
    assert runtimes["wasmtime"]["runtime_type"] == "io.containerd.wasmtime.v1"
    assert runtimes["spin"]["runtime_type"] == "io.containerd.spin.v2"
    assert node.config.read_bytes() == configured
    assert node.restarts() == 2


def test_failed_restart_is_retried_and_the_node_is_not_labelled_until_it_works(node: Node) -> None:
    node.write_config(CONFIG_V2)

    failed = node.run(RESTART_CMD="exit 1")
    assert failed.returncode == 4
    assert "containerd restart failed" in failed.stderr
    assert node.labels() == []

    # The config is already in place; the pending restart alone makes this run restart containerd.
    ok(node.run())
    assert node.restarts() == 1
    assert node.labels() == ["node-a wasmkube.dev/shim-wasmtime=ready"]
    ok(node.run())
    assert node.restarts() == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RUNTIME_TYPE": "wasmtime"}, "must look like io.containerd.<name>.v<N>"),
        ({"SHIM_BINARY": "/nonexistent/shim"}, "is not a file"),
        ({"HANDLER": "Not_A_Label"}, "must be a DNS label"),
    ],
)
def test_bad_settings_are_rejected_before_touching_the_node(node: Node, settings: dict[str, str], message: str) -> None:
    result = node.run(**settings)

    assert result.returncode == 2
    assert message in result.stderr
    assert list(node.root.iterdir()) == []


@pytest.mark.parametrize(
    ("config", "plugin", "snippet"),
    [
        ("version = 2\n", V2_PLUGIN, "containerd-1.x-config-v2.toml"),
        ("version = 3\n", V3_PLUGIN, "containerd-2.x-config-v3.toml"),
    ],
)
def test_installer_writes_what_the_documented_snippets_say(node: Node, config: str, plugin: str, snippet: str) -> None:
    node.write_config(config)

    ok(node.run(SYSTEMD_CGROUP="true"))
    ok(node.run(SHIM_NAME="spin", RUNTIME_TYPE="io.containerd.spin.v2", SYSTEMD_CGROUP="true"))

    documented = tomllib.loads((SNIPPETS / snippet).read_text())
    assert node.runtimes(plugin) == documented["plugins"][plugin]["containerd"]["runtimes"]
