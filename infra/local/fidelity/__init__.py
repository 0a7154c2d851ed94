"""The local stack's fidelity: what makes the bare emulators behave like GCP
(docs/local-stack.md, "Core and fidelity"). `Fidelity.delivery_hooks` is the one list of the
delivery hooks; the Cloud Storage front (`gcs_front`) stands before fake-gcs-server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.local.fidelity.faults import Faults, FaultSettings
from infra.local.fidelity.iam import Identities
from infra.local.fidelity.push_window import PushWindow
from infra.local.fidelity.refusals import Refusals
from infra.local.fidelity.throttle import Throttle
from infra.local.hooks import DeliveryHook
from infra.model.topology import Topology


@dataclass
class Fidelity:
    window: PushWindow
    refusals: Refusals
    faults: Faults
    throttle: Throttle
    iam: Identities | None = None  # None: `--iam off`

    @classmethod
    def for_topology(
        cls,
        topology: Topology,
        faults: FaultSettings | None = None,
        startup_seconds: Mapping[str, float] | None = None,
        backoff_factor: float = 1.0,
    ) -> Fidelity:
        push = [key for key, sub in topology.subscriptions.items() if sub.push_function]
        return cls(
            window=PushWindow(),
            refusals=Refusals(push),
            faults=Faults(faults),
            throttle=Throttle(topology, startup_seconds or {}, backoff_factor),
        )

    def delivery_hooks(self) -> list[DeliveryHook]:
        """Every hook, in the order a delivery meets them (their gates open in this order)."""
        return [
            # Push flow control: a route holds a window of messages, wider after successes,
            # narrower after failures (https://cloud.google.com/pubsub/docs/push).
            self.window,
            # Publishes over Pub/Sub's limits never exist on GCP
            # (https://cloud.google.com/pubsub/quotas#resource_limits).
            self.refusals,
            # Cloud Run refuses (403) a caller without run.invoker on the function
            # (https://cloud.google.com/run/docs/securing/managing-access).
            *([self.iam] if self.iam else []),
            # At-least-once, unordered delivery and failures before the function
            # (https://cloud.google.com/pubsub/docs/exactly-once-delivery).
            self.faults,
            # Cloud Run's capacity: max instances x concurrency, a bounded wait, then 429
            # (https://cloud.google.com/run/docs/about-instance-autoscaling). Last: only a
            # request that is sent holds a slot.
            self.throttle,
        ]
