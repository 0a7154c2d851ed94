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

from image_pipeline.settings import Settings
from infra.local.control import settings_body
from infra.local.local_stack import LocalStack
from infra.model.config import load_config
from infra.model.topology import build_topology
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
        made_by = Settings.from_env(build_topology(changed).functions["make_thumbnail"].env)
        assert answer.json() == {"outputFingerprint": made_by.outputs.fingerprint}
        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(local_stack.info(), default=str))
        target = targets.from_stack_file(stack_file)
        fingerprint = target.settings.outputs.fingerprint
        assert fingerprint == made_by.outputs.fingerprint != old[squares[0]]["outputFingerprint"]

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


def _redeploy(local_stack: LocalStack, **changes: Any) -> str:
    """What `scripts/local redeploy --set NAME=VALUE` sends the running stack; the deployed
    fingerprint it answers with."""
    config = load_config(overrides={**TEST_SETTINGS, **changes})
    url = f"{local_stack.info()['router']['url']}/settings"
    answer = requests.put(url, json=settings_body(config), timeout=180)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outputFingerprint"])


def _gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "W", 4: (2.0, 17.0, 40.0)})
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (90, 140, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _gif() -> bytes:
    frames = [Image.new("RGB", (60, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.mark.parametrize(
    ("made_under", "now", "data", "changed"),
    [
        # Animated thumbnails turned on: the first-frame thumbnails are stale.
        ({}, {"animated": True}, _gif, lambda doc: doc["thumbnails"][0]["frames"] == 3),
        # GPS turned off: a doc holding GPS is stale, and loses it when re-processed.
        (
            {"exif_include_gps": True},
            {},
            _gps_jpeg,
            lambda doc: "gps" not in (doc["exif"] or {}),
        ),
    ],
    ids=["animated", "exif_include_gps"],
)
def test_a_changed_output_setting_makes_backfill_stale_select_what_it_made(
    harness: Harness,
    local_stack: LocalStack,
    prefix: str,
    tmp_path: Path,
    made_under: dict[str, Any],
    now: dict[str, Any],
    data: Any,
    changed: Any,
) -> None:
    original = local_stack.config
    name = f"{prefix}setting.img"
    try:
        before = _redeploy(local_stack, **made_under)
        harness.upload(name, data())
        old = harness.wait_doc(name, lambda d: d.get("status") == "processed")
        assert old["outputFingerprint"] == before and not changed(old)
        fingerprint = _redeploy(local_stack, **now)
        assert fingerprint != before
        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(local_stack.info(), default=str))
        target = targets.from_stack_file(stack_file)
        assert target.settings.outputs.fingerprint == fingerprint
        runs = {"prefix": prefix, "fingerprint": fingerprint, "err": io.StringIO(), "rate": 50}
        runs["checkpoint_path"] = tmp_path / "checkpoint.json"
        dry = io.StringIO()
        assert backfill.run(target, out=dry, **runs).selected == 1
        assert f"made under output rules {before}" in dry.getvalue()
        assert backfill.run(target, execute=True, out=io.StringIO(), **runs).failed == 0
        doc = harness.wait_doc(name, lambda d: d.get("outputFingerprint") == fingerprint)
        assert changed(doc), doc
        assert backfill.run(target, out=io.StringIO(), **runs).selected == 0
    finally:
        local_stack.redeploy(original)
