"""Firestore single-field index exemptions: the steadily increasing and large fields are
exempt, and no field the code queries is."""

from __future__ import annotations

import re

import pytest

from infra.common.paths import ROOT
from infra.deploy.constructs.firestore import UNINDEXED_FIELDS

pytestmark = pytest.mark.synth

# How the code and the docs query Firestore: FieldFilter("field", ...), .where("field", ...),
# .order_by("field").
_QUERIED = re.compile(
    r"""(?:FieldFilter|\.where|\.order_by)\(\s*(?:filter=FieldFilter\()?["'](\w+)["']"""
)


def queried_fields() -> set[str]:
    sources = [
        *ROOT.glob("functions/**/*.py"),
        *ROOT.glob("infra/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
        *ROOT.glob("docs/*.md"),
        ROOT / "README.md",
    ]
    return {m for path in sources for m in _QUERIED.findall(path.read_text(errors="replace"))}


def test_sequential_and_large_fields_have_no_single_field_index(stack):
    fields = stack.all("google_firestore_field")
    exempt = {(f["collection"], f["field"]) for f in fields}
    t = stack.topology
    assert exempt == {
        (t.collections[key], name) for key, names in UNINDEXED_FIELDS.items() for name in names
    }
    for key in ("updatedAt", "timeCreated", "generation", "exif", "thumbnails", "timings"):
        assert (t.collections["images"], key) in exempt
    for key in ("recordedAt", "publishTime", "data"):
        assert (t.collections["dead_letters"], key) in exempt
    for f in fields:
        # An empty index_config removes every single-field index of the field.
        assert f["index_config"] == {}, f
        assert f["database"] == "(default)" and f["project"] == t.project


def test_no_queried_field_is_exempt(stack):
    queried = queried_fields()
    assert "name" in queried, "the check must see the benchmark's range query on name"
    exempt = {f["field"] for f in stack.all("google_firestore_field")}
    assert not exempt & queried
