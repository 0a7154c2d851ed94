"""The deploy-order checks on the synthesized graph: the stacks pass, and a copy of the
graph with one edge or grant taken away is refused with a message naming both resources."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra.deploy.deploy_order import DeployOrderError, check_deploy_order, problems

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_the_synthesized_stacks_deploy_in_a_safe_order(synth_name, request):
    assert problems(request.getfixturevalue(synth_name).tf) == []


def _find(tf: dict, kind: str, **match: Any) -> tuple[str, dict]:
    for name, body in tf["resource"][kind].items():
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
    grant, _ = _iam(tf, "roles/artifactregistry.writer")
    return fn, grant


def _sleep_without(tf, role: str, function: str) -> tuple[str, str]:
    """No time_sleep waits for the grant of `role` any more; (function, that grant)."""
    grant, _ = _iam(tf, role)
    for body in tf["resource"]["time_sleep"].values():
        if grant in body["depends_on"]:
            body["depends_on"].remove(grant)
    fn, _ = _find(tf, "google_cloudfunctions2_function", name=function)
    return fn, grant


def _build_sleep_misses_a_grant(tf):
    return _sleep_without(tf, "roles/logging.logWriter", "imgpipe-cleanup")


def _trigger_without_the_agent_settled(tf):
    fn, body = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    sleep = _drop_dependency(body, "time_sleep.identities_trigger")
    del tf["resource"]["time_sleep"][sleep.split(".")[1]]
    role, _ = _iam(tf, "roles/eventarc.serviceAgent")
    return fn, role


def _trigger_without_the_agent_role(tf):
    return _sleep_without(tf, "roles/eventarc.serviceAgent", "imgpipe-make-thumbnail")


def _trigger_without_the_agent_identity(tf):
    agent, _ = _find(tf, "google_project_service_identity", service="eventarc.googleapis.com")
    _, body = _iam(tf, "roles/eventarc.serviceAgent")
    body["member"] = "serviceAccount:eventarc-agent@example.com"  # not the created agent
    fn, _ = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    return fn, agent


def _agent_spelled_out(tf):
    agent, _ = _find(tf, "google_project_service_identity", service="pubsub.googleapis.com")
    binding, body = _find(tf, "google_service_account_iam_member")
    body["member"] = "serviceAccount:service-123456789@gcp-sa-pubsub.iam.gserviceaccount.com"
    return binding, agent


def _trigger_token_grant_not_settled(tf):
    fn, _ = _find(tf, "google_cloudfunctions2_function", name="imgpipe-make-thumbnail")
    removed = []
    for body in tf["resource"]["time_sleep"].values():
        for dep in [d for d in body["depends_on"] if "google_service_account_iam_member." in d]:
            body["depends_on"].remove(dep)
            removed.append(dep)
    [grant] = removed  # only the trigger's account is granted before a wait
    return fn, grant


def _notification_before_its_grant(tf):
    [(name, body)] = tf["resource"]["google_storage_notification"].items()
    [grant] = body.pop("depends_on")
    return f"google_storage_notification.{name}", grant


def _dead_letters_before_the_publisher_grant(tf):
    sub, body = _find(tf, "google_pubsub_subscription", name="imgpipe-cleanup")
    grant = _drop_dependency(body, "google_pubsub_topic_iam_member.")
    return sub, grant


def _dead_letters_never_acked(tf):
    sub, _ = _find(tf, "google_pubsub_subscription", name="imgpipe-failures")
    agent, _ = _find(tf, "google_project_service_identity", service="pubsub.googleapis.com")
    grants = tf["resource"]["google_pubsub_subscription_iam_member"]
    for name in [n for n, b in grants.items() if f"${{{sub}." in b["subscription"]]:
        del grants[name]
    return sub, agent


def _data_source_waits(tf):
    [(name, body)] = tf["data"]["google_storage_project_service_account"].items()
    api, _ = _find(tf, "google_project_service", service="storage.googleapis.com")
    body["depends_on"] = [api]
    return f"data.google_storage_project_service_account.{name}", api


BREAKS: dict[str, Callable[[dict], tuple[str, str]]] = {
    "a function does not wait for the build grants": _build_not_settled,
    "the build wait misses one grant": _build_sleep_misses_a_grant,
    "the trigger does not wait for the Eventarc agent's role to settle": (
        _trigger_without_the_agent_settled
    ),
    "the Eventarc agent's role is not upstream of the trigger": _trigger_without_the_agent_role,
    "the Eventarc agent's identity is not upstream of the trigger": (
        _trigger_without_the_agent_identity
    ),
    "the trigger does not wait for the token grant on its account": (
        _trigger_token_grant_not_settled
    ),
    "a service agent's email is spelled out": _agent_spelled_out,
    "the notification does not wait for its publisher grant": _notification_before_its_grant,
    "a subscription does not wait for its dead-letter publisher grant": (
        _dead_letters_before_the_publisher_grant
    ),
    "a subscription's dead letters cannot be acked": _dead_letters_never_acked,
    "a data source waits on a resource": _data_source_waits,
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_order_is_refused_naming_both_resources(stack, case):
    tf = copy.deepcopy(stack.tf)
    first, second = BREAKS[case](tf)
    with pytest.raises(DeployOrderError) as refused:
        check_deploy_order(tf)
    assert any(first in p and second in p for p in refused.value.problems), (
        first,
        second,
        refused.value.problems,
    )
