"""The alerting declaration: each log-based metric's filter, run over the lines the real
make_thumbnail prints, counts what it should and nothing else."""

from __future__ import annotations

import contextlib

import pytest
from google.api_core import exceptions as gexc
from imagekit import photo, resource, storage_event
from logging_query import log_entry, matches

from image_pipeline import pipeline as stages
from infra.model.config import ConfigError, from_mapping
from infra.model.monitoring import FAILED_ALERT_WINDOW_SECONDS, FUNCTION_RESOURCE, declare_alerts
from infra.model.topology import build_topology

TOPOLOGY = build_topology(from_mapping({"project": "my-gcp-project"}))
ALERTING = declare_alerts(TOPOLOGY, failed_threshold=0)  # the default
METRICS = ALERTING.log_metrics
THUMBNAILER = TOPOLOGY.functions["make_thumbnail"].name


def run_make_thumbnail(p: stages.Pipeline, capsys, *, time: str = "2026-01-01T00:00:00Z"):
    """Runs the real stage on one upload; returns Cloud Run's log entries of its lines."""
    obj = p.storage.put(p.settings.uploads_bucket, "a.jpg", photo(64, 64))
    res = resource(p.settings.uploads_bucket, "a.jpg", obj.generation, 100)
    capsys.readouterr()
    # A retried delivery raises; its log line is what is wanted here.
    with contextlib.suppress(Exception):
        stages.make_thumbnail(p, storage_event(res, time=time), {})
    labels = {"service_name": THUMBNAILER, "revision_name": f"{THUMBNAILER}-00001-abc"}
    resource_ = {"type": FUNCTION_RESOURCE, "labels": labels}
    return [log_entry(line, resource_) for line in capsys.readouterr().out.splitlines()]


def counted(metric: str, entries) -> list[str]:
    query = METRICS[metric].filter()
    return [e["jsonPayload"]["message"] for e in entries if matches(query, e)]


def test_gave_up_counts_the_retry_window_line_only(pipeline, capsys):
    old = "2025-12-31T00:30:00Z"  # past the retry window (23 h)
    processed_late = run_make_thumbnail(pipeline, capsys, time=old)
    assert counted("thumbnail_gave_up", processed_late) == []
    pipeline.storage.download = _unavailable
    late = run_make_thumbnail(pipeline, capsys, time=old)
    assert counted("thumbnail_gave_up", late) == ["image rejected"]
    assert counted("thumbnail_retried", late) == []
    normal = run_make_thumbnail(pipeline, capsys)
    assert counted("thumbnail_gave_up", normal) == []


def _unavailable(*args):
    raise gexc.ServiceUnavailable("storage down")


def test_gave_up_ignores_other_rejections(pipeline, capsys):
    res = resource(pipeline.settings.uploads_bucket, "bad.jpg", 1, 0)  # empty: rejected
    capsys.readouterr()
    stages.make_thumbnail(pipeline, storage_event(res), {})
    resource_ = {"type": FUNCTION_RESOURCE, "labels": {"service_name": THUMBNAILER}}
    entries = [log_entry(line, resource_) for line in capsys.readouterr().out.splitlines()]
    assert [(e["jsonPayload"]["message"], e["jsonPayload"]["reason"]) for e in entries] == [
        ("image rejected", "empty"),
        ("published image.failed", "empty"),
    ]
    assert counted("thumbnail_gave_up", entries) == []


@pytest.mark.parametrize(
    ("exc", "severity"),
    [(gexc.ServiceUnavailable("503"), "WARNING"), (gexc.Forbidden("iam"), "ERROR")],
)
def test_retried_counts_transient_and_unexpected_failures(pipeline, capsys, exc, severity):
    pipeline.publisher.fail_with = exc
    entries = run_make_thumbnail(pipeline, capsys)
    assert entries[-1]["severity"] == severity
    assert counted("thumbnail_retried", entries) == [entries[-1]["jsonPayload"]["message"]]
    assert counted("thumbnail_gave_up", entries) == []


def test_filters_are_bound_to_the_thumbnail_service(pipeline, capsys):
    pipeline.storage.download = _unavailable
    late = run_make_thumbnail(pipeline, capsys, time="2025-12-31T00:30:00Z")
    for entry in late:
        entry["resource"]["labels"]["service_name"] = "imgpipe-cleanup"
    assert counted("thumbnail_gave_up", late) == []


