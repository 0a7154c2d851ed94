"""Structured log lines and trace ids."""

from __future__ import annotations

import json

import pytest

from image_pipeline.logs import TRACE_FIELD, Logger, trace_fields

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("traceparent", "cloud", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", None, TRACE),
        (None, f"{TRACE}/123;o=1", TRACE),
        (None, TRACE.upper(), TRACE),
        ("garbage", None, None),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None, None),  # all-zero id is invalid
        (None, None, None),
    ],
)
def test_trace_id(traceparent, cloud, expected):
    found = trace_fields("p", {"X-Cloud-Trace-Context": cloud} if cloud else {}, traceparent)
    assert found == ({TRACE_FIELD: f"projects/p/traces/{expected}"} if expected else {})


def test_trace_fields_prefer_the_cloudevent_extension():
    extension = f"00-{TRACE}-00f067aa0ba902b7-01"
    other = "0123456789abcdef0123456789abcdef"
    assert trace_fields("p", {"X-Cloud-Trace-Context": other}, extension) == {
        TRACE_FIELD: f"projects/p/traces/{TRACE}"
    }
    assert trace_fields("p", {"traceparent": extension, "X-Cloud-Trace-Context": other}, None) == {
        TRACE_FIELD: f"projects/p/traces/{TRACE}"
    }
    assert trace_fields("p", {"X-Cloud-Trace-Context": other}, None) == {
        TRACE_FIELD: f"projects/p/traces/{other}"
    }
    assert trace_fields("p", {}, None) == {}


def test_one_json_object_per_line(capsys):
    log = Logger(eventId="e1").bind(object="ü/a b.jpg", generation=3)
    log.info("done", timings={"core_ms": 1.5})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = capsys.readouterr().out.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "severity": "INFO",
        "message": "done",
        "eventId": "e1",
        "object": "ü/a b.jpg",
        "generation": 3,
        "timings": {"core_ms": 1.5},
    }
    assert second["severity"] == "ERROR" and second["error"] == "ValueError: boom"
    assert "Traceback" in second["stack_trace"]
