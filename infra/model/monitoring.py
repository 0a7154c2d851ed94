"""What pages an operator: the pipeline's alert policies and log-based metrics, as data.

`declare_alerts(topology, ...)` names what the stack creates (deploy-time only: the local
stack has no alerts), rendered here into the two filter languages they need: a Cloud Logging
query for a log-based metric (it must match the JSON lines `image_pipeline.logs` writes, a
unit test feeds it real ones) and a Cloud Monitoring filter for each alert condition.
Plain data and strings only: no cdktf, no cloud clients.

- Logging query language: https://cloud.google.com/logging/docs/view/logging-query-language
- Monitoring filters (`monitoring.regex.full_match`): https://cloud.google.com/monitoring/api/v3/filters
- Pub/Sub metrics (`subscription/dead_letter_message_count`, `num_undelivered_messages`):
  https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-pubsub
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from infra.model.topology import Topology

# A 2nd gen function is a Cloud Run service: its stdout lines are log entries of this
# monitored resource, labelled with the service (= function) name.
FUNCTION_RESOURCE = "cloud_run_revision"
SUBSCRIPTION_RESOURCE = "pubsub_subscription"
USER_METRIC_PREFIX = "logging.googleapis.com/user/"


@dataclass(frozen=True)
class LogMetricSpec:
    """A log-based counter of one function's structured log lines.

    A line counts when its severity is one of `severities`, its `message` one of
    `messages`, and every field in `fields` has that value (all in `jsonPayload`, where
    Cloud Run puts the JSON a function prints; `severity` becomes the entry's own).
    """

    key: str
    name: str
    description: str
    service_name: str  # the function's deployed name
    severities: tuple[str, ...]
    messages: tuple[str, ...]
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def metric_type(self) -> str:
        return f"{USER_METRIC_PREFIX}{self.name}"

    def filter(self) -> str:
        """The Cloud Logging query the metric counts."""
        terms = [
            _eq("resource.type", FUNCTION_RESOURCE),
            _eq("resource.labels.service_name", self.service_name),
            _any_of("severity", self.severities),
            _any_of("jsonPayload.message", self.messages),
            *(_eq(f"jsonPayload.{k}", v) for k, v in sorted(self.fields.items())),
        ]
        return " AND ".join(terms)


@dataclass(frozen=True)
class AlertSpec:
    """One alert policy with one threshold condition: `metric_type` on `resource_type`,
    aligned per `window_seconds` and combined with `reducer` over the matching time series
    (per value of the `group_by` labels when there are any), fires when the result exceeds
    `threshold`."""

    key: str
    display_name: str
    documentation: str  # what it means and what to do, shown in the incident
    metric_type: str
    resource_type: str
    aligner: str  # ALIGN_DELTA for counters, ALIGN_MAX for gauges
    window_seconds: int
    threshold: float
    resource_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    log_metric: str | None = None  # LogMetricSpec.key the condition reads
    metric_labels: Mapping[str, str] = field(default_factory=dict)
    reducer: str = "REDUCE_SUM"
    group_by: tuple[str, ...] = ()  # e.g. ("resource.label.service_name",): one per function

    def filter(self) -> str:
        """The Cloud Monitoring filter of the condition's time series."""
        terms = [_eq("metric.type", self.metric_type), _eq("resource.type", self.resource_type)]
        terms += [_eq(f"metric.labels.{k}", v) for k, v in sorted(self.metric_labels.items())]
        for label, values in sorted(self.resource_labels.items()):
            pattern = "|".join(values)
            terms.append(f'resource.labels.{label} = monitoring.regex.full_match("{pattern}")')
        return " AND ".join(terms)


@dataclass(frozen=True)
class Alerting:
    log_metrics: Mapping[str, LogMetricSpec]
    alerts: Mapping[str, AlertSpec]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _eq(path: str, value: str) -> str:
    return f"{path} = {_quote(value)}"


def _any_of(path: str, values: Iterable[str]) -> str:
    terms = [_eq(path, v) for v in values]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


# make_thumbnail's own log lines (functions/image_pipeline/pipeline.py). A unit test renders
# these filters and runs them over the lines the real code prints, so a reworded message
# fails a test instead of silencing an alert.
REJECTED = "image rejected"
RETRYING = (
    "transient failure; the delivery will be retried",
    "failure; the delivery will be retried",
)
GAVE_UP_REASON = "retry_window_exceeded"
# "Keeps failing": more retried deliveries than this within the window (one bad upload is
# retried a few times a minute by Eventarc; a broken dependency fails every upload).
RETRY_ALERT_THRESHOLD = 10
RETRY_ALERT_WINDOW_SECONDS = 600
# The line make_thumbnail writes once an `image.failed` result is published (`_publish`):
# one per failed upload, whatever the reason, and only once Pub/Sub took the result.
PUBLISHED_FAILED = "published image.failed"
# Backlog: a push subscription whose oldest unacked message is older than this is not
# draining (its function keeps failing or is refused for lack of instances); a burst within
# the capacity model (docs/capacity.md) drains well inside it.
BACKLOG_ALERT_SECONDS = 1800
# Throttling: more 429s (no instance free, Cloud Run's request_count with response_code
# 429) than this per function within the window: the function is at its max instances.
THROTTLED_ALERT_THRESHOLD = 100
THROTTLED_ALERT_WINDOW_SECONDS = 600
# The optional failure-count alert (setting `failed_alert_threshold`) counts over an hour:
# long enough that a burst of bad uploads from one user is one incident, not many.
FAILED_ALERT_WINDOW_SECONDS = 3600


def declare_alerts(topology: Topology, failed_threshold: int) -> Alerting:
    """The alert policies of a deployment and the log-based metrics they read; the
    failure-count alert only when `failed_threshold` (`failed_alert_threshold`) is above 0."""
    prefix = topology.prefix
    gave_up = _thumbnail_metric(
        topology,
        "thumbnail_gave_up",
        "make_thumbnail gave up on an upload: it still failed past the retry window",
        ("WARNING",),
        (REJECTED,),
        reason=GAVE_UP_REASON,
    )
    retried = _thumbnail_metric(
        topology,
        "thumbnail_retried",
        "make_thumbnail failed a delivery that Eventarc will retry",
        ("WARNING", "ERROR"),
        RETRYING,
    )
    metrics = [gave_up, retried]
    alerts = [
        *_pubsub_alerts(topology),
        _throttled_alert(topology),
        _log_alert(
            gave_up,
            f"{prefix}: make_thumbnail gave up on an upload",
            "An upload's finalize event was still failing when it was older than the retry "
            "window, so make_thumbnail recorded it as failed (reason retry_window_exceeded) "
            "without thumbnails. Fix the cause in the function's logs, then "
            "`scripts/backfill --project PROJECT --execute` re-sends it.",
            window_seconds=60,
            threshold=0,
        ),
        _log_alert(
            retried,
            f"{prefix}: make_thumbnail keeps failing",
            f"More than {RETRY_ALERT_THRESHOLD} make_thumbnail deliveries failed within "
            f"{RETRY_ALERT_WINDOW_SECONDS // 60} minutes and are being retried by "
            "Eventarc. Uploads are delayed, and given up once the retry window ends. "
            "The function's WARNING/ERROR log lines name the error.",
            window_seconds=RETRY_ALERT_WINDOW_SECONDS,
            threshold=RETRY_ALERT_THRESHOLD,
        ),
    ]
    if failed_threshold > 0:
        failed = _thumbnail_metric(
            topology,
            "images_failed",
            "make_thumbnail published an image.failed result",
            ("INFO",),
            (PUBLISHED_FAILED,),
        )
        metrics.append(failed)
        alerts.append(_failed_alert(prefix, failed, failed_threshold))
    return Alerting(
        log_metrics={m.key: m for m in metrics},
        alerts={a.key: a for a in alerts},
    )


def _pubsub_alerts(topology: Topology) -> tuple[AlertSpec, ...]:
    """Dead letters, dead letters left unrecorded, and push subscriptions not draining."""
    prefix, subscriptions = topology.prefix, topology.subscriptions.values()
    unrecorded_subscription = topology.subscriptions["dead_letters_unrecorded"].name
    return (
        AlertSpec(
            key="dead_lettered",
            display_name=f"{prefix}: a message reached a dead-letter topic",
            documentation=(
                "A pipeline subscription gave up on a message after its maximum delivery "
                "attempts and forwarded it to a dead-letter topic. The recorder stores it in "
                "Firestore: see it with `scripts/dead-letters --project PROJECT list`, fix the "
                "cause, then `scripts/dead-letters --project PROJECT replay ID`."
            ),
            metric_type="pubsub.googleapis.com/subscription/dead_letter_message_count",
            resource_type=SUBSCRIPTION_RESOURCE,
            resource_labels={"subscription_id": tuple(sorted(s.name for s in subscriptions))},
            aligner="ALIGN_DELTA",
            window_seconds=60,
            threshold=0,
        ),
        AlertSpec(
            key="unrecorded_dead_letters",
            display_name=f"{prefix}: dead letters the recorder could not record",
            documentation=(
                f"Messages wait on the pull subscription {unrecorded_subscription}: the "
                "dead-letter recorder itself failed on them (Firestore unavailable or denied). "
                f"Pull them with `gcloud pubsub subscriptions pull {unrecorded_subscription}` "
                "and check the recorder's logs."
            ),
            metric_type="pubsub.googleapis.com/subscription/num_undelivered_messages",
            resource_type=SUBSCRIPTION_RESOURCE,
            resource_labels={"subscription_id": (unrecorded_subscription,)},
            aligner="ALIGN_MAX",
            window_seconds=60,
            threshold=0,
        ),
        AlertSpec(
            key="backlog",
            display_name=f"{prefix}: a push subscription is not draining",
            documentation=(
                f"The oldest unacknowledged message of a push subscription is more than "
                f"{BACKLOG_ALERT_SECONDS // 60} minutes old: its function keeps failing, or "
                "it is refused for lack of instances (see the throttling alert). Messages are "
                "kept, and retried until their dead-letter policy gives up; check the "
                "function's logs and its max instances (docs/capacity.md)."
            ),
            metric_type="pubsub.googleapis.com/subscription/oldest_unacked_message_age",
            resource_type=SUBSCRIPTION_RESOURCE,
            resource_labels={
                "subscription_id": tuple(sorted(s.name for s in subscriptions if s.push_function))
            },
            aligner="ALIGN_MAX",
            window_seconds=300,
            threshold=BACKLOG_ALERT_SECONDS,
            reducer="REDUCE_MAX",
            group_by=("resource.label.subscription_id",),
        ),
    )


def _throttled_alert(topology: Topology) -> AlertSpec:
    return AlertSpec(
        key="throttled",
        display_name=f"{topology.prefix}: a function is refusing requests (429, no instance free)",
        documentation=(
            f"More than {THROTTLED_ALERT_THRESHOLD} requests to one function were refused "
            f"with 429 within {THROTTLED_ALERT_WINDOW_SECONDS // 60} minutes: it runs at "
            "its max instances. Eventarc and Pub/Sub retry them, so nothing is lost yet; a "
            "sustained rate means the uploads arrive faster than the settings serve them. "
            "Raise thumbnail_max_instances / function_max_instances (and the Cloud Run "
            "quotas): docs/capacity.md."
        ),
        metric_type="run.googleapis.com/request_count",
        resource_type=FUNCTION_RESOURCE,
        resource_labels={
            "service_name": tuple(sorted(f.name for f in topology.functions.values()))
        },
        metric_labels={"response_code": "429"},
        aligner="ALIGN_DELTA",
        window_seconds=THROTTLED_ALERT_WINDOW_SECONDS,
        threshold=THROTTLED_ALERT_THRESHOLD,
        group_by=("resource.label.service_name",),
    )


def _failed_alert(prefix: str, failed: LogMetricSpec, threshold: int) -> AlertSpec:
    return _log_alert(
        failed,
        f"{prefix}: many uploads failed",
        f"More than {threshold} uploads were recorded as failed (image.failed) "
        f"within {FAILED_ALERT_WINDOW_SECONDS // 60} minutes. Their metadata documents "
        "and the `failures` subscription carry each reason: `not_an_image`, "
        "`too_many_bytes` or `unsupported_format` point at what users upload, "
        "`corrupt` or `truncated` at broken uploads or a decoder problem, "
        "`retry_window_exceeded` at an outage (see the make_thumbnail gave-up alert).",
        window_seconds=FAILED_ALERT_WINDOW_SECONDS,
        threshold=threshold,
    )


def _thumbnail_metric(
    topology: Topology,
    key: str,
    description: str,
    severities: tuple[str, ...],
    messages: tuple[str, ...],
    **fields: str,
) -> LogMetricSpec:
    """A counter of make_thumbnail's own lines (`stage = make_thumbnail`)."""
    return LogMetricSpec(
        key=key,
        name=f"{topology.prefix}-{key.replace('_', '-')}",
        description=description,
        service_name=topology.functions[topology.trigger.function].name,
        severities=severities,
        messages=messages,
        fields={"stage": "make_thumbnail", **fields},
    )


def _log_alert(
    metric: LogMetricSpec,
    display_name: str,
    documentation: str,
    *,
    window_seconds: int,
    threshold: float,
) -> AlertSpec:
    """An alert on a make_thumbnail log counter: more than `threshold` lines per window."""
    return AlertSpec(
        key=metric.key,
        display_name=display_name,
        documentation=documentation,
        metric_type=metric.metric_type,
        resource_type=FUNCTION_RESOURCE,
        aligner="ALIGN_DELTA",
        window_seconds=window_seconds,
        threshold=threshold,
        log_metric=metric.key,
    )
