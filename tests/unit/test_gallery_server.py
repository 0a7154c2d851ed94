"""The gallery's join of uploads with dead letters (pure; the page itself is browser-tested)."""

import pytest
from test_ops_target import STACK

from infra.local.gallery import server
from infra.local.gallery.server import Gallery, _show_abandoned, _show_dead_lettered
from infra.ops import target as targets


def _upload(name: str, generation: int, status: str = "pending") -> dict:
    return {"name": name, "generation": generation, "status": status}


def _letter(name: str, generation: str, status: str = "recorded", **extra: str) -> dict:
    attrs = {"eventType": "image.processed", "bucket": "up", "objectId": name}
    attrs |= {"generation": generation, **extra}
    return {"id": "m1", "messageId": "7", "status": status, "attributes": attrs}


def test_a_pending_upload_whose_event_was_dead_lettered_says_so():
    uploads = [_upload("a.jpg", 7), _upload("b.jpg", 8)]
    _show_dead_lettered(uploads, [_letter("a.jpg", "7")], "up")
    assert uploads[0]["status"] == "dead-lettered"
    assert "scripts/dead-letters replay m1" in uploads[0]["message"]
    assert uploads[1]["status"] == "pending"


def test_only_waiting_letters_of_the_same_bucket_and_generation_count():
    uploads = [_upload("a.jpg", 7)]
    letters = [
        _letter("a.jpg", "6"),  # an older generation's event
        _letter("a.jpg", "7", status="replayed"),  # already re-driven
        _letter("a.jpg", "7", bucket="other"),  # another bucket's object
    ]
    _show_dead_lettered(uploads, letters, "up")
    assert uploads[0]["status"] == "pending"


def test_a_finished_upload_is_left_alone():
    uploads = [_upload("a.jpg", 7, status="processed")]
    _show_dead_lettered(uploads, [_letter("a.jpg", "7")], "up")
    assert uploads[0]["status"] == "processed"


def test_objects_make_thumbnail_skips_are_shown_as_skipped_not_pending():
    from types import SimpleNamespace

    from infra.local.gallery.server import Gallery

    gallery = Gallery(targets.from_stack(STACK))  # nothing connects
    folder = gallery._expected(SimpleNamespace(name="photos/2024/", generation=3))
    assert folder == {"status": "skipped", "reason": "folder", "message": "a folder placeholder"}
    assert gallery._expected(SimpleNamespace(name="photos/a.jpg", generation=3)) == {
        "status": "pending"
    }


def test_a_discarded_dead_letter_explains_its_upload():
    uploads = [_upload("a.jpg", 7)]
    letter = _letter("a.jpg", "7", status="discarded") | {"discardedBy": "ops@host"}
    _show_dead_lettered(uploads, [letter], "up")
    assert uploads[0]["status"] == "dead-lettered"
    assert "discarded by ops@host" in uploads[0]["message"]


def test_a_pending_upload_the_router_gave_up_on_shows_as_failed():
    uploads = [_upload("a.jpg", 7), _upload("a.jpg", 8), _upload("b.jpg", 9, "processed")]
    abandoned = [
        {"object": "a.jpg", "generation": "7", "reason": "retry_window_exceeded", "detail": "x"},
        {"object": "b.jpg", "generation": "9", "reason": "retry_window_exceeded", "detail": "y"},
    ]
    _show_abandoned(uploads, abandoned)
    assert (uploads[0]["status"], uploads[0]["reason"]) == ("failed", "retry_window_exceeded")
    assert uploads[0]["message"] == "x"
    assert uploads[1]["status"] == "pending"  # another generation
    assert uploads[2]["status"] == "processed"  # finished meanwhile: left alone


def test_the_placeholder_reaches_the_page():
    from infra.local.gallery.server import Gallery

    placeholder = {"blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "width": 128, "height": 96}
    placeholder["color"] = "#3c6e9a"
    item = Gallery._from_doc({"status": "processed", "placeholder": placeholder, "generation": 1})
    assert item["placeholder"] == placeholder
    assert Gallery._from_doc({"status": "failed", "generation": 1})["placeholder"] is None


@pytest.mark.parametrize(
    "broken",
    [
        {"thumbnails": "abc"},
        {"thumbnails": [1, 2]},
        {"thumbnails": [{"width": 1}]},
        {"generation": "7"},
        {"error": "boom"},
        {"status": None},
    ],
)
def test_a_doc_the_gallery_cannot_read_is_one_unreadable_card(broken):
    good = {"bucket": "b", "name": "n", "generation": 7, "status": "processed", "thumbnails": []}
    assert Gallery._from_doc(good)["status"] == "processed"
    with pytest.raises((TypeError, ValueError)):
        Gallery._from_doc({**good, **broken})
    card = server._unreadable({**good, **broken}, TypeError("x"))
    assert (card["status"], card["thumbnails"]) == ("unreadable", [])
