"""The gallery's join of uploads with dead letters (pure; the page itself is browser-tested)."""

from infra.gallery.server import _show_dead_lettered


def _upload(name: str, generation: int, status: str = "pending") -> dict:
    return {"name": name, "generation": generation, "status": status}


def _letter(name: str, generation: str, status: str = "recorded", **extra: str) -> dict:
    attrs = {"eventType": "image.processed", "bucket": "up", "objectId": name}
    attrs |= {"generation": generation, **extra}
    return {"messageId": "m1", "status": status, "attributes": attrs}


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