def test_every_subscription_is_watched_for_dead_letters():
    alert = ALERTING.alerts["dead_lettered"]
    watched = set(alert.resource_labels["subscription_id"])
    assert watched == {s.name for s in TOPOLOGY.subscriptions.values()}
    assert "dead_letter_message_count" in alert.filter()


def test_every_log_metric_has_an_alert():
    used = {a.log_metric for a in ALERTING.alerts.values() if a.log_metric}
    assert used == set(METRICS)
    for alert in ALERTING.alerts.values():
        if alert.log_metric:
            assert METRICS[alert.log_metric].metric_type in alert.filter()


def test_query_evaluator_refuses_what_it_does_not_understand():
    with pytest.raises(ValueError):
        matches('jsonPayload.message =~ "x"', {"jsonPayload": {"message": "x"}})
    assert not matches('a = "1" AND (b = "2" OR b = "3")', {"a": "1", "b": "4"})
    assert matches('a = "1" AND (b = "2" OR b = "3")', {"a": "1", "b": "3"})


def test_failure_alert_is_off_by_default():
    assert "images_failed" not in ALERTING.alerts
    assert "images_failed" not in METRICS


def test_failure_alert_counts_each_published_failure_once(pipeline, capsys):
    config = from_mapping({"project": "my-gcp-project", "failed_alert_threshold": "25"})
    alerting = declare_alerts(build_topology(config), config.failed_alert_threshold)
    alert = alerting.alerts["images_failed"]
    metric = alerting.log_metrics[alert.log_metric]
    assert alert.threshold == 25
    assert alert.window_seconds == FAILED_ALERT_WINDOW_SECONDS
    assert metric.metric_type in alert.filter()

    def failures(entries) -> list[str]:
        return [e["jsonPayload"]["reason"] for e in entries if matches(metric.filter(), e)]

    # A rejected upload: "image rejected", then "published image.failed"; only the latter.
    res = resource(pipeline.settings.uploads_bucket, "bad.jpg", 1, 0)
    capsys.readouterr()
    stages.make_thumbnail(pipeline, storage_event(res), {})
    resource_ = {"type": FUNCTION_RESOURCE, "labels": {"service_name": THUMBNAILER}}
    rejected = [log_entry(line, resource_) for line in capsys.readouterr().out.splitlines()]
    assert failures(rejected) == ["empty"]
    # A given-up upload is a failure too; a processed one and a retried one are not.
    download = pipeline.storage.download
    pipeline.storage.download = _unavailable
    assert failures(run_make_thumbnail(pipeline, capsys, time="2025-12-31T00:30:00Z")) == [
        "retry_window_exceeded"
    ]
    pipeline.storage.download = download
    processed = run_make_thumbnail(pipeline, capsys)
    assert "published image.processed" in [e["jsonPayload"]["message"] for e in processed]
    assert failures(processed) == []
    pipeline.publisher.fail_with = gexc.ServiceUnavailable("503")
    assert failures(run_make_thumbnail(pipeline, capsys)) == []


def test_failure_threshold_is_a_bounded_setting():
    with pytest.raises(ConfigError, match="failed_alert_threshold"):
        from_mapping({"project": "my-gcp-project", "failed_alert_threshold": "-1"})


def test_backlog_alert_watches_the_push_subscriptions_each_on_its_own():
    alert = ALERTING.alerts["backlog"]
    pushed = {s.name for s in TOPOLOGY.subscriptions.values() if s.push_function}
    assert set(alert.resource_labels["subscription_id"]) == pushed
    assert "oldest_unacked_message_age" in alert.filter()
    assert (alert.reducer, alert.group_by) == ("REDUCE_MAX", ("resource.label.subscription_id",))


def test_throttling_alert_counts_429s_per_function():
    alert = ALERTING.alerts["throttled"]
    assert set(alert.resource_labels["service_name"]) == {
        f.name for f in TOPOLOGY.functions.values()
    }
    assert alert.filter() == (
        'metric.type = "run.googleapis.com/request_count" AND '
        'resource.type = "cloud_run_revision" AND metric.labels.response_code = "429" AND '
        "resource.labels.service_name = monitoring.regex.full_match("
        '"imgpipe-cleanup|imgpipe-handle-dead-letter|imgpipe-make-thumbnail|'
        'imgpipe-write-metadata")'
    )
    assert alert.group_by == ("resource.label.service_name",)
