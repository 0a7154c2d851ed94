"""The deploy-order checks on the synthesized graph: the stacks pass, and a copy of the
graph with one edge or grant taken away is refused with a message naming both resources.

A deployment is two stacks: the pipeline's reads the project's through cross-stack
references, and the check merges them. A break edits a copy of either: `Stacks` finds a
resource in both and `drop` deletes it from the stack declaring it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.deploy_order import problems

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_the_synthesized_stacks_deploy_in_a_safe_order(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    assert problems(synth.tf, synth.stacks) == []
    assert problems(synth.project) == []


def test_the_pipeline_stack_cannot_be_checked_without_the_stack_it_reads(stack):
    with pytest.raises(ValueError, match=stack.project_id):
        problems(stack.tf)


class Stacks:
    """Copies of the pipeline stack (`tf`) and the project stack it reads (`project`)."""

    def __init__(self, synth) -> None:
        self.tf = copy.deepcopy(dict(synth.tf))
        self.project = copy.deepcopy(dict(synth.project))
        self.stacks = {synth.project_id: self.project}

    def of_kind(self, kind: str) -> dict[str, dict]:
        """Resources of `kind` in both stacks (the bodies are the copies' own)."""
        return {
            name: body
            for tf in (self.project, self.tf)
            for name, body in tf.get("resource", {}).get(kind, {}).items()
        }

    def drop(self, kind: str, name: str) -> None:
        for tf in (self.project, self.tf):
            tf.get("resource", {}).get(kind, {}).pop(name, None)

    def data(self, kind: str) -> dict[str, dict]:
        return {
            name: body
            for tf in (self.project, self.tf)
            for name, body in tf.get("data", {}).get(kind, {}).items()
        }


def _find(tf: Stacks, kind: str, **match: Any) -> tuple[str, dict]:
    for name, body in tf.of_kind(kind).items():
        if all(body.get(k) == v for k, v in match.items()):
            return f"{kind}.{name}", body
    raise AssertionError(f"no {kind} with {match}")


def _iam(tf: dict, role: str, kind: str = "google_project_iam_member") -> tuple[str, dict]:
    return _find(tf, kind, role=role)


def _drop_dependency(body: dict, prefix: str) -> str:
    """Removes the `depends_on` entry starting with `prefix`; returns it."""
    [dep] = [d for d in body["depends_on"] if d.startswith(prefix)]
    body["depends_on"].remove(dep)
    return dep


def _build_not_settled(tf):
    fn, body = _find(tf, "google_cloudfunctions2_function", name="imgpipe-write-metadata")
    _drop_dependency(body, "time_sleep.")
    grant, _ = _iam(tf, "roles/logging.logWriter")
    return fn, grant


def _sleep_without(tf, role: str, function: str) -> tuple[str, str]:
    """No time_sleep waits for the grant of `role` any more; (function, that grant)."""
    grant, _ = _iam(tf, role)
    for body in tf.of_kind("time_sleep").values():
        if grant in body["depends_on"]:
            body["depends_on"].remove(grant)
    fn, _ = _find(tf, "google_cloudfunctions2_function", name=function)
    return fn, grant


def _build_sleep_misses_a_grant(tf):
    return _sleep_without(tf, "roles/logging.logWriter", "imgpipe-cleanup")


def _trigger_without_the_agent_settled(tf):
    # The project stack is applied first, so any wait upstream of the trigger comes after
    # the agent's role: only a trigger with no wait at all is too early.
    fn, body = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    body["depends_on"] = [d for d in body["depends_on"] if not d.startswith("time_sleep.")]
    role, _ = _iam(tf, "roles/eventarc.serviceAgent")
    return fn, role


def _trigger_without_the_agent_role(tf):
    role, _ = _iam(tf, "roles/eventarc.serviceAgent")
    tf.drop(*role.split("."))
    fn, _ = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    return fn, "roles/eventarc.serviceAgent"


def _trigger_without_the_agent_identity(tf):
    agent, _ = _find(tf, "google_project_service_identity", service="eventarc.googleapis.com")
    _, body = _iam(tf, "roles/eventarc.serviceAgent")
    body["member"] = "serviceAccount:eventarc-agent@example.com"  # not the created agent
    fn, _ = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    return fn, agent


def _agent_spelled_out(tf):
    # Spelled out, and no stack creates the agent.
    agent, _ = _find(tf, "google_project_service_identity", service="pubsub.googleapis.com")
    tf.drop(*agent.split("."))
    binding, body = _find(tf, "google_service_account_iam_member")
    body["member"] = "serviceAccount:service-123456789@gcp-sa-pubsub.iam.gserviceaccount.com"
    return binding, "google_project_service_identity"


def _trigger_token_grant_not_settled(tf):
    fn, _ = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    [body] = [b for n, b in tf.of_kind("time_sleep").items() if "trigger-grants-settled" in n]
    [grant] = [d for d in body["depends_on"] if "google_service_account_iam_member." in d]
    body["depends_on"].remove(grant)
    return fn, grant


def _notification_before_its_grant(tf):
    [(name, body)] = tf.of_kind("google_storage_notification").items()
    [grant] = body.pop("depends_on")
    return f"google_storage_notification.{name}", grant


def _dead_letters_before_the_publisher_grant(tf):
    sub, body = _find(tf, "google_pubsub_subscription", name="imgpipe-cleanup")
    grant = _drop_dependency(body, "google_pubsub_topic_iam_member.")
    return sub, grant


def _dead_letters_never_acked(tf):
    sub, _ = _find(tf, "google_pubsub_subscription", name="imgpipe-failures")
    agent, _ = _find(tf, "google_project_service_identity", service="pubsub.googleapis.com")
    grants = tf.of_kind("google_pubsub_subscription_iam_member")
    for name in [n for n, b in grants.items() if f"${{{sub}." in b["subscription"]]:
        tf.drop("google_pubsub_subscription_iam_member", name)
    return sub, agent


def _data_source_waits(tf):
    [(name, body)] = tf.data("google_storage_project_service_account").items()
    api, _ = _find(tf, "google_project_service", service="storage.googleapis.com")
    body["depends_on"] = [api]
    return f"data.google_storage_project_service_account.{name}", api


def _policy_before_its_metric_is_known(tf):
    [(policy, body), *_] = [
        (n, b)
        for n, b in tf.of_kind("google_monitoring_alert_policy").items()
        if "logging.googleapis.com/user/" in str(b["conditions"])
    ]
    [sleep] = body.pop("depends_on")
    [metric] = tf.of_kind("time_sleep")[sleep.split(".")[1]]["depends_on"]
    return f"google_monitoring_alert_policy.{policy}", metric


def _push_before_its_invoker_grant_settled(tf):
    sub, body = _find(tf, "google_pubsub_subscription", name="imgpipe-cleanup")
    _drop_dependency(body, "time_sleep.")
    [grant] = [
        f"google_cloud_run_service_iam_member.{n}"
        for n, b in tf.of_kind("google_cloud_run_service_iam_member").items()
        if n.startswith("functions_cleanup-invoker-push")
    ]
    return sub, grant


def _push_account_never_invokes(tf):
    sub, _ = _find(tf, "google_pubsub_subscription", name="imgpipe-metadata-writer")
    for name in list(tf.of_kind("google_cloud_run_service_iam_member")):
        if name.startswith("functions_write_metadata-invoker-push"):
            tf.drop("google_cloud_run_service_iam_member", name)
    return sub, "run.invoker"


BREAKS: dict[str, Callable[[Stacks], tuple[str, str]]] = {
    "a function does not wait for the build grants": _build_not_settled,
    "the build wait misses one grant": _build_sleep_misses_a_grant,
    "the trigger does not wait for the Eventarc agent's role to settle": (
        _trigger_without_the_agent_settled
    ),
    "nothing grants the Eventarc agent its role": _trigger_without_the_agent_role,
    "the Eventarc agent's identity is not upstream of the trigger": (
        _trigger_without_the_agent_identity
    ),
    "the trigger does not wait for the token grant on its account": (
        _trigger_token_grant_not_settled
    ),
    "a service agent nothing creates is bound by its email": _agent_spelled_out,
    "the notification does not wait for its publisher grant": _notification_before_its_grant,
    "a subscription does not wait for its dead-letter publisher grant": (
        _dead_letters_before_the_publisher_grant
    ),
    "a subscription's dead letters cannot be acked": _dead_letters_never_acked,
    "a data source waits on a resource": _data_source_waits,
    "an alert policy does not wait until its log metric is known": (
        _policy_before_its_metric_is_known
    ),
    "a push subscription does not wait for its invoker grant": (
        _push_before_its_invoker_grant_settled
    ),
    "a push subscription's account may not invoke its endpoint": _push_account_never_invokes,
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_order_is_refused_naming_both_resources(stack, case):
    tf = Stacks(stack)
    first, second = BREAKS[case](tf)
    found = problems(tf.tf, tf.stacks)
    assert any(first in p and second in p for p in found), (first, second, found)
