"""Synth-time checks of the topology (no cdktf needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.model import checks
from infra.model.checks import TopologyError, check_topology
from infra.model.config import ConfigError, from_mapping
from infra.model.topology import Grant, TopicSpec, Topology, build_topology
from tests import topology_rules
from tests.topology_rules import triggered_by_bucket


@pytest.fixture
def topology() -> Topology:
    return build_topology(from_mapping({"project": "my-gcp-project"}))


def _with_sub(t: Topology, key: str, **changes) -> Topology:
    return replace(
        t, subscriptions={**t.subscriptions, key: replace(t.subscriptions[key], **changes)}
    )


def _with_fn(t: Topology, key: str, **changes) -> Topology:
    return replace(t, functions={**t.functions, key: replace(t.functions[key], **changes)})


def problems(t: Topology) -> list[str]:
    """What the synth refuses, and what the tests hold every built topology to."""
    return [*checks.problems(t), *topology_rules.problems(t)]


def _only_problem(t: Topology) -> str:
    found = problems(t)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("prefix", ["imgpipe", "a", "twelve-chars"])
def test_generated_topologies_pass(prefix):
    check_topology(build_topology(from_mapping({"project": "my-gcp-project", "prefix": prefix})))


def test_subscription_without_dead_letter_policy(topology):
    msg = _only_problem(_with_sub(topology, "failures", dead_letter_topic=""))
    assert "imgpipe-failures" in msg and "dead-letter policy" in msg


def test_dead_letter_topic_must_exist_and_be_marked(topology):
    assert "not in the topology" in _only_problem(
        _with_sub(topology, "cleanup", dead_letter_topic="nope")
    )
    assert "is_dead_letter" in _only_problem(
        _with_sub(topology, "cleanup", dead_letter_topic="image_events")
    )


def test_dead_letter_topic_without_a_consumer(topology):
    extra = TopicSpec("orphan", "imgpipe-orphan", is_dead_letter=True)  # nobody reads it
    t = replace(topology, topics={**topology.topics, "orphan": extra})
    msg = _only_problem(t)
    assert "imgpipe-orphan" in msg and "no subscription" in msg


def test_dead_lettering_into_its_own_topic(topology):
    t = _with_sub(topology, "dead_letter_recorder", dead_letter_topic="dead_letters")
    assert "own topic" in _only_problem(t)


@pytest.mark.parametrize(
    ("event_types", "problem"),
    [
        (("image.failed", 'a" OR attributes:x'), "letters, digits"),  # would need escapes
        (("image failed",), "letters, digits"),
        ((), None),  # every message: no filter
        (("x" * 231,), None),  # a filter of exactly 256 bytes
        (("image.failed", "image.failed"), "twice"),
        (("x" * 232,), "over Pub/Sub's 256"),  # 256 bytes of filter at most
        (tuple(f"image.type-{n}" for n in range(7)), "over Pub/Sub's 256"),
    ],
)
def test_event_types_render_a_filter_pubsub_takes(topology, event_types, problem):
    t = _with_sub(topology, "failures", event_types=event_types)
    if problem is None:
        assert problems(t) == []
        return
    msg = _only_problem(t)
    assert "imgpipe-failures" in msg and problem in msg


def test_the_filter_is_the_event_types_written_out(topology):
    subs = topology.subscriptions
    assert subs["failures"].filter == 'attributes.eventType = "image.failed"'
    assert subs["cleanup"].filter == 'attributes.eventType = "OBJECT_DELETE"'
    assert subs["metadata_writer"].filter == (
        'attributes.eventType = "image.processed" OR attributes.eventType = "image.failed" '
        'OR attributes.eventType = "image.deleted" OR attributes.eventType = "image.expired"'
    )
    assert subs["dead_letter_recorder"].filter == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_delivery_attempts", 4), ("ack_deadline_seconds", 601), ("retention_seconds", 60)],
)
def test_pubsub_limits(topology, field, value):
    assert field in _only_problem(_with_sub(topology, "failures", **{field: value}))


def test_ack_deadline_shorter_than_the_push_target_timeout(topology):
    t = _with_fn(topology, "cleanup", timeout_seconds=300)
    msg = _only_problem(t)
    assert "imgpipe-cleanup" in msg and "ack deadline" in msg


def test_push_to_unknown_function(topology):
    assert "unknown function" in _only_problem(_with_sub(topology, "cleanup", push_function="nope"))


def test_thumbnail_function_writing_its_trigger_bucket_is_a_loop(topology):
    fn = topology.functions["make_thumbnail"]
    grant = Grant("bucket", "uploads", "roles/storage.objectUser", "oops")
    msg = _only_problem(_with_fn(topology, "make_thumbnail", grants=(*fn.grants, grant)))
    assert "imgpipe-make-thumbnail" in msg and "uploads" in msg and "loop" in msg


def test_cleanup_is_reached_by_the_uploads_bucket_through_its_notification(topology):
    assert triggered_by_bucket(topology) == {
        "uploads": {"make_thumbnail", "cleanup"},
        "thumbnails": set(),
    }
    fn = topology.functions["cleanup"]
    grant = Grant("bucket", "uploads", "roles/storage.objectAdmin", "oops")
    assert "imgpipe-cleanup" in _only_problem(
        _with_fn(topology, "cleanup", grants=(*fn.grants, grant))
    )


def test_project_wide_storage_write_counts_as_writing_the_trigger_bucket(topology):
    fn = topology.functions["make_thumbnail"]
    grant = Grant("project", "", "roles/storage.objectCreator", "oops")
    msg = _only_problem(_with_fn(topology, "make_thumbnail", grants=(*fn.grants, grant)))
    assert "the project" in msg


def test_reading_the_trigger_bucket_is_fine(topology):
    fn = topology.functions["cleanup"]
    grant = Grant("bucket", "uploads", "roles/storage.objectViewer", "reads")
    assert problems(_with_fn(topology, "cleanup", grants=(*fn.grants, grant))) == []


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (Grant("bucket", "nope", "roles/storage.objectViewer", "x"), "no such bucket"),
        (Grant("topic", "nope", "roles/pubsub.publisher", "x"), "no such topic"),
        (Grant("folder", "", "roles/pubsub.publisher", "x"), "kind must be"),
        (Grant("project", "", "roles/editor", "x"), "basic roles"),
        (Grant("project", "", "datastore.user", "x"), "roles/"),
        (Grant("project", "", "roles/datastore.viewer", " "), "why"),
    ],
)
def test_grant_problems(topology, grant, expected):
    msg = _only_problem(_with_fn(topology, "write_metadata", grants=(grant,)))
    assert expected in msg and "imgpipe-write-metadata" in msg


@pytest.mark.parametrize(
    ("account_id", "reason"),
    [("short", "6-30"), ("x" * 31, "6-30"), ("9starts-digit", "6-30"), ("ends-with-", "6-30")],
)
def test_service_account_ids(topology, account_id, reason):
    msg = _only_problem(replace(topology, push_invoker_account_id=account_id))
    assert "push invoker" in msg and reason in msg


def test_duplicate_service_account_ids(topology):
    t = replace(topology, push_invoker_account_id=topology.trigger.service_account_id)
    assert "also the" in _only_problem(t)


@pytest.mark.parametrize("name", ["ab", "goog-topic", "1topic", "has space", "x" * 256])
def test_topic_names(topology, name):
    t = replace(
        topology,
        topics={
            **topology.topics,
            "image_events": replace(topology.topics["image_events"], name=name),
        },
    )
    assert any("topic name" in p for p in problems(t)), problems(t)


def test_function_names(topology):
    msg = _only_problem(_with_fn(topology, "cleanup", name="Cleanup_Fn"))
    assert "function name 'Cleanup_Fn'" in msg
    assert "63" in _only_problem(_with_fn(topology, "cleanup", name="f" * 64))


def test_error_lists_every_problem(topology):
    t = _with_sub(topology, "failures", dead_letter_topic="", event_types=("no spaces",))
    with pytest.raises(TopologyError) as info:
        check_topology(t)
    assert len(info.value.problems) == 2
    text = str(info.value)
    assert text.startswith("the pipeline topology is invalid:")
    assert "dead-letter policy" in text and "'no spaces'" in text


def test_originals_age_into_colder_classes_in_order_and_before_any_delete():
    def ageing(classes: str, delete_days: int = 0) -> list[str]:
        settings = {"project": "my-gcp-project", "uploads_storage_classes": classes}
        config = from_mapping({**settings, "uploads_lifecycle_days": delete_days})
        return problems(build_topology(config))

    assert ageing("NEARLINE:30,COLDLINE:90,ARCHIVE:365") == []
    assert ageing("NEARLINE:30", delete_days=60) == []
    for classes in ("ARCHIVE:30,COLDLINE:90", "NEARLINE:30,NEARLINE:60", "NEARLINE:90,COLDLINE:90"):
        assert [p for p in ageing(classes) if "colder ones at more days" in p], classes
    (late,) = ageing("NEARLINE:60", delete_days=60)
    assert "a class change at 60 days comes on or after the delete (60 days)" in late
    for value in ("COLD:30", "NEARLINE:0", "nearline:30", "NEARLINE"):
        with pytest.raises(ConfigError, match=r"uploads_storage_classes: .* is not CLASS:DAYS"):
            from_mapping({"project": "my-gcp-project", "uploads_storage_classes": value})


def test_an_environment_over_cloud_runs_32_kib_names_the_setting_that_fills_it():
    config = from_mapping(
        {"project": "my-gcp-project", "exclude_patterns": ["x" * 100] * 330}  # 33 KB
    )
    found = problems(build_topology(config))
    assert len(found) == 4, found  # every function carries the settings
    assert all("over Cloud Run's 32768" in p for p in found)
    assert "the largest settings: exclude_patterns (33" in found[0]
    small = from_mapping({"project": "my-gcp-project", "exclude_patterns": ["x" * 100] * 300})
    assert problems(build_topology(small)) == []
