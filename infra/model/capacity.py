"""The capacity model (docs/capacity.md): what the deployed functions can serve, shared by
the local stack, which enforces the same limits, and the tests on the synthesized stack.
"""

from __future__ import annotations

from infra.model.topology import FunctionSpec, RetryPolicy

# A request beyond every instance's slots waits up to max(10 s, 3.5 x the startup time),
# then is refused with 429 (https://cloud.google.com/run/docs/about-instance-autoscaling).
QUEUE_FLOOR_SECONDS = 10.0
QUEUE_STARTUP_FACTOR = 3.5


def slots(function: FunctionSpec) -> int:
    """Requests the function serves at once: every instance, each at its concurrency."""
    return function.max_instances * function.concurrency


def queue_seconds(startup_seconds: float) -> float:
    """How long Cloud Run holds a request that finds no free instance before its 429."""
    return max(QUEUE_FLOOR_SECONDS, QUEUE_STARTUP_FACTOR * startup_seconds)


def backoff_seconds(policy: RetryPolicy, attempt: int) -> float:
    """Pub/Sub's exponential backoff after the `attempt`-th failed delivery (a refused push
    is one: https://cloud.google.com/pubsub/docs/push): the minimum, doubled per failed
    attempt, capped at the maximum."""
    attempt = max(1, attempt)
    seconds = policy.minimum_backoff_seconds * 2 ** min(attempt - 1, 30)
    return float(min(seconds, policy.maximum_backoff_seconds))
