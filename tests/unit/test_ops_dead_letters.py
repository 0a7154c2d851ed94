"""How dead letters are described, printed, replayed and discarded (no emulators)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from test_ops_target import STACK

from image_pipeline import deadlines
from infra.ops import dead_letters
from infra.ops import target as targets
from infra.ops.dead_letters import decoded_data, print_table, reason_of, summary


def record(attributes: dict, data: bytes = b"{}", **extra: object) -> dict:
    return {
        "messageId": "17",
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "sourceSubscription": "imgpipe-metadata-writer",
        "deliveryAttempt": 5,
        "status": "recorded",
        **extra,
    }


def test_reason_comes_from_the_failure_attribute_first() -> None:
    assert reason_of(record({"eventType": "image.failed", "reason": "corrupt"})) == "corrupt"


def test_reason_comes_from_the_data_when_attributes_lack_it() -> None:
    data = json.dumps({"status": "failed", "error": {"reason": "truncated"}}).encode()
    assert reason_of(record({"eventType": "image.failed"}, data)) == "truncated"


def test_a_healthy_message_died_because_its_consumer_kept_failing() -> None:
    assert reason_of(record({"eventType": "image.processed"})) == "consumer failed 5 deliveries"


def test_data_is_decoded_as_json_text_or_left_as_stored() -> None:
    assert decoded_data(record({}, b'{"a": 1}')) == {"a": 1}
    assert decoded_data(record({}, b"plain")) == "plain"
    binary = record({}, b"\xff\xfe")
    assert decoded_data(binary) == binary["data"]


def test_summary_names_subscription_attempts_event_and_reason() -> None:
    row = summary(
        record(
            {"eventType": "OBJECT_DELETE", "bucketId": "up", "objectId": "a.jpg"},
            replayCount=2,
        )
    )
    assert row["subscription"] == "imgpipe-metadata-writer"
    assert row["attempts"] == 5
    assert row["replays"] == 2
    assert row["event"] == "OBJECT_DELETE gs://up/a.jpg"


def test_table_has_a_header_and_aligned_rows() -> None:
    out = io.StringIO()
    print_table([summary(record({"eventType": "image.failed", "reason": "corrupt"}))], out)
    header, row = out.getvalue().splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "SUBSCRIPTION", "ATTEMPTS"]
    assert row.index("imgpipe-metadata-writer") == header.index("SUBSCRIPTION")


def test_a_record_without_a_known_source_subscription_is_not_replayable() -> None:
    target = targets.from_stack(STACK)
    for bad in ({"sourceSubscription": "someone-elses-subscription"}, {}):
        with pytest.raises(dead_letters.NotReplayable, match="subscription"):
            dead_letters._topic_of(target, bad)


def test_replay_reports_each_unreplayable_record_and_goes_on(monkeypatch) -> None:
    def replay_one(target: object, message_id: str, force: bool) -> str | dead_letters.Skipped:
        if message_id == "poison":
            raise dead_letters.NotReplayable("source subscription x is not in the topology")
        if message_id == "flaky":
            raise TimeoutError("publish timed out")
        return dead_letters.Skipped("already discarded") if message_id == "old" else "99"

    monkeypatch.setattr(dead_letters, "replay_one", replay_one)
    out, err = io.StringIO(), io.StringIO()
    ids = ["poison", "good", "flaky", "old"]
    assert dead_letters.replay(None, ids, False, out, err) == 2  # type: ignore[arg-type]
    assert "good: replayed as message 99" in out.getvalue()
    assert "old: already discarded, skipped" in out.getvalue()
    assert "poison: cannot replay" in err.getvalue()
    assert "scripts/dead-letters discard poison" in err.getvalue()
    assert "flaky: not replayed: TimeoutError" in err.getvalue()
    assert "2 of 4 not replayed: poison, flaky" in err.getvalue()


def test_the_discarding_operator_is_named() -> None:
    assert "@" in dead_letters.operator()


class Publisher:
    """Target.publish as the tool calls it; ``fail_with`` makes the publish fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail_with: Exception | None = None

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((topic, data, dict(attributes)))
        return str(len(self.sent))


