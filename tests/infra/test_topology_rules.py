"""Every topology the suite synthesizes keeps the rules the code must keep whatever the
settings (tests/topology_rules.py): least-privilege grants, no write to a triggering bucket,
names within GCP's limits, Pub/Sub's ranges, a push ack deadline with room for a cold start."""

from __future__ import annotations

import pytest

from tests import topology_rules

pytestmark = pytest.mark.synth


def test_every_synthesized_topology_keeps_the_rules(synthesized):
    assert len(synthesized) >= 5  # the defaults, every option, the environments, the local ones
    for stack_id, synth in synthesized.items():
        assert topology_rules.problems(synth.topology) == [], stack_id
