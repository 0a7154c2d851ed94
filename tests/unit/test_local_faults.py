"""Fault injection settings and decisions, and the control endpoint's request handling."""

from __future__ import annotations

import pytest

from infra.local.faults import FaultError, Faults, FaultSettings


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
    faults.fail(["write_metadata"])
    assert faults.injected_status("write_metadata") == 500
    assert faults.injected_status("cleanup") is None
    faults.heal(["write_metadata"])
    assert faults.injected_status("write_metadata") is None


def test_rates_are_seeded_and_roughly_right():
    a, b = Faults(FaultSettings(transient_rate=0.3, seed=1)), Faults(FaultSettings(seed=1))
    b.update(transient_rate=0.3)
    first = [a.injected_status("f") for _ in range(1000)]
    assert first == [b.injected_status("f") for _ in range(1000)]
    assert 200 < first.count(503) < 400


def test_reorder_only_with_a_window():
    items = list(range(20))
    assert Faults().reorder(items) == items
    shuffled = Faults(FaultSettings(reorder_window=20, seed=3)).reorder(items)
    assert sorted(shuffled) == items and shuffled != items


def test_reset_keeps_the_seed():
    faults = Faults(FaultSettings(duplicate_rate=1.0, seed=9))
    faults.reset()
    assert faults.settings == FaultSettings(seed=9)
