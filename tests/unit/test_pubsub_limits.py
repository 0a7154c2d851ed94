"""Pub/Sub's message limits: what would be refused, and the rule our attributes follow."""

from __future__ import annotations

import json

import pytest
from imagekit import resource

from image_pipeline import events
from image_pipeline.pubsub_limits import (
    MAX_VALUE_BYTES,
    TRUNCATED_ATTRIBUTES,
    fit_attributes,
    truncate_utf8,
    violations,
)


def test_a_message_within_the_limits_has_no_violations():
    attributes = {f"k{i}": "v" * MAX_VALUE_BYTES for i in range(100)}
    attributes["k0"] = "é" * (MAX_VALUE_BYTES // 2)  # 1024 bytes exactly
    assert violations(b"x" * 1000, attributes) == []
    assert violations(b"", {"k" * 256: ""}) == []


@pytest.mark.parametrize(
    ("data", "attributes", "problem"),
    [
        (b"", {"contentType": "a" * 1025}, "'contentType' is 1025 bytes, more than 1024"),
        (b"", {"contentType": "é" * 513}, "is 1026 bytes"),
        (b"", {"k" * 257: "v"}, "is 257 bytes, more than 256"),
        (b"", {f"k{i}": "v" for i in range(101)}, "101 attributes, more than 100"),
        (b"x" * 10_000_000, {"a": "b"}, "the message is 10000002 bytes"),
    ],
    ids=["value", "multibyte-value", "key", "count", "size"],
)
def test_what_pubsub_refuses(data, attributes, problem):
    (found,) = violations(data, attributes)
    assert problem in found


@pytest.mark.parametrize(
    ("text", "max_bytes", "expected"),
    [
        ("abc", 3, "abc"),
        ("abcd", 3, "abc"),
        ("aé", 2, "a"),  # é is 2 bytes: never half of it
        ("a漢字", 5, "a漢"),
        ("a😀", 4, "a"),
        ("", 0, ""),
    ],
)
def test_truncation_keeps_whole_utf8_characters(text, max_bytes, expected):
    cut = truncate_utf8(text, max_bytes)
    assert cut == expected
    assert len(cut.encode()) <= max_bytes


def test_long_values_are_cut_and_named_short_ones_kept():
    long = "image/jpeg; x=" + "漢" * 2000
    fitted = fit_attributes({"eventType": "image.processed", "contentType": long})
    assert fitted["eventType"] == "image.processed"
    assert long.startswith(fitted["contentType"])
    assert MAX_VALUE_BYTES - 3 < len(fitted["contentType"].encode()) <= MAX_VALUE_BYTES
    assert fitted[TRUNCATED_ATTRIBUTES] == "contentType"
    assert violations(b"", fitted) == []


def test_nothing_is_added_when_nothing_is_cut():
    attributes = {"objectId": "o" * MAX_VALUE_BYTES}
    assert fit_attributes(attributes) == attributes


def test_our_own_keys_over_the_limit_are_a_bug_not_a_silent_drop():
    long_key = fit_attributes({"k" * 257: "v"})
    assert list(long_key) == ["k" * 257]
    assert "is 257 bytes, more than 256" in violations(b"", long_key)[0]
    many = fit_attributes({f"k{i}": "v" for i in range(101)})
    assert len(many) == 101 and violations(b"", many) == ["101 attributes, more than 100"]


@pytest.mark.parametrize("status", ["processed", "failed", "deleted"])
def test_result_events_with_a_5_kb_content_type_fit_and_keep_it_whole_in_data(status):
    content_type = "image/png; comment=" + "x" * 5000
    name = "n" * 1024  # GCS's longest name: exactly at the value limit, kept whole
    obj = events.storage_object(resource("uploads", name, 3, 10, contentType=content_type))
    extra = {
        "processed": {"image": {}, "thumbnails": []},
        "failed": {"error": {"reason": "corrupt", "message": "bad"}},
        "deleted": {},
    }[status]
    result = events.result_event(status, obj, "evt", timings={}, **extra)
    assert violations(result.encoded(), result.attributes) == []
    assert result.attributes["contentType"] == content_type[:MAX_VALUE_BYTES]
    assert result.attributes["objectId"] == name
    assert result.attributes[TRUNCATED_ATTRIBUTES] == "contentType"
    assert json.loads(result.encoded())["contentType"] == content_type
