"""Cloud Monitoring: the alert policies and log-based metrics the topology declares.

Every policy exists whether or not notification channels are configured: without channels
an incident still opens and shows in the console (Monitoring > Alerting); with them it also
notifies. The filters come from `infra.model.monitoring`, where they are tested against the
functions' real log lines.
"""

from __future__ import annotations

from collections.abc import Sequence

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

from infra.deploy.constructs.deployment import Deployment
from infra.model.monitoring import AlertSpec

# An incident nobody acknowledged closes after a week, so a fixed cause does not leave a
# stale incident open forever (the documented maximum is 30 days).
AUTO_CLOSE = f"{7 * 24 * 3600}s"


class Alerts(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        deployment: Deployment,
        *,
        notification_channels: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id_)
        topology, apis = deployment.topology, deployment.apis
        alerting = topology.alerting
        self.log_metrics = {
            spec.key: LoggingMetric(
                self,
                f"metric-{spec.key}",
                project=topology.project,
                name=spec.name,
                description=spec.description,
                filter=spec.filter(),
                metric_descriptor=LoggingMetricMetricDescriptor(
                    metric_kind="DELTA", value_type="INT64", unit="1"
                ),
                depends_on=apis.needed("logging"),
            )
            for spec in alerting.log_metrics.values()
        }
        needs_monitoring = apis.needed("monitoring")
        self.policies = {
            spec.key: MonitoringAlertPolicy(
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
                notification_channels=list(notification_channels) or None,
                user_labels=dict(deployment.labels),
                # A condition on a log-based metric is refused until the metric exists.
                depends_on=[
                    *needs_monitoring,
                    *([self.log_metrics[spec.log_metric]] if spec.log_metric else []),
                ],
            )
            for spec in alerting.alerts.values()
        }


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
                    cross_series_reducer="REDUCE_SUM",
                )
            ],
            trigger=MonitoringAlertPolicyConditionsConditionThresholdTrigger(count=1),
        ),
    )