@pytest.fixture
def stored(store: Any) -> tuple[targets.Target, Any, Publisher]:
    """A target whose Firestore is the unit tests' store, holding one recorded dead letter."""
    target = targets.from_stack(STACK)
    publisher = Publisher()
    target.documents = store  # type: ignore[assignment]
    target.publish = publisher.publish  # type: ignore[method-assign]
    letter = record({"eventType": "image.failed", "reason": "corrupt"}, b"payload")
    store.create(target.dead_letters_collection, "17", letter)
    return target, store.collections[target.dead_letters_collection], publisher


def test_a_replay_claims_the_record_then_publishes_it_to_its_topic(stored) -> None:
    target, records, publisher = stored
    assert dead_letters.replay_one(target, "17") == "1"
    assert publisher.sent == [
        (
            "projects/demo-imgpipe/topics/imgpipe-image-events",
            b"payload",
            {"eventType": "image.failed", "reason": "corrupt"},
        )
    ]
    assert records["17"]["status"] == "replayed"
    assert records["17"]["replayCount"] == 1
    assert records["17"]["replayedAt"] is not None
    assert dead_letters.replay_one(target, "17") == dead_letters.Skipped("already replayed")
    assert dead_letters.replay_one(target, "17", force=True) == "2"
    assert records["17"]["replayCount"] == 2


def test_a_failed_publish_gives_the_claim_back(stored) -> None:
    target, records, publisher = stored
    before = dict(records["17"])
    publisher.fail_with = deadlines.Unavailable("Pub/Sub", "here", 10, TimeoutError("late"))
    with pytest.raises(deadlines.Unavailable, match=r"^Pub/Sub at here did not answer within"):
        dead_letters.replay_one(target, "17")
    assert records["17"] == {**before, "replayCount": 0}
    with pytest.raises(dead_letters.NotReplayable, match="no such dead letter"):
        dead_letters.replay_one(target, "18")


def test_a_discard_marks_the_record_once_and_keeps_it(stored) -> None:
    target, records, _ = stored
    assert dead_letters.discard_one(target, "17", "ops@host", "poison") is True
    assert records["17"]["status"] == "discarded"
    assert (records["17"]["discardedBy"], records["17"]["discardNote"]) == ("ops@host", "poison")
    assert records["17"]["data"] == base64.b64encode(b"payload").decode()
    assert dead_letters.discard_one(target, "17", "ops@host", None) is False
    with pytest.raises(KeyError):
        dead_letters.discard_one(target, "18", "ops@host", None)


def test_attributes_named_like_publish_options_are_replayed_as_attributes(stored) -> None:
    target, _, publisher = stored
    letter = record({"eventType": "x", "timeout": "5", "retry": "no", "ordering_key": "k"})
    target.documents.create(target.dead_letters_collection, "19", letter)
    assert dead_letters.replay_one(target, "19") == "1"
    assert publisher.sent[0][2] == {
        "eventType": "x",
        "timeout": "5",
        "retry": "no",
        "ordering_key": "k",
    }


def test_a_dry_run_says_what_replay_would_do_and_changes_nothing(stored) -> None:
    target, records, publisher = stored
    before = dict(records["17"])
    out = io.StringIO()
    assert dead_letters.dry_run(target, ["17", "18"], False, out) == 0
    assert out.getvalue().splitlines() == [
        "17: would be replayed (dry run)",
        "18: no such dead letter (dry run)",
    ]
    assert records["17"] == before and publisher.sent == []
    dead_letters.replay_one(target, "17")
    out = io.StringIO()
    dead_letters.dry_run(target, ["17"], False, out)
    assert (
        out.getvalue() == "17: already replayed, would be skipped (--force replays it) (dry run)\n"
    )
