"""Erase's decisions without a stack: what is selected, what a doc becomes, what is left
to remove (the run against the local stack: tests/integration/test_erase.py)."""

from __future__ import annotations

from types import SimpleNamespace

from image_pipeline.records import SERVER_TIME
from infra.ops.erase import TOMBSTONE, Plan, Selection, tombstone, unlisted

PROCESSED = {
    "bucket": "up",
    "name": "alice/a.jpg",
    "generation": 7,
    "status": "processed",
    "thumbnails": [{"bucket": "thumbs", "name": "thumbnails/alice/a.jpg/128x128.webp"}],
    "metadata": {"owner": "alice"},
    "exif": {"Make": "Cam"},
    "placeholder": {"blurhash": "LEHV6n"},
}


def test_a_selection_needs_every_condition_and_says_its_flags() -> None:
    alice = Selection(prefix="alice/", metadata=(("owner", "alice"),))
    assert alice.matches("alice/a.jpg", {"owner": "alice", "other": "x"})
    assert not alice.matches("alice/a.jpg", {"owner": "bob"})
    assert not alice.matches("bob/a.jpg", {"owner": "alice"})
    assert not alice.matches("alice/a.jpg", {})
    one = Selection(names=("a.jpg",))
    assert one.matches("a.jpg", {}) and not one.matches("a.jpg.bak", {})
    assert str(alice) == "--prefix alice/ --metadata owner=alice"
    assert str(Selection()) == "", "no selection at all: the CLI refuses it"


def test_a_tombstone_keeps_only_what_ordering_needs_and_is_written_once() -> None:
    erased = tombstone(PROCESSED, 7)
    assert erased is not None and set(erased) == set(TOMBSTONE)
    assert (erased["generation"], erased["status"], erased["thumbnails"]) == (7, "deleted", [])
    stored = {**erased, "erasedAt": "2030-01-01T00:00:00Z", "updatedAt": "2030-01-01T00:00:00Z"}
    assert tombstone(stored, 7) is None, "already a tombstone: nothing to write"
    assert tombstone(stored, 9) is not None, "a newer generation needs its own"


def test_first_the_doc_stops_listing_thumbnails_and_keeps_the_rest() -> None:
    first = unlisted(dict(PROCESSED))
    assert first is not None
    assert (first["status"], first["thumbnails"], first["updatedAt"]) == (
        "deleted",
        [],
        SERVER_TIME,
    )
    assert first["metadata"] == {"owner": "alice"}, "what finds the image stays until the end"
    assert unlisted(first) is None and unlisted(None) is None


def test_a_plan_lists_what_is_left_and_nothing_once_all_is_gone() -> None:
    target = SimpleNamespace(
        uploads_bucket="up", images_collection="images", dead_letters_collection="letters"
    )
    original = SimpleNamespace(generation=8)
    thumbs = [("thumbs", "thumbnails/alice/a.jpg/128x128.webp")]
    plan = Plan("alice/a.jpg", original, dict(PROCESSED), thumbs, ["r1"])
    lines = plan.details(target)  # type: ignore[arg-type]
    assert lines[0] == "original gs://up/alice/a.jpg#8" and plan.generation == 8
    assert "thumbnail gs://thumbs/thumbnails/alice/a.jpg/128x128.webp" in lines
    assert any(line.startswith("doc images/") for line in lines)
    assert lines[-1] == "dead letter letters/r1"
    erased = {"generation": 8, "status": "deleted", "thumbnails": [], "erasedAt": "t"}
    assert Plan("alice/a.jpg", None, erased).details(target) == []  # type: ignore[arg-type]
    assert Plan("alice/a.jpg", None, None).details(target) == []  # type: ignore[arg-type]
