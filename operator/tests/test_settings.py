"""Settings written once: `wasmkube run` and `wasmkube activator` flags and variables come from
their models (OperatorConfig, ActivatorConfig) through wasmkube.settings.

For every field of each model: its flag exists, its variable exists, --help shows the model's
default, the flag wins over the variable, and a bad value is refused on one line that names both,
with exit code 2. Then the command lines the chart and the e2e scripts really pass still parse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field
from test_chart import Helm, helm, of_kind, render

from e2e.support.activator import ActivatorProcess
from e2e.support.chart import chart_arguments
from e2e.support.operator import OperatorProcess
from wasmkube import cli
from wasmkube.activator import command as activator_command
from wasmkube.activator.config import ACTIVATOR_SETTINGS, ActivatorConfig
from wasmkube.config import OPERATOR_SETTINGS, OperatorConfig
from wasmkube.settings import Kind, Settings, SettingsError, shown_default

__all__ = ["helm"]  # the fixture, from test_chart


@dataclass(frozen=True)
class Program:
    command: str
    settings: Settings[Any]
    read: Callable[[argparse.Namespace, Mapping[str, str]], BaseModel]


PROGRAMS = {
    "run": Program("run", OPERATOR_SETTINGS, cli.config_from_args),
    "activator": Program("activator", ACTIVATOR_SETTINGS, activator_command.config_from_args),
}


def configure(command: str, argv: list[str], env: Mapping[str, str] | None = None) -> Any:
    """The model `wasmkube COMMAND ARGV...` would run with, in environment `env` (nothing else)."""
    args = cli.build_parser().parse_args([command, *argv])
    return PROGRAMS[command].read(args, env or {})


@dataclass(frozen=True)
class Sample:
    """Per field: a flag value and what it becomes, a variable value and what it becomes, a bad value."""

    flag: str
    flag_value: Any
    env: str
    env_value: Any
    bad: str


NAMESPACES = Sample("team-a,team-b", ("team-a", "team-b"), "apps", ("apps",), "Team_A")
LOG_FORMAT = Sample("json", "json", "console", "console", "xml")
LOG_LEVEL = Sample("debug", "DEBUG", "WARNING", "WARNING", "loud")
SWITCH = Sample("", True, "false", False, "maybe")

SAMPLES: dict[str, dict[str, Sample]] = {
    "run": {
        "namespaces": NAMESPACES,
        "workers": Sample("8", 8, "32", 32, "0"),
        "resync_seconds": Sample("30", 30.0, "60", 60.0, "5"),
        "api_timeout_seconds": Sample("5", 5.0, "7", 7.0, "0"),
        "registry_timeout_seconds": Sample("3", 3.0, "4", 4.0, "-1"),
        "registry_ttl_seconds": Sample("2", 2.0, "0", 0.0, "soon"),
        "insecure_registries": Sample(
            "127.0.0.1:5001",
            ("127.0.0.1:5001",),
            "localhost:5000 registry.local",
            ("localhost:5000", "registry.local"),
            "http://127.0.0.1:5001",
        ),
        "allowed_registries": Sample(
            "ghcr.io,127.0.0.1:5001", ("ghcr.io", "127.0.0.1:5001"), "docker.io", ("docker.io",), "ghcr.io/org"
        ),
        "liveness_port": Sample("8081", 8081, "0", 0, "65536"),
        "metrics_port": Sample("9191", 9191, "0", 0, "-1"),
        "bind_address": Sample("127.0.0.1", "127.0.0.1", "10.0.0.1", "10.0.0.1", "0.0.0.0/0"),
        "log_format": LOG_FORMAT,
        "log_level": LOG_LEVEL,
        "leader_elect": SWITCH,
        "leader_election_namespace": Sample("kube-system", "kube-system", "ops", "ops", "Ops!"),
        "leader_election_id": Sample("wasmkube-e2e", "wasmkube-e2e", "lease.one", "lease.one", "UPPER"),
        "lease_seconds": Sample("6", 6.0, "20", 20.0, "1"),
        "activator_service": Sample(
            "wasmkube-system/wasmkube-activator", "wasmkube-system/wasmkube-activator", "a/b", "a/b", "activator"
        ),
        "activator_addresses": Sample(
            "10.222.0.1:18012",
            ("10.222.0.1:18012",),
            "127.0.0.1:8012,127.0.0.1:8013",
            ("127.0.0.1:8012", "127.0.0.1:8013"),
            "localhost:8012",
        ),
    },
    "activator": {
        "namespaces": NAMESPACES,
        "port": Sample("18012", 18012, "0", 0, "http"),
        "admin_port": Sample("19090", 19090, "9999", 9999, "70000"),
        "bind_address": Sample("10.222.0.1", "10.222.0.1", "127.0.0.1", "127.0.0.1", "0.0.0.0/0"),
        "cluster_domain": Sample("example.internal", "example.internal", "corp.local", "corp.local", "Cluster_Local"),
        "idle_interval_seconds": Sample("1", 1.0, "2.5", 2.5, "0"),
        "pod_metrics_port": Sample("9092", 9092, "9093", 9093, "x"),
        "connect_timeout_seconds": Sample("2", 2.0, "3", 3.0, "nan"),
        "upstream_timeout_seconds": Sample("60", 60.0, "30", 30.0, "inf"),
        "shutdown_delay_seconds": Sample("1", 1.0, "0", 0.0, "-1"),
        "shutdown_timeout_seconds": Sample("30", 30.0, "10", 10.0, "0"),
        "leader_elect": SWITCH,
        "lease_namespace": Sample("team-a", "team-a", "ops", "ops", "bad-"),
        "lease_name": Sample("wasmkube-activator-2", "wasmkube-activator-2", "act", "act", "bad_name"),
        "lease_seconds": Sample("6", 6.0, "20", 20.0, "301"),
        "api_timeout_seconds": Sample("10", 10.0, "20", 20.0, "0"),
        "probe_interval_seconds": Sample("0.1", 0.1, "0.2", 0.2, "-0.1"),
        "log_format": LOG_FORMAT,
        "log_level": LOG_LEVEL,
    },
}
FIELDS = [(command, field) for command, samples in SAMPLES.items() for field in samples]


def flag_argv(command: str, field: str) -> list[str]:
    """The command line that sets `field` to its sample's flag value."""
    s = PROGRAMS[command].settings.setting(field)
    value = SAMPLES[command][field].flag
    return [s.flag] if s.kind is Kind.SWITCH else [s.flag, value]


