"""Output rules on the local stack: a rules change rolled out to the running functions, then
`scripts/backfill --stale` bringing every doc to the new fingerprint and leaving none of the
old rules' thumbnails behind; cover sizes and metadata passthrough end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from infra.local.control import settings_body
from infra.local.local_stack import LocalStack
from infra.model.config import load_config
from infra.ops import backfill
from infra.ops import target as targets
from tests.integration.conftest import TEST_SETTINGS, Harness

pytestmark = pytest.mark.integration


def photo(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400 + seed, 300), (seed * 50 % 256, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def leaves(harness: Harness, name: str) -> list[str]:
    return sorted(b.name.rsplit("/", 1)[1] for b in harness.thumbnail_blobs(name))


def test_a_rules_change_and_backfill_stale_regenerate_every_doc(
    harness: Harness, local_stack: LocalStack, prefix: str, tmp_path: Path
) -> None:
    squares, plain = [f"{prefix}squares/{i}.jpg" for i in range(3)], f"{prefix}misc/x.jpg"
    for i, name in enumerate([*squares, plain]):
        harness.upload(name, photo(i), metadata={"owner": f"u{i}", "private": "x"})
    old = {n: harness.wait_doc(n, lambda d: d.get("status") == "processed") for n in squares}
    harness.wait_doc(plain, lambda d: d.get("status") == "processed")
    old_leaves = leaves(harness, squares[0])
    assert old_leaves and not any("-c." in leaf for leaf in old_leaves)
    original = local_stack.config
    rules = [{"name": "squares", "include": [f"{prefix}squares/**"], "sizes": ["48x48:cover"]}]
    changed = load_config(
        overrides={**TEST_SETTINGS, "output_rules": rules, "metadata_keys": "owner"}
    )
    try:  # what `scripts/local redeploy` sends the running stack
        answer = requests.put(
            f"{local_stack.info()['router']['url']}/settings",
            json=settings_body(changed),
            timeout=180,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"outputFingerprint": changed.output_fingerprint}
        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(local_stack.info(), default=str))
        target = targets.from_stack_file(stack_file)
        fingerprint = target.output_fingerprint()
        assert fingerprint == changed.output_fingerprint != old[squares[0]]["outputFingerprint"]

        runs: dict[str, Any] = {
            "prefix": prefix,
            "fingerprint": fingerprint,
            "checkpoint_path": tmp_path / "checkpoint.json",
            "err": io.StringIO(),
            "rate": 50,
        }
        dry = io.StringIO()
        assert backfill.run(target, out=dry, **runs).selected == 4
        assert dry.getvalue().count("made under output rules") == 4
        assert leaves(harness, squares[0]) == old_leaves, "a dry run changes nothing"
        first = backfill.run(target, limit=2, execute=True, out=io.StringIO(), **runs)
        rest = backfill.run(target, limit=10, execute=True, out=io.StringIO(), **runs)
        assert (first.selected, rest.selected, first.failed + rest.failed) == (2, 2, 0)

        for name in squares:
            doc = harness.wait_doc(name, lambda d: d.get("outputFingerprint") == fingerprint)
            assert doc["rule"] == "squares" and doc["metadata"] == {
                "owner": doc["metadata"]["owner"]
            }
            assert leaves(harness, name) == ["48x48-c.webp"], "no output of the old rules is left"
            (entry,) = doc["thumbnails"]
            assert (entry["width"], entry["height"], entry["box"]) == (48, 48, "48x48:cover")
            assert entry["uri"] == f"gs://{harness.thumbnails.name}/{entry['name']}"
            blob = harness.thumbnails.get_blob(entry["name"])
            assert (
                blob.metadata["owner"] == doc["metadata"]["owner"]
                and "private" not in blob.metadata
            )
            assert harness.thumbnail_image(entry["name"]).size == (48, 48)
        doc = harness.wait_doc(plain, lambda d: d.get("outputFingerprint") == fingerprint)
        assert doc["rule"] is None and leaves(harness, plain) == old_leaves
        assert backfill.run(target, out=io.StringIO(), **runs).selected == 0
    finally:
        local_stack.redeploy(original)


def test_settings_that_would_rename_resources_are_refused_by_the_running_stack(
    local_stack: LocalStack,
) -> None:
    moved = load_config(overrides={**TEST_SETTINGS, "prefix": "other"})
    answer = requests.put(
        f"{local_stack.info()['router']['url']}/settings", json=settings_body(moved), timeout=60
    )
    assert answer.status_code == 400 and "changes resource names" in answer.text
    bad = {**settings_body(local_stack.config), "thumbnail_sizes": "64x64:fill"}
    answer = requests.put(f"{local_stack.info()['router']['url']}/settings", json=bad, timeout=60)
    assert answer.status_code == 400 and "unknown fit mode" in answer.text
