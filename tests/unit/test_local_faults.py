"""Fault injection settings and decisions."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from infra.local.control import apply_fault_request
from infra.local.fidelity.faults import FaultError, Faults, FaultSettings

FUNCTIONS = ("write_metadata", "cleanup", "f")


def call(function: str = "f"):
    return SimpleNamespace(function=function)


def test_settings_round_trip_and_validation():
    settings = FaultSettings(duplicate_rate=0.2, reorder_window=5, failing=frozenset({"a"}))
    assert FaultSettings.from_json(settings.to_json()) == settings
    with pytest.raises(FaultError, match="duplicate_rate"):
        FaultSettings(duplicate_rate=1.5)
    with pytest.raises(FaultError, match="unknown"):
        FaultSettings.from_json({"bogus": 1})


def test_failing_until_healed():
    faults = Faults()
    assert faults.injected_status("write_metadata") is None
    apply_fault_request(faults, {"fail": ["write_metadata"]}, FUNCTIONS)
    assert faults.injected_status("write_metadata") == 500
    assert faults.injected_status("cleanup") is None
    with faults.gate(call("write_metadata")) as answer:
        assert answer == 500  # answered for the function: the request is never sent
    apply_fault_request(faults, {"heal": "all"}, FUNCTIONS)
    assert faults.injected_status("write_metadata") is None


def test_rates_are_seeded_and_roughly_right():
    a, b = Faults(FaultSettings(transient_rate=0.3, seed=1)), Faults(FaultSettings(seed=1))
    apply_fault_request(b, {"transient_rate": 0.3}, FUNCTIONS)
    first = [a.injected_status("f") for _ in range(1000)]
    assert first == [b.injected_status("f") for _ in range(1000)]
    assert 200 < first.count(503) < 400


def test_duplicates_only_of_successes():
    faults = Faults(FaultSettings(duplicate_rate=1.0, seed=2))
    assert faults.answered(call(), 500) is None
    assert 0 <= faults.answered(call(), 204) <= 0.3


def test_reordering_delays_each_delivery_within_the_window():
    faults = Faults(FaultSettings(reorder_window=4, seed=3))
    waits = []
    for _ in range(5):
        started = time.monotonic()
        with faults.gate(call()) as answer:
            assert answer is None
        waits.append(time.monotonic() - started)
    assert all(w <= 0.25 for w in waits) and len({round(w, 3) for w in waits}) > 1


def test_reset_keeps_the_seed():
    faults = Faults(FaultSettings(duplicate_rate=1.0, seed=9))
    apply_fault_request(faults, {"reset": True}, FUNCTIONS)
    assert faults.settings == FaultSettings(seed=9)
