"""The synthesized stacks the infra tests read (one synth per session: tests/synthesis.py)."""

from __future__ import annotations

import pytest

from tests.synthesis import ALT_ID, DEFAULT_ID, Synth


@pytest.fixture(scope="session")
def stack(synthesized: dict[str, Synth]) -> Synth:
    """The stack of the default settings."""
    return synthesized[DEFAULT_ID]


@pytest.fixture(scope="session")
def alt_stack(synthesized: dict[str, Synth]) -> Synth:
    """The stack of `ALT_SETTINGS`: other region, sizes, prefix, limits."""
    return synthesized[ALT_ID]


@pytest.fixture(scope="session")
def team(synthesized: dict[str, Synth]) -> list[Synth]:
    """The environments of `ENVIRONMENTS_CDKTF_JSON`: dev and prod in one project."""
    return [synthesized["image-pipeline-dev"], synthesized["image-pipeline-prod"]]
