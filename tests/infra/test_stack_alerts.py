"""Alert policies and log-based metrics in the synthesized stack.

The filters themselves are proven against the functions' real log lines in
tests/unit/test_monitoring.py; here the stack must carry exactly those filters.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.synth


def _policy(synth, key):
    spec = synth.alerting.alerts[key]
    return spec, synth.one("google_monitoring_alert_policy", display_name=spec.display_name)


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_one_policy_per_declared_alert(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    alerts = synth.alerting.alerts
    assert len(synth.all("google_monitoring_alert_policy")) == len(alerts) >= 4
    for key, spec in alerts.items():
        _, policy = _policy(synth, key)
        ((condition,),) = [policy["conditions"]]
        threshold = condition["condition_threshold"]
        assert threshold["filter"] == spec.filter()
        assert threshold["comparison"] == "COMPARISON_GT"
        assert threshold["threshold_value"] == spec.threshold
        (aggregation,) = threshold["aggregations"]
        assert aggregation["per_series_aligner"] == spec.aligner
        assert aggregation["alignment_period"] == f"{spec.window_seconds}s"
        assert aggregation["cross_series_reducer"] == spec.reducer
        assert aggregation.get("group_by_fields", []) == list(spec.group_by)
        assert policy["documentation"]["content"] == spec.documentation
        assert policy["user_labels"]["pipeline"] == synth.topology.prefix


def test_dead_letter_alert_watches_every_subscription_by_name(stack):
    _, policy = _policy(stack, "dead_lettered")
    condition = policy["conditions"][0]["condition_threshold"]["filter"]
    assert 'metric.type = "pubsub.googleapis.com/subscription/dead_letter_message_count"' in (
        condition
    )
    assert 'resource.type = "pubsub_subscription"' in condition
    for sub in stack.all("google_pubsub_subscription"):
        assert sub["name"] in condition


def test_unrecorded_backlog_alert_reads_the_operators_subscription(alt_stack):
    _, policy = _policy(alt_stack, "unrecorded_dead_letters")
    condition = policy["conditions"][0]["condition_threshold"]["filter"]
    unrecorded = alt_stack.topology.subscriptions["dead_letters_unrecorded"].name
    assert unrecorded.startswith("thumbs-")
    assert "subscription/num_undelivered_messages" in condition
    assert f'full_match("{unrecorded}")' in condition


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_log_metrics_carry_the_tested_filters_and_feed_their_policies(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    metrics = synth.alerting.log_metrics
    # The failure-count alert (and its metric) only where a threshold is set.
    expected = {"stack": 2, "alt_stack": 3}[synth_name]
    assert len(synth.all("google_logging_metric")) == len(metrics) == expected
    for key, spec in synth.alerting.alerts.items():
        if spec.log_metric is None:
            continue
        metric_spec = metrics[spec.log_metric]
        metric = synth.one("google_logging_metric", name=metric_spec.name)
        assert metric["filter"] == metric_spec.filter()
        assert metric["metric_descriptor"] == {
            "metric_kind": "DELTA",
            "value_type": "INT64",
            "unit": "1",
        }
        thumbnailer = synth.topology.functions["make_thumbnail"].name
        assert f'resource.labels.service_name = "{thumbnailer}"' in metric["filter"]
        _, policy = _policy(synth, key)
        condition = policy["conditions"][0]["condition_threshold"]["filter"]
        assert f'"logging.googleapis.com/user/{metric_spec.name}"' in condition
        # The policy is created once Monitoring knows its metric (a condition on a metric it
        # does not know yet is refused with 404 for up to 10 minutes): a wait after the metric.
        metric_address = synth.address("google_logging_metric", metric)
        policy_address = synth.address("google_monitoring_alert_policy", policy)
        assert synth.graph.settled(metric_address, policy_address)


def test_monitoring_api_is_enabled_before_the_policies(stack):
    services = {
        stack.address("google_project_service", s): s["service"]
        for s in stack.all("google_project_service")
    }
    [monitoring] = [a for a, name in services.items() if name == "monitoring.googleapis.com"]
    for policy in stack.all("google_monitoring_alert_policy"):
        address = stack.address("google_monitoring_alert_policy", policy)
        assert monitoring in stack.graph.upstream(address)


def test_a_new_log_metric_makes_its_policy_wait_again(alt_stack):
    # Turning failed_alert_threshold on adds a metric; its wait is new (so it sleeps), and
    # each wait is replaced when its metric's name changes.
    from infra.deploy.constructs.alerts import LOG_METRIC_SETTLE_SECONDS

    waits = [
        s
        for s in alt_stack.all("time_sleep")
        if s["create_duration"] == f"{LOG_METRIC_SETTLE_SECONDS}s"
    ]
    assert len(waits) == len(alt_stack.alerting.log_metrics) == 3
    for wait in waits:
        [metric] = wait["depends_on"]
        assert metric.startswith("google_logging_metric.")
        assert wait["triggers"] == {"metric": f"${{{metric}.name}}"}


def test_notification_channels_come_from_the_setting(stack, alt_stack):
    for policy in stack.all("google_monitoring_alert_policy"):
        assert "notification_channels" not in policy  # still created: incidents in the console
    expected = ["projects/other-project-42/notificationChannels/1234567890"]
    assert list(alt_stack.config.alert_notification_channels) == expected
    for policy in alt_stack.all("google_monitoring_alert_policy"):
        assert policy["notification_channels"] == expected


def test_failure_alert_exists_only_with_a_threshold(stack, alt_stack):
    assert stack.config.failed_alert_threshold == 0
    names = {p["display_name"] for p in stack.all("google_monitoring_alert_policy")}
    assert not any("many uploads failed" in n for n in names)
    assert not any("images-failed" in m["name"] for m in stack.all("google_logging_metric"))

    _, policy = _policy(alt_stack, "images_failed")
    threshold = policy["conditions"][0]["condition_threshold"]
    assert threshold["threshold_value"] == 25
    (aggregation,) = threshold["aggregations"]
    assert aggregation["alignment_period"] == "3600s"
    assert aggregation["per_series_aligner"] == "ALIGN_DELTA"
    assert '"logging.googleapis.com/user/thumbs-images-failed"' in threshold["filter"]
    metric = alt_stack.one("google_logging_metric", name="thumbs-images-failed")
    assert 'jsonPayload.message = "published image.failed"' in metric["filter"]
    assert 'resource.labels.service_name = "thumbs-make-thumbnail"' in metric["filter"]
    assert policy["notification_channels"] == list(alt_stack.config.alert_notification_channels)


def test_backlog_alert_watches_every_push_subscription_per_subscription(stack):
    _, policy = _policy(stack, "backlog")
    threshold = policy["conditions"][0]["condition_threshold"]
    assert "subscription/oldest_unacked_message_age" in threshold["filter"]
    pushed = {s["name"] for s in stack.all("google_pubsub_subscription") if "push_config" in s}
    assert len(pushed) == 3
    assert f'full_match("{"|".join(sorted(pushed))}")' in threshold["filter"]
    (aggregation,) = threshold["aggregations"]
    # The oldest message of each subscription on its own: a sum of ages would mean nothing.
    assert (aggregation["cross_series_reducer"], aggregation["group_by_fields"]) == (
        "REDUCE_MAX",
        ["resource.label.subscription_id"],
    )
    assert threshold["threshold_value"] == 1800


def test_throttling_alert_counts_429s_of_each_function(stack):
    _, policy = _policy(stack, "throttled")
    threshold = policy["conditions"][0]["condition_threshold"]
    assert 'metric.type = "run.googleapis.com/request_count"' in threshold["filter"]
    assert 'metric.labels.response_code = "429"' in threshold["filter"]
    names = sorted(fn["name"] for fn in stack.all("google_cloudfunctions2_function"))
    assert (
        f'resource.labels.service_name = monitoring.regex.full_match("{"|".join(names)}")'
        in (threshold["filter"])
    )
    (aggregation,) = threshold["aggregations"]
    assert aggregation["group_by_fields"] == ["resource.label.service_name"]
