"""`scripts/smoke --local` against the suite's stack, through the same entry point a user
runs: it passes on a healthy stack, and fails naming the stage when a function is broken."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.ops import smoke

pytestmark = pytest.mark.integration

STAGES = ("upload", "process", "thumbnails", "overwrite", "delete", "dead letters", "cleanup")


@pytest.fixture(scope="module")
def stack_file(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smoke") / "stack.json"
    path.write_text(json.dumps(local_stack.info(), default=str))
    return path


def run(stack_file: Path, timeout: float) -> tuple[int, str]:
    out = io.StringIO()
    code = smoke.main(["--local", "--stack", str(stack_file), "--timeout", str(timeout)], out=out)
    print(out.getvalue())  # shown by pytest when the test fails
    return code, out.getvalue()


def table(text: str) -> dict[str, str]:
    """CHECK -> RESULT from the printed table."""
    rows = text.split("\nCHECK", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {cells[0]: cells[1] for cells in (re.split(r"\s{2,}", row) for row in rows)}


def test_smoke_passes_on_the_healthy_stack(stack_file: Path, harness: Any) -> None:
    code, text = run(stack_file, timeout=120)
    assert code == 0, text
    assert text.rstrip().endswith("smoke test PASSED"), text
    results = table(text)
    for check in (
        "photo.jpg processed",
        "alpha.png processed",
        "corrupt.jpg failed",
        "EXIF orientation applied",
        "photo.jpg thumbnails",
        "alpha.png thumbnails",
        "avatars/face.jpg thumbnails",
        "avatars/face.jpg output rule",
        "photo.jpg output rule",
        "alpha.png overwritten",
        "photo.jpg deleted",
        "no new dead letters",
        "cleanup",
    ):
        assert results.get(check) == "ok", (check, text)
    assert "reason corrupt" in text
    assert "rule avatars: 64x64:cover, 256x256:cover" in text  # cdktf.json's example rule
    timings = text.split("STAGE", 1)[1]
    for stage in STAGES:
        assert f"\n{stage}" in timings, text
    # It left nothing behind: no object, thumbnail, doc (not even a tombstone) or dead-letter
    # record of its own.
    prefix = text.split("prefix ", 1)[1].split()[0]
    assert not list(harness.clients.storage.list_blobs(harness.uploads.name, prefix=prefix))
    assert not list(
        harness.clients.storage.list_blobs(harness.thumbnails.name, prefix="thumbnails/" + prefix)
    )
    docs = [snap.to_dict() for snap in harness.images.stream()]
    assert not [doc for doc in docs if str(doc.get("name", "")).startswith(prefix)]
    for name in ("photo.jpg", "alpha.png", "avatars/face.jpg", "corrupt.jpg"):
        assert harness.doc(prefix + name) is None, name
    letters = [snap.to_dict() for snap in harness.dead_letters.stream()]
    assert not [r for r in letters if prefix in json.dumps(r, default=str)]


def test_smoke_fails_naming_the_stage_when_write_metadata_is_down(
    stack_file: Path, harness: Any
) -> None:
    with harness.faults(failing=["write_metadata"]):
        code, text = run(stack_file, timeout=15)
    assert code == 1, text
    assert (
        "smoke test FAILED in stage process: "
        "photo.jpg processed, alpha.png processed, avatars/face.jpg processed, corrupt.jpg failed"
    ) in text
    assert "metadata documents: gave up after 15 s (0/4 documents" in text
    assert "stopped: not every upload got its metadata document" in text
    # The later stages did not run; the cleanup did.
    timings = text.split("STAGE", 1)[1]
    assert "\nprocess" in timings and "\ncleanup" in timings and "\ndelete" not in timings
