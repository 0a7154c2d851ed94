"""Cloud Monitoring: the alert policies and log-based metrics the topology declares
(`infra.model.monitoring`, which renders their filters). Every policy exists with or without
notification channels: without, an incident still opens and shows in the console.
"""

from __future__ import annotations

from cdktf_cdktf_provider_google.logging_metric import (
    LoggingMetric,
    LoggingMetricMetricDescriptor,
)
from cdktf_cdktf_provider_google.monitoring_alert_policy import (
    MonitoringAlertPolicy,
    MonitoringAlertPolicyAlertStrategy,
    MonitoringAlertPolicyConditions,
    MonitoringAlertPolicyConditionsConditionThreshold,
    MonitoringAlertPolicyConditionsConditionThresholdAggregations,
    MonitoringAlertPolicyConditionsConditionThresholdTrigger,
    MonitoringAlertPolicyDocumentation,
)
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.generic import WaitForPropagation
from infra.model.monitoring import AlertSpec, declare_alerts

# An incident nobody acknowledged closes after a week, so a fixed cause does not leave a
# stale incident open forever (the documented maximum is 30 days).
AUTO_CLOSE = f"{7 * 24 * 3600}s"
# How long an alert policy on a log-based metric waits after the metric is created: until
# then Monitoring refuses the condition (404 "Cannot find metric(s) ... it could take up to
# 10 minutes"), and the provider's create retries only concurrent-edit errors
# (terraform-provider-google #11102). Exactly those 10 minutes would leave no margin.
LOG_METRIC_SETTLE_SECONDS = 720


class Alerts(Construct):
    def __init__(self, scope: Construct, id_: str, deployment: Deployment) -> None:
        super().__init__(scope, id_)
        topology, config = deployment.topology, deployment.config
        alerting = declare_alerts(topology, config.failed_alert_threshold)
        known = {}  # log metric key -> the wait after its creation
        for log_metric in alerting.log_metrics.values():
            metric = LoggingMetric(
                self,
                f"metric-{log_metric.key}",
                project=topology.project,
                name=log_metric.name,
                description=log_metric.description,
                filter=log_metric.filter(),
                metric_descriptor=LoggingMetricMetricDescriptor(
                    metric_kind="DELTA", value_type="INT64", unit="1"
                ),
            )
            # Sleeps again only for a new metric (say failed_alert_threshold turned on later).
            known[log_metric.key] = why(
                WaitForPropagation(
                    self,
                    f"metric-{log_metric.key}-known",
                    providers=deployment.providers,
                    seconds=LOG_METRIC_SETTLE_SECONDS,
                    after=[metric],
                    triggers={"metric": metric.name},
                ),
                f"Monitoring may take up to {LOG_METRIC_SETTLE_SECONDS // 60} minutes to know "
                "a new log-based metric; an alert policy on it created earlier fails with 404 "
                "(terraform-provider-google #11102)",
            )
        for spec in alerting.alerts.values():
            MonitoringAlertPolicy(
                self,
                f"policy-{spec.key}",
                project=topology.project,
                display_name=spec.display_name,
                combiner="OR",
                conditions=[_condition(spec)],
                documentation=MonitoringAlertPolicyDocumentation(
                    content=spec.documentation, mime_type="text/markdown"
                ),
                alert_strategy=MonitoringAlertPolicyAlertStrategy(auto_close=AUTO_CLOSE),
                notification_channels=list(config.alert_notification_channels) or None,
                user_labels=dict(deployment.labels),
                depends_on=[known[spec.log_metric]] if spec.log_metric else None,
            )


def _condition(spec: AlertSpec) -> MonitoringAlertPolicyConditions:
    window = f"{spec.window_seconds}s"
    return MonitoringAlertPolicyConditions(
        display_name=spec.display_name,
        condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
            filter=spec.filter(),
            comparison="COMPARISON_GT",
            threshold_value=spec.threshold,
            duration="0s",
            aggregations=[
                MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                    alignment_period=window,
                    per_series_aligner=spec.aligner,
                    cross_series_reducer=spec.reducer,
                    group_by_fields=list(spec.group_by) or None,
                )
            ],
            trigger=MonitoringAlertPolicyConditionsConditionThresholdTrigger(count=1),
        ),
    )
