"""The one place timestamps are written and read: the forms the Kubernetes API uses."""

from __future__ import annotations

import re

import pytest

from wasmkube.timestamps import now_rfc3339, now_rfc3339_micro, parse_rfc3339, rfc3339

JAN_1_2024 = 1704067200.0


def test_time_is_whole_seconds_in_utc() -> None:
    assert rfc3339(JAN_1_2024 + 0.9) == "2024-01-01T00:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now_rfc3339())


def test_micro_time_has_six_fraction_digits() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now_rfc3339_micro())


@pytest.mark.parametrize(
    "stamp",
    ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00"],
)
def test_every_rfc3339_form_reads_back(stamp: str) -> None:
    assert parse_rfc3339(stamp) == JAN_1_2024


def test_what_we_write_reads_back() -> None:
    assert parse_rfc3339(rfc3339(JAN_1_2024)) == JAN_1_2024


@pytest.mark.parametrize("value", [None, "", "yesterday", 1704067200, {"time": "2024-01-01T00:00:00Z"}])
def test_anything_else_reads_as_no_time(value: object) -> None:
    assert parse_rfc3339(value) is None
