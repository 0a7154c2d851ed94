"""Pub/Sub: topics, subscriptions (filters, dead letters, retries, push), the uploads
bucket's notification, and the IAM each of them needs to actually deliver."""

from __future__ import annotations

from cdktf_cdktf_provider_google.pubsub_subscription import (
    PubsubSubscription,
    PubsubSubscriptionDeadLetterPolicy,
    PubsubSubscriptionExpirationPolicy,
    PubsubSubscriptionPushConfig,
    PubsubSubscriptionPushConfigOidcToken,
    PubsubSubscriptionRetryPolicy,
)
from cdktf_cdktf_provider_google.pubsub_subscription_iam_member import (
    PubsubSubscriptionIamMember,
)
from cdktf_cdktf_provider_google.pubsub_topic import PubsubTopic
from cdktf_cdktf_provider_google.pubsub_topic_iam_member import PubsubTopicIamMember
from cdktf_cdktf_provider_google.storage_notification import StorageNotification
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.buckets import Buckets
from infra.deploy.constructs.cloud_functions import Functions
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.generic import WaitForPropagation
from infra.deploy.constructs.iam import Identities, function_grants, grants_settled
from infra.deploy.constructs.protection import protect
from infra.model.topology import SubscriptionSpec


class Messaging(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        deployment: Deployment,
        *,
        identities: Identities,
        buckets: Buckets,
        functions: Functions,
    ) -> None:
        super().__init__(scope, id_)
        self._deployment, self._identities, self._functions = deployment, identities, functions
        topology, labels = deployment.topology, deployment.labels
        self.topics = {
            spec.key: PubsubTopic(
                self,
                spec.key,
                project=topology.project,
                name=spec.name,
                labels={**labels, "dead-letter": str(spec.is_dead_letter).lower()},
            )
            for spec in topology.topics.values()
        }
        # A topic recreated drops what is published meanwhile, and detaches its subscriptions.
        for topic in self.topics.values():
            protect(topic, deployment.config)
        self.dead_letter_publishers = {
            # Pub/Sub forwards undeliverable messages as its service agent; without this
            # binding dead lettering silently does nothing.
            spec.key: self._topic_member(
                f"{spec.key}-publisher-pubsub-agent",
                spec.key,
                "roles/pubsub.publisher",
                deployment.pubsub_agent,
                "the Pub/Sub service agent forwards dead letters to this topic",
            )
            for spec in topology.topics.values()
            if spec.is_dead_letter
        }
        # Each function's roles on a topic, exactly as the topology grants them.
        for grant_id, fn, grant in function_grants(topology, "topic"):
            self._topic_member(
                grant_id,
                grant.target,
                grant.role,
                identities.runtime[fn.key].member,
                f"{fn.name} {grant.why}",
            )
        self._subscriptions()
        self._notification(buckets)

    def _subscriptions(self) -> None:
        """Every subscription, with the Pub/Sub agent's grant on it, once push grants settled."""
        deployment = self._deployment
        # A push subscription pushes from its creation on, and a 403 while its invoker's grant
        # propagates counts as a delivery attempt (docs/architecture.md, "Push subscriptions").
        push_ready = grants_settled(
            self,
            "push-grants-settled",
            deployment,
            [*self._functions.push_invoker_grants, self._identities.push_token_creator],
            "every push subscription (the push invoker's run.invoker and token grants)",
        )
        for spec in deployment.topology.subscriptions.values():
            sub = self._subscription(spec, push_ready)
            # Recreated (its filter is ForceNew), it loses its backlog and what arrives between
            # the delete and the create: docs/deploy-and-operate.md, "Changes that lose nothing".
            protect(sub, deployment.config)
            # Pub/Sub acks the original message as its service agent once it has forwarded
            # it to the dead-letter topic; without this it keeps redelivering.
            why(
                PubsubSubscriptionIamMember(
                    self,
                    f"{spec.key}-subscriber-pubsub-agent",
                    project=deployment.topology.project,
                    subscription=sub.name,
                    role="roles/pubsub.subscriber",
                    member=deployment.pubsub_agent,
                ),
                "the Pub/Sub service agent acks messages it moved to the dead-letter topic",
            )

    def _notification(self, buckets: Buckets) -> None:
        """The uploads bucket's notification (deletes) to upload-events, once Cloud Storage
        may publish there."""
        note = self._deployment.topology.notification
        publisher = self._topic_member(
            f"{note.topic}-publisher-storage-agent",
            note.topic,
            "roles/pubsub.publisher",
            self._deployment.storage_agent,
            "Cloud Storage publishes the bucket's notifications as its service agent",
        )
        StorageNotification(
            self,
            "notification",
            bucket=buckets.buckets[note.bucket].name,
            topic=self.topics[note.topic].id,
            payload_format=note.payload_format,
            event_types=list(note.event_types),
            custom_attributes=dict(note.custom_attributes),
            depends_on=[publisher],
        )

    def _topic_member(
        self, id_: str, topic: str, role: str, member: str, reason: str
    ) -> PubsubTopicIamMember:
        binding = PubsubTopicIamMember(
            self,
            id_,
            project=self._deployment.topology.project,
            topic=self.topics[topic].name,
            role=role,
            member=member,
        )
        return why(binding, reason)

    def _subscription(
        self, spec: SubscriptionSpec, push_ready: WaitForPropagation
    ) -> PubsubSubscription:
        deployment = self._deployment
        push = None
        if spec.push_function:
            # Wrapped format (no `no_wrapper`): functions-framework turns the standard push
            # body into a CloudEvent. The OIDC audience defaults to the endpoint URL.
            push = PubsubSubscriptionPushConfig(
                push_endpoint=self._functions.functions[spec.push_function].service_config.uri,
                oidc_token=PubsubSubscriptionPushConfigOidcToken(
                    service_account_email=self._identities.push_invoker.email
                ),
            )
        return PubsubSubscription(
            self,
            spec.key,
            project=deployment.topology.project,
            name=spec.name,
            topic=self.topics[spec.topic].id,
            filter=spec.filter or None,
            ack_deadline_seconds=spec.ack_deadline_seconds,
            message_retention_duration=f"{spec.retention_seconds}s",
            # Never expire: an idle pipeline must not lose its subscriptions after 31 days.
            expiration_policy=PubsubSubscriptionExpirationPolicy(ttl=""),
            retry_policy=PubsubSubscriptionRetryPolicy(
                minimum_backoff=f"{spec.retry.minimum_backoff_seconds}s",
                maximum_backoff=f"{spec.retry.maximum_backoff_seconds}s",
            ),
            dead_letter_policy=PubsubSubscriptionDeadLetterPolicy(
                dead_letter_topic=self.topics[spec.dead_letter_topic].id,
                max_delivery_attempts=spec.max_delivery_attempts,
            ),
            push_config=push,
            labels={**deployment.labels, "subscription": spec.key.replace("_", "-")},
            depends_on=[
                self.dead_letter_publishers[spec.dead_letter_topic],
                *([push_ready] if push else []),
            ],
        )
