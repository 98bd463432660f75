"""Condition messages never exceed what the CRD accepts (found by e2e/test_hostile_input.py)."""

from __future__ import annotations

import pytest

from wasmkube.api.common import MAX_CONDITION_MESSAGE, Condition
from wasmkube.status.conditions import Verdict, bounded_message, build_conditions


@pytest.mark.parametrize("unit", ["k", "ü", "🚀"])
def test_long_messages_are_cut_to_the_crd_limit(unit: str) -> None:
    message = "the API server refused a generated object: " + unit * 100_000
    verdict = Verdict("stalled", "InvalidSpec", message)
    for condition in build_conditions(verdict, 1, None, "2026-01-01T00:00:00Z"):
        assert len(condition["message"].encode()) <= MAX_CONDITION_MESSAGE
        Condition.model_validate(condition)
    assert bounded_message(message).startswith("the API server refused")
    assert bounded_message(message).endswith("(truncated)")


def test_short_messages_are_kept_as_they_are() -> None:
    message = "x" * MAX_CONDITION_MESSAGE
    assert bounded_message(message) == message
