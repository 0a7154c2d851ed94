"""Property-based tests (Hypothesis): the parsers at the pipeline's boundaries, over
thousands of generated inputs rather than the handful of cases we thought of. Each input
either parses or is refused with the module's own error, never anything else."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_pipeline import events, result_schema
from image_pipeline.errors import REASONS, MalformedEvent
from image_pipeline.settings import Settings, SettingsError
from infra.model.checks import problems
from infra.model.config import from_mapping
from infra.model.topology import build_topology, pubsub_filter, takes

# How many examples: the profile that tests/unit/conftest.py loads (few in the inner loop).
FAST = settings(
    deadline=None,
    database=None,  # nothing written into the tree; a failure prints the example to rerun
    suppress_health_check=[HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


# --- event parsing --------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_storage_event_body_parses_or_is_malformed(body):
    try:
        obj = events.storage_object(body)
    except MalformedEvent:
        return
    assert obj.name and obj.bucket and 1 <= obj.generation <= events.MAX_GENERATION


RESOURCE = st.fixed_dictionaries(
    {
        "bucket": st.text(min_size=1, max_size=20),
        "name": st.text(min_size=1, max_size=50),
        "generation": st.integers() | st.text(max_size=45),
        "size": st.integers() | st.text(max_size=25) | st.none(),
        "metageneration": st.integers() | st.none(),
        "timeCreated": st.text(max_size=30) | st.none(),
    }
)


@FAST
@given(RESOURCE)
def test_generated_resources_parse_exactly_when_every_field_is_in_range(resource):
    fields = {k: v for k, v in resource.items() if v is not None}
    try:
        obj = events.storage_object(json.dumps(fields))
    except MalformedEvent:
        return
    assert obj.generation == int(resource["generation"])
    assert 1 <= obj.generation <= events.MAX_GENERATION
    # An absent size is unknown (None), never a made-up 0 that would overwrite a known one.
    assert (obj.size is None) == ("size" not in fields)
    assert obj.size is None or 0 <= obj.size <= events.MAX_GENERATION


@FAST
@given(JSON)
def test_the_depth_limit_agrees_with_the_real_depth(value):
    raw = json.dumps(value).encode()
    if depth(value) <= events.MAX_JSON_DEPTH:
        events.check_json_limits(raw)
    else:
        with pytest.raises(MalformedEvent):
            events.check_json_limits(raw)


@FAST
@given(st.integers(min_value=events.MAX_JSON_DEPTH + 1, max_value=5000), st.sampled_from("[{"))
def test_deep_nesting_is_refused_before_parsing(levels, bracket):
    close = "]" if bracket == "[" else "}"
    inner = "1" if bracket == "[" else ""
    opener = bracket if bracket == "[" else '{"a":'
    raw = (opener * levels + inner + close * levels).encode()
    with pytest.raises(MalformedEvent, match="nested deeper"):
        events.check_json_limits(raw)


@FAST
@given(JSON, st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3))
def test_any_push_body_parses_or_is_malformed(data, attributes):
    body = {
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "messageId": "1",
            "attributes": attributes,
        }
    }
    for raw in (body, json.dumps(body).encode(), data):
        try:
            message = events.push_message(raw)
            events.object_deletion(message)
            events.result_from_message(message)
        except MalformedEvent:
            pass


# --- the result schema ----------------------------------------------------------------

NAMES = st.text(min_size=1, max_size=30)
OBJECTS = st.builds(
    events.StorageObject,
    bucket=NAMES,
    name=NAMES,
    generation=st.integers(1, result_schema.MAX_INT64),
    metageneration=st.integers(1, 100) | st.none(),
    content_type=st.text(max_size=20),
    size=st.integers(0, 2**40),
)
THUMBNAILS = st.lists(
    st.fixed_dictionaries(
        {
            "bucket": NAMES,
            "name": NAMES,
            "width": st.integers(1, 99999),
            "height": st.integers(1, 99999),
            "contentType": st.sampled_from(["image/webp", "image/jpeg"]),
            "size": st.integers(0, 10**7),
            "frames": st.integers(1, 100),
        }
    ),
    max_size=4,
)
IMAGES = st.fixed_dictionaries(
    {"width": st.integers(1, 10**5), "height": st.integers(1, 10**5), "format": st.text()}
)
TIMINGS = st.dictionaries(st.text(max_size=10), st.floats(0, 1e6), max_size=3)
FAILURE_REASONS = st.sampled_from(sorted(REASONS))


def built_events() -> st.SearchStrategy[events.ResultEvent]:
    return st.one_of(
        st.builds(
            lambda o, e, i, t, tm: events.result_event(
                "processed", o, e, image=i, thumbnails=t, timings=tm
            ),
            OBJECTS,
            st.text(),
            IMAGES,
            THUMBNAILS,
            TIMINGS,
        ),
        st.builds(
            lambda o, r, t: events.result_event(
                "failed", o, "e", error={"reason": r, "message": "m"}, timings=t
            ),
            OBJECTS,
            FAILURE_REASONS,
            TIMINGS,
        ),
        st.builds(
            lambda o, e, t: events.result_event("deleted", o, e, timings=t),
            OBJECTS,
            st.text(),
            TIMINGS,
        ),
    )


@FAST
@given(built_events())
def test_every_event_the_stages_build_is_on_the_schema_and_read_back(result):
    data = json.loads(result.encoded())
    assert result_schema.problem(data) is None
    message = events.PushMessage("m", base64.b64encode(result.encoded()).decode(), {}, None)
    assert events.result_from_message(message) == data


WRONG = st.one_of(st.text(max_size=5), st.integers(-5, 5), st.lists(st.integers(), max_size=2))


@FAST
@given(
    built_events(), st.sampled_from(["generation", "bucket", "name", "status", "thumbnails"]), WRONG
)
def test_a_field_replaced_by_a_wrong_value_is_refused(result, key, wrong):
    data = {**json.loads(result.encoded()), key: wrong}
    valid = {
        "generation": isinstance(wrong, int) and wrong >= 1,
        "bucket": isinstance(wrong, str) and wrong != "",
        "name": isinstance(wrong, str) and wrong != "",
        "status": False,  # no generated value (5 characters at most) is a status
        "thumbnails": wrong == [],
    }[key]
    assert (result_schema.problem(data) is None) == valid, data


@FAST
@given(JSON)
def test_arbitrary_json_is_never_taken_for_a_result(value):
    found = result_schema.problem(value)
    assert found is None or found.startswith("result")


# --- Pub/Sub filters ------------------------------------------------------------------

EVENT_TYPES = st.lists(st.text(alphabet="abAB09._-", min_size=1, max_size=50), max_size=6)
ATTRIBUTES = st.dictionaries(
    st.sampled_from(["eventType", "bucket", "eventtype"]), st.text(alphabet="abAB09._-"), max_size=3
)
# The shape `pubsub_filter` writes, read back as the Pub/Sub filter language reads it: a
# string literal is a quoted run of anything but quotes and backslashes (those need escapes).
_EQUALITY = r'attributes\.eventType = "([^"\\]*)"'
_RENDERED = re.compile(rf"(?:{_EQUALITY}(?: OR (?=attributes)|$))*")


def _read_back(text: str) -> list[str]:
    assert _RENDERED.fullmatch(text), text
    return re.findall(_EQUALITY, text)


@FAST
@given(EVENT_TYPES, ATTRIBUTES)
def test_the_rendered_filter_selects_what_the_set_takes(event_types, attributes):
    text = pubsub_filter(event_types)
    written = _read_back(text)
    assert written == event_types  # every type, in order, and nothing else
    # The filter: an OR of equalities on eventType (false when it is missing), or empty.
    selected = not written or any(attributes.get("eventType") == t for t in written)
    assert takes(event_types, attributes) == selected


@FAST
@given(EVENT_TYPES)
def test_a_filter_pubsub_would_refuse_stops_the_synth(event_types):
    topology = build_topology(from_mapping({"project": "my-gcp-project"}))
    failures = replace(topology.subscriptions["failures"], event_types=tuple(event_types))
    found = problems(
        replace(topology, subscriptions={**topology.subscriptions, "failures": failures})
    )
    too_long = len(pubsub_filter(event_types).encode()) > 256
    assert any("over Pub/Sub's 256" in p for p in found) == too_long
    assert any("twice" in p for p in found) == (len(set(event_types)) < len(event_types))


# --- settings -------------------------------------------------------------------------

BASE = Settings(
    project="p", uploads_bucket="u", thumbnails_bucket="t", image_events_topic="e"
).to_env()


@FAST
@given(st.sampled_from(sorted(BASE)), st.text(max_size=40))
def test_any_value_of_any_setting_parses_or_names_the_variable(variable, value):
    try:
        parsed = Settings.from_env({**BASE, variable: value})
    except SettingsError as exc:
        assert variable in str(exc)
        return
    assert Settings.from_env(parsed.to_env()) == parsed