@pytest.mark.parametrize("command", list(SAMPLES))
def test_every_field_has_a_sample(command: str) -> None:
    """A new field fails here until it is given samples, so all the tests below cover it."""
    model = PROGRAMS[command].settings.model
    assert set(SAMPLES[command]) == set(model.model_fields)


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_the_flag_sets_the_field(command: str, field: str) -> None:
    assert getattr(configure(command, flag_argv(command, field)), field) == SAMPLES[command][field].flag_value


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_the_variable_sets_the_field(command: str, field: str) -> None:
    s = PROGRAMS[command].settings.setting(field)
    sample = SAMPLES[command][field]
    assert getattr(configure(command, [], {s.env: sample.env}), field) == sample.env_value


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_the_flag_overrides_the_variable(command: str, field: str) -> None:
    s = PROGRAMS[command].settings.setting(field)
    sample = SAMPLES[command][field]
    assert sample.flag_value != sample.env_value
    assert getattr(configure(command, flag_argv(command, field), {s.env: sample.env}), field) == sample.flag_value


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_nothing_given_is_the_model_default(command: str, field: str) -> None:
    model = PROGRAMS[command].settings.model
    assert getattr(configure(command, []), field) == model.model_fields[field].default


def help_entries(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """`wasmkube COMMAND --help`, as {option invocation: its help text}."""
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--help"])
    assert caught.value.code == 0
    entries: dict[str, str] = {}
    current = ""
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):
            current, _, rest = line.strip().partition("  ")
            entries[current] = rest.strip()
        elif current and line.startswith("   ") and line.strip():
            entries[current] = f"{entries[current]} {line.strip()}".strip()
        else:
            current = ""
    return entries


