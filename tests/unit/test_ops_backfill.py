"""Backfill decisions and the event it sends; the bounded pass it shares with erase: the
checkpoint and the rate limit (no emulators)."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from cloudevents.http import from_http

from image_pipeline.events import OUTPUT_MARKER
from infra.model.topology import FINALIZED
from infra.ops import backfill, bulk
from infra.ops import target as targets
from infra.ops.backfill import _send, finalized_event, is_output, reason_to_process
from infra.ops.bulk import Checkpoint, CheckpointError
from tests.hostile_names import HOSTILE_NAMES


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
    key = backfill.selection("up", "2019/")
    saved = Checkpoint(key, last_name="2019/x.jpg", counts={"listed": 3, "sent": 2})
    saved.save(path)
    assert Checkpoint.load(path, key) == saved
    assert not path.with_suffix(".tmp").exists()


def test_a_complete_checkpoint_starts_a_new_pass(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    Checkpoint("gs://up/", last_name="z", counts={"sent": 5}, complete=True).save(path)
    assert Checkpoint.load(path, "gs://up/") == Checkpoint("gs://up/")


def test_a_checkpoint_of_another_listing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"selection": backfill.selection("up", "a/")}))
    with pytest.raises(CheckpointError, match="another --checkpoint"):
        Checkpoint.load(path, backfill.selection("up", "b/"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "is not a checkpoint"),
        ("[1, 2]", "is not a checkpoint"),
        ('{"selection": "gs://up/", "surprise": 1}', "is not a checkpoint"),
        ('{"selection": "gs://up/", "last_name": 7}', "mistyped"),
        ('{"selection": "gs://up/", "counts": {"sent": "2"}}', "not a whole number"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused_and_kept(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(CheckpointError, match=problem):
        Checkpoint.load(path, "gs://up/")
    assert path.read_text() == text


def test_a_run_spaces_its_actions_at_the_rate(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clock = [100.0]
    slept: list[float] = []
    monkeypatch.setattr("infra.ops.bulk.time.monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("infra.ops.bulk.time.sleep", sleep)
    path = tmp_path / "checkpoint.json"
    run = bulk.start(
        backfill.TOOL, "gs://up/", checkpoint_path=path, rate=4, execute=True, out=io.StringIO()
    )
    for _ in range(3):
        run.act("x", (), lambda: None)
    assert slept == [0.25, 0.25]


def _blob(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, bucket=SimpleNamespace(name="up"), generation=3, metageneration=1,
        content_type="image/jpeg", size=10, storage_class="STANDARD", md5_hash=None,
        crc32c=None, etag=None, time_created=None, updated=None, metadata=None,
    )  # fmt: skip


class _Target:
    def __init__(self, answer: Exception | int) -> None:
        self.answer, self.sent = answer, []

    def invoke(self, headers: dict, body: bytes):
        self.sent.append(headers)
        if isinstance(self.answer, Exception):
            raise self.answer
        return SimpleNamespace(ok=self.answer < 300, status_code=self.answer, text="")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_any_name_gcs_accepts_is_sent_with_encoded_headers(name) -> None:
    target = _Target(204)
    assert _send(target, _blob(name)) is None
    (headers,) = target.sent
    assert all(0x21 <= ord(c) <= 0x7E for c in headers["ce-subject"])


def test_an_object_whose_event_cannot_be_sent_fails_alone_and_the_run_goes_on():
    error = _send(_Target(UnicodeEncodeError("latin-1", "x", 0, 1, "boom")), _blob("a.jpg"))
    assert error and error.startswith("UnicodeEncodeError")
    assert _send(_Target(204), _blob("lone \ud800 surrogate")).startswith("UnicodeEncodeError")
    assert _send(_Target(400), _blob("a.jpg")) == "HTTP 400: "
    with pytest.raises(targets.TargetError):  # no access at all still stops the run
        _send(_Target(targets.TargetError("403")), _blob("a.jpg"))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"generation": 7, "status": "processed", "outputFingerprint": "new"}, None),
        (
            {"generation": 7, "status": "processed", "outputFingerprint": "old"},
            "made under output rules old",
        ),
        ({"generation": 7, "status": "processed"}, "made under output rules without a fingerprint"),
        ({"generation": 9, "status": "processed", "outputFingerprint": "old"}, None),
        ({"generation": 7, "status": "failed", "outputFingerprint": "new"}, "status 'failed'"),
    ],
)
def test_stale_mode_also_selects_docs_made_under_other_output_rules(
    doc: dict, expected: str | None
) -> None:
    assert reason_to_process(7, doc, "new") == expected
    if doc.get("status") == "processed" and doc["generation"] == 7:
        assert reason_to_process(7, doc) is None  # the default mode leaves them alone


def test_a_stale_run_keeps_its_own_checkpoint(tmp_path: Path) -> None:
    stale, fresh = backfill.selection("up", "a/", "f1"), backfill.selection("up", "a/")
    args = argparse.Namespace(limit=1, rate=1.0, execute=False, checkpoint=None)
    paths = [bulk.options(args, backfill.TOOL, "p", "up", key) for key in (stale, fresh)]
    assert paths[0]["checkpoint_path"] != paths[1]["checkpoint_path"]
    path = tmp_path / "state.json"
    Checkpoint(stale, last_name="a/x.jpg").save(path)
    assert Checkpoint.load(path, stale).last_name == "a/x.jpg"
    with pytest.raises(CheckpointError, match="--stale to f1"):
        Checkpoint.load(path, backfill.selection("up", "a/", "f2"))


def test_help_names_the_stale_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        backfill.main(["--help"])
    assert "--stale" in capsys.readouterr().out
