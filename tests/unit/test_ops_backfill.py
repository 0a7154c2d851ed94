"""Backfill decisions, the event it sends, the checkpoint and the rate limit (no emulators)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cloudevents.http import from_http

from infra.model.topology import FINALIZED, OUTPUT_MARKER
from infra.ops.backfill import (
    Checkpoint,
    Pacer,
    finalized_event,
    is_output,
    reason_to_process,
)


def test_outputs_are_recognised_by_the_loop_marker() -> None:
    assert is_output({OUTPUT_MARKER: "thumbnail", "source-name": "a.jpg"})
    assert not is_output({"owner": "me"})
    assert not is_output(None)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (None, "no metadata doc"),
        ({"generation": 7, "status": "processed"}, None),
        ({"generation": 9, "status": "processed"}, None),  # a newer upload won the race
        ({"generation": 9, "status": "failed"}, None),
        ({"generation": 5, "status": "processed"}, "doc is for older generation 5"),
        ({"generation": 7, "status": "failed"}, "status 'failed'"),
        ({"generation": 7, "status": "deleted"}, "status 'deleted'"),
    ],
)
def test_only_objects_without_a_processed_doc_for_their_generation_are_selected(
    doc: dict | None, expected: str | None
) -> None:
    assert reason_to_process(7, doc) == expected


def test_the_event_is_the_binary_mode_cloudevent_eventarc_sends() -> None:
    resource = {"bucket": "up", "name": "a/b c.jpg", "generation": "42", "size": "3"}
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers, body = finalized_event(resource, now)

    assert headers["ce-type"] == FINALIZED
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/up"
    assert headers["ce-subject"] == "objects/a/b%20c.jpg"  # percent-encoded (binding 3.1.3.2)
    assert headers["ce-time"].startswith("2030-01-02T03:04:05")  # now: the age guard passes
    assert headers["ce-bucket"] == "up"
    assert headers["Content-Type"].startswith("application/json")
    event = from_http(headers, body)  # what functions-framework does with it
    assert event.data == resource
    # Deterministic id: a re-sent object is a duplicate the function already tolerates.
    assert finalized_event(resource, now)[0]["ce-id"] == headers["ce-id"]


def test_checkpoint_round_trips_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "cp" / "state.json"
    saved = Checkpoint("up", "2019/", last_name="2019/x.jpg", listed=3, sent=2)
    saved.save(path)
    assert Checkpoint.load(path, "up", "2019/") == saved
    assert not path.with_suffix(".tmp").exists()


def test_a_complete_checkpoint_starts_a_new_pass(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    Checkpoint("up", "", last_name="z", sent=5, complete=True).save(path)
    assert Checkpoint.load(path, "up", "") == Checkpoint("up", "")


def test_a_checkpoint_of_another_listing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"bucket": "up", "prefix": "a/"}))
    with pytest.raises(SystemExit, match="another --checkpoint"):
        Checkpoint.load(path, "up", "b/")


def test_pacer_spaces_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []
    monkeypatch.setattr("infra.ops.backfill.time.monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("infra.ops.backfill.time.sleep", sleep)
    pacer = Pacer(rate=4)
    for _ in range(3):
        pacer.wait()
    assert slept == [0.25, 0.25]