def help_of(entries: dict[str, str], flag: str) -> str:
    [text] = [text for invocation, text in entries.items() if flag in invocation.replace(",", " ").split()]
    return text


def parse_shown(shown: str, default: Any) -> Any:
    """Read back what --help shows as a default, in the type of the model's default."""
    if shown == "none":
        return () if default == () else None
    if isinstance(default, bool):
        return {"on": True, "off": False}[shown]
    return type(default)(shown)


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_help_shows_the_model_default_and_the_variable(
    command: str, field: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    s = PROGRAMS[command].settings.setting(field)
    info = PROGRAMS[command].settings.model.model_fields[field]
    text = help_of(help_entries(command, capsys), s.flag)
    assert text.startswith(str(info.description))
    shown = text.split("default: ", 1)[1].split(";", 1)[0]
    assert parse_shown(shown, info.default) == info.default
    assert f"env {s.env}" in text


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_a_bad_flag_value_is_refused_naming_the_flag(
    command: str, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s = PROGRAMS[command].settings.setting(field)
    bad = SAMPLES[command][field].bad
    # A switch takes no value: argparse itself refuses one (exit 2, naming the flag).
    argv = [f"{s.flag}={bad}"] if s.kind is Kind.SWITCH else [s.flag, bad]
    with pytest.raises(SystemExit) as caught:
        configure(command, argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert s.flag in err
    if s.kind is not Kind.SWITCH:
        assert err.startswith(f"wasmkube {command}: error: {s.flag} / {s.env}: ")
        assert err.count("\n") == 1
        assert repr(bad) in err


@pytest.mark.parametrize(("command", "field"), FIELDS)
def test_a_bad_variable_value_is_refused_naming_flag_and_variable(
    command: str, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s = PROGRAMS[command].settings.setting(field)
    bad = SAMPLES[command][field].bad
    with pytest.raises(SystemExit) as caught:
        configure(command, [], {s.env: bad})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err == f"wasmkube {command}: error: {s.flag} / {s.env}: {err.split(': ', 3)[3]}"
    assert err.count("\n") == 1
    assert f"from {s.env}:" in err


@pytest.mark.parametrize("command", list(PROGRAMS))
def test_main_exits_2_on_a_bad_value_before_starting_anything(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("started despite a bad setting")

    monkeypatch.setattr("wasmkube.handlers.run_operator", never)
    monkeypatch.setattr("wasmkube.activator.server.run_activator", never)
    monkeypatch.setenv(PROGRAMS[command].settings.setting("log_level").env, "loud")
    with pytest.raises(SystemExit) as caught:
        cli.main([command])
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# --- precedence, syntax and groups ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "default"),
        ([], {"WASMKUBE_POD_NAMESPACE": "pods"}, "pods"),
        ([], {"WASMKUBE_POD_NAMESPACE": "pods", "WASMKUBE_LEADER_ELECTION_NAMESPACE": "own"}, "own"),
        ([], {"WASMKUBE_POD_NAMESPACE": "pods", "WASMKUBE_LEADER_ELECTION_NAMESPACE": ""}, "pods"),
        (
            ["--leader-election-namespace", "flag"],
            {"WASMKUBE_POD_NAMESPACE": "pods", "WASMKUBE_LEADER_ELECTION_NAMESPACE": "own"},
            "flag",
        ),
    ],
)
def test_flag_then_variable_then_fallback_variable_then_default(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    assert configure("run", argv, env).leader_election_namespace == expected


def test_the_activator_lease_falls_back_to_the_pod_namespace() -> None:
    assert configure("activator", [], {"WASMKUBE_POD_NAMESPACE": "wasmkube-system"}).lease_namespace == (
        "wasmkube-system"
    )


def test_an_empty_variable_counts_as_unset() -> None:
    config = configure(
        "run", [], {"WASMKUBE_WORKERS": "", "WASMKUBE_ALLOWED_REGISTRIES": " , ", "WASMKUBE_ACTIVATOR_SERVICE": ""}
    )
    assert (config.workers, config.allowed_registries, config.activator_service) == (64, None, None)


@pytest.mark.parametrize("text", ["1", "true", "yes", "TRUE", "on"])
def test_leader_elect_variable_spellings_of_true(text: str) -> None:
    assert configure("run", [], {"WASMKUBE_LEADER_ELECT": text}).leader_elect is True
    assert configure("activator", [], {"WASMKUBE_ACTIVATOR_LEADER_ELECT": text}).leader_elect is True


def test_no_leader_elect_overrides_the_variable() -> None:
    assert configure("run", ["--no-leader-elect"], {"WASMKUBE_LEADER_ELECT": "true"}).leader_elect is False


def test_repeatable_flags_and_comma_separated_values_add_up() -> None:
    config = configure(
        "run", ["-n", "a", "--namespace", "b,c", "--insecure-registry", "r1:5000", "--insecure-registry", "r2:5000"]
    )
    assert config.namespaces == ("a", "b", "c")
    assert config.insecure_registries == ("r1:5000", "r2:5000")


def test_repeated_flags_replace_the_variable_instead_of_adding_to_it() -> None:
    assert configure("run", ["-n", "a"], {"WASMKUBE_NAMESPACES": "b"}).namespaces == ("a",)


def test_an_empty_allowed_registry_is_refused_not_read_as_allow_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        configure("run", ["--allowed-registry", ""])
    assert "--allowed-registry / WASMKUBE_ALLOWED_REGISTRIES: ''" in capsys.readouterr().err


def test_all_namespaces_wins_over_the_namespaces_variable() -> None:
    config = configure("run", ["-A"], {"WASMKUBE_NAMESPACES": "team-a"})
    assert config.namespaces == ()
    assert config.clusterwide


def test_namespace_and_all_namespaces_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        configure("run", ["-n", "a", "--all-namespaces"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_an_activator_address_flag_replaces_the_activator_service_variable() -> None:
    """What `make demo` does: the chart's --activator-service swapped for --activator-address."""
    config = configure(
        "run",
        ["--activator-address", "10.222.0.1:8012"],
        {"WASMKUBE_ACTIVATOR_SERVICE": "wasmkube-system/wasmkube-activator"},
    )
    assert (config.activator_service, config.activator_addresses) == (None, ("10.222.0.1:8012",))


def test_activator_service_and_addresses_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        configure("run", ["--activator-service", "a/b", "--activator-address", "10.0.0.1:1"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        configure("run", [], {"WASMKUBE_ACTIVATOR_SERVICE": "a/b", "WASMKUBE_ACTIVATOR_ADDRESSES": "10.0.0.1:1"})
    assert caught.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "WASMKUBE_ACTIVATOR_SERVICE" in err and "WASMKUBE_ACTIVATOR_ADDRESSES" in err


def test_a_field_without_description_cannot_become_a_flag() -> None:
    class Undocumented(BaseModel):
        workers: int = 1

    with pytest.raises(TypeError, match="workers has no description"):
        Settings(Undocumented, "X_")


def test_settings_error_lists_every_bad_value_on_one_line() -> None:
    class Two(BaseModel):
        a: Annotated[int, Field(ge=1, description="a")] = 1
        b: Annotated[int, Field(ge=1, description="b")] = 1

    settings = Settings(Two, "X_")
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    with pytest.raises(SettingsError) as caught:
        settings.from_args(parser.parse_args(["--a", "0"]), {"X_B": "0"})
    assert str(caught.value) == (
        "--a / X_A: '0' from --a: Input should be greater than or equal to 1; "
        "--b / X_B: '0' from X_B: Input should be greater than or equal to 1"
    )


def test_shown_defaults() -> None:
    assert [shown_default(v) for v in (None, (), False, True, 600.0, 0.05, 64, "INFO")] == [
        "none",
        "none",
        "off",
        "on",
        "600",
        "0.05",
        "64",
        "INFO",
    ]


# --- what the chart and the e2e scripts pass ----------------------------------------------------

NS = "wasmkube-system"
ACTIVATOR_SERVICE = f"{NS}/wasmkube-activator"
# The chart's operator arguments (test_chart.py asserts these are what it renders).
CHART_OPERATOR_DEFAULT = [
    "--all-namespaces",
    "--liveness-port",
    "8080",
    "--metrics-port",
    "9090",
    "--log-format",
    "json",
    "--log-level",
    "INFO",
    "--registry-ttl-seconds",
    "300",
    "--activator-service",
    ACTIVATOR_SERVICE,
]
CHART_OPERATOR_VALUES = [
    "--namespace",
    "team-a",
    "--namespace",
    "team-b",
    "--liveness-port",
    "8080",
    "--metrics-port",
    "9090",
    "--log-format",
    "json",
    "--log-level",
    "INFO",
    "--insecure-registry",
    "127.0.0.1:5001",
    "--allowed-registry",
    "ghcr.io",
    "--allowed-registry",
    "127.0.0.1:5001",
    "--registry-ttl-seconds",
    "60",
    "--activator-service",
    ACTIVATOR_SERVICE,
    "--workers",
    "4",
]
CHART_OPERATOR_HA = [*CHART_OPERATOR_DEFAULT, "--leader-elect", "--lease-seconds", "15"]
# templates/activator-deployment.yaml with its default values.
CHART_ACTIVATOR = [
    "--port",
    "8012",
    "--admin-port",
    "9090",
    "--idle-interval-seconds",
    "5",
    "--shutdown-delay-seconds",
    "5",
    "--shutdown-timeout-seconds",
    "120",
    "--leader-elect",
    "--lease-name",
    "wasmkube-activator",
    "--log-format",
    "json",
    "--log-level",
    "INFO",
]
POD_ENV = {"WASMKUBE_POD_NAMESPACE": NS}


def test_the_chart_operator_arguments_parse() -> None:
    config = configure("run", CHART_OPERATOR_DEFAULT, POD_ENV)
    assert config.clusterwide and config.activator_service == ACTIVATOR_SERVICE
    assert (config.liveness_port, config.metrics_port, config.registry_ttl_seconds) == (8080, 9090, 300.0)
    config = configure("run", CHART_OPERATOR_VALUES, POD_ENV)
    assert config.namespaces == ("team-a", "team-b")
    assert config.allowed_registries == ("ghcr.io", "127.0.0.1:5001")
    assert config.workers == 4
    config = configure("run", CHART_OPERATOR_HA, POD_ENV)
    assert (config.leader_elect, config.lease_seconds, config.leader_election_namespace) == (True, 15.0, NS)


def test_the_chart_activator_arguments_parse() -> None:
    config = configure("activator", CHART_ACTIVATOR, POD_ENV)
    assert config == ActivatorConfig(leader_elect=True, lease_namespace=NS, log_format="json")
    config = configure("activator", ["--namespace", "team-a", "--namespace", "team-b", *CHART_ACTIVATOR], POD_ENV)
    assert config.namespaces == ("team-a", "team-b")


def test_the_chart_values_match_the_model_defaults() -> None:
    """values.yaml repeats a few defaults (it must render them as flags): they agree."""
    import yaml

    values = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts/wasmkube/values.yaml").read_text())
    operator, activator = OperatorConfig(), ActivatorConfig()
    assert values["registry"]["cacheTTLSeconds"] == operator.registry_ttl_seconds
    assert values["ha"]["leaseSeconds"] == operator.lease_seconds
    assert values["logLevel"] == operator.log_level == activator.log_level
    assert values["activator"]["idleIntervalSeconds"] == activator.idle_interval_seconds
    assert values["activator"]["shutdownDelaySeconds"] == activator.shutdown_delay_seconds
    assert values["activator"]["shutdownTimeoutSeconds"] == activator.shutdown_timeout_seconds


def test_the_demo_swaps_the_activator_service_for_an_address() -> None:
    """e2e/demo.py: the chart's arguments without --activator-service, plus --activator-address."""
    args = chart_arguments(CHART_OPERATOR_DEFAULT)
    at = args.index("--activator-service")
    del args[at : at + 2]
    config = configure("run", [*args, "--activator-address", "10.222.0.1:8012"], POD_ENV)
    assert config.activator_addresses == ("10.222.0.1:8012",) and config.activator_service is None


# Extra arguments the e2e tests and benchmarks give (file: arguments).
E2E_OPERATOR_ARGS = {
    "support/operator_fixtures.py": [
        "--insecure-registry",
        "127.0.0.1:5001",
        "--insecure-registry",
        "127.0.0.1:5002",
        "--insecure-registry",
        "127.0.0.1:5003",
        "--registry-timeout-seconds",
        "3",
        "--registry-ttl-seconds",
        "2",
        "--resync-seconds",
        "30",
    ],
    "support/reliability_fixtures.py": [
        "--namespace",
        "e2e-x",
        "--insecure-registry",
        "127.0.0.1:5001",
        "--registry-timeout-seconds",
        "3",
        "--registry-ttl-seconds",
        "2",
    ],
    "test_reliability.py (HA)": [
        "--leader-elect",
        "--leader-election-namespace",
        "e2e-x",
        "--leader-election-id",
        "wasmkube-e2e",
        "--lease-seconds",
        "6",
    ],
    "test_scale_to_zero_cluster.py": ["--namespace", "e2e-x", "--activator-address", "10.222.0.1:18012"],
    "bench/operator_run.py": [
        "--insecure-registry",
        "127.0.0.1:5001",
        "--workers",
        "64",
        "--namespace",
        "bench",
        "--resync-seconds",
        "60",
    ],
    "bench/wake_row.py": [
        "--namespace",
        "bench",
        "--insecure-registry",
        "127.0.0.1:5001",
        "--activator-address",
        "10.222.0.1:40000",
    ],
}
E2E_ACTIVATOR_ARGS = {
    "test_scale_to_zero_cluster.py": ["--leader-elect", "--lease-namespace", "e2e-x", "--lease-seconds", "6"],
    "demo_real_node.py": ["--log-format", "console"],
}


@pytest.mark.parametrize("where", list(E2E_OPERATOR_ARGS))
def test_the_e2e_operator_command_lines_parse(where: str) -> None:
    process = OperatorProcess(Path("kubeconfig"), Path("operator.log"), extra_args=E2E_OPERATOR_ARGS[where])
    cmd, _ = process.command()
    assert cmd[1:4] == ["-m", "wasmkube.cli", "run"]
    config = configure("run", cmd[4:])
    assert (config.liveness_port, config.metrics_port) == (process.liveness_port, process.metrics_port)
    assert config.bind_address == "127.0.0.1"


@pytest.mark.parametrize("where", list(E2E_ACTIVATOR_ARGS))
def test_the_e2e_activator_command_lines_parse(where: str) -> None:
    process = ActivatorProcess(
        Path("kubeconfig"), Path("activator.log"), "127.0.0.1", "e2e-x", extra_args=E2E_ACTIVATOR_ARGS[where]
    )
    cmd, _ = process.command()
    assert cmd[1:4] == ["-m", "wasmkube.cli", "activator"]
    config = configure("activator", cmd[4:])
    assert (config.port, config.admin_port, config.namespaces) == (process.port, process.admin_port, ("e2e-x",))


@pytest.mark.parametrize(
    "values",
    [
        [],
        [
            "--set",
            "watchNamespaces={team-a,team-b}",
            "--set",
            "registry.insecure={127.0.0.1:5001}",
            "--set",
            "registry.allowed={ghcr.io}",
            "--set",
            "extraArgs={--workers,4}",
        ],
        ["--set", "ha.enabled=true"],
    ],
    ids=["defaults", "values", "ha"],
)
def test_every_deployment_the_chart_renders_parses(helm: Helm, values: list[str]) -> None:
    """The real Helm's rendering (skipped where Helm is not built), both Deployments."""
    deployments = of_kind(render(helm, *values), "Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"][0] == "wasmkube"
        env = {
            item["name"]: NS
            for item in container.get("env") or []
            if item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace"
        }
        config = configure(container["command"][1], [str(a) for a in container["args"]], env)
        assert config.log_format == "json"
