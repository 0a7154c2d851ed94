"""Cloud Functions, their trigger and who may invoke them, in the synthesized stack."""

from __future__ import annotations

import pytest

from infra.model.topology import FINALIZED, FUNCTION_RUNTIME

pytestmark = pytest.mark.synth


def _function(synth, key):
    return synth.one("google_cloudfunctions2_function", name=synth.topology.functions[key].name)


def test_one_function_per_spec(stack):
    names = {fn["name"] for fn in stack.all("google_cloudfunctions2_function")}
    assert names == {spec.name for spec in stack.topology.functions.values()}


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_function_settings_come_from_the_spec(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    for spec in synth.topology.functions.values():
        fn = _function(synth, spec.key)
        build, service = fn["build_config"], fn["service_config"]
        assert fn["location"] == synth.config.region
        assert build["runtime"] == FUNCTION_RUNTIME
        assert build["entry_point"] == spec.key
        assert service["environment_variables"] == dict(spec.env)
        # 2nd gen Python runtimes do not set it; the functions need it for their clients.
        assert service["environment_variables"]["GOOGLE_CLOUD_PROJECT"] == synth.config.project
        assert service["available_memory"] == spec.memory
        assert service["timeout_seconds"] == spec.timeout_seconds
        assert service["max_instance_count"] == spec.max_instances
        assert service["max_instance_request_concurrency"] == spec.concurrency
        assert service["available_cpu"] == spec.cpu
        assert service["min_instance_count"] == 0
        # Only the alternative config names backfill invokers, which opens make_thumbnail.
        opened = spec.key == "make_thumbnail" and bool(synth.config.backfill_invokers)
        assert service["ingress_settings"] == ("ALLOW_ALL" if opened else "ALLOW_INTERNAL_ONLY")
        assert synth.account_of(service["service_account_email"]) == spec.service_account_id
        assert synth.account_of(build["service_account"]) == synth.topology.build_account_id


def test_each_function_has_its_own_runtime_account(stack):
    accounts = [
        stack.account_of(fn["service_config"]["service_account_email"])
        for fn in stack.all("google_cloudfunctions2_function")
    ]
    assert len(set(accounts)) == len(accounts) == len(stack.topology.functions)


def test_make_thumbnail_is_triggered_by_finalized_uploads(stack):
    trigger = stack.topology.trigger
    fn = _function(stack, trigger.function)
    event = fn["event_trigger"]
    assert event["event_type"] == FINALIZED
    assert event["retry_policy"] == "RETRY_POLICY_RETRY"
    assert event["trigger_region"] == "us-central1"
    assert stack.account_of(event["service_account_email"]) == trigger.service_account_id
    assert trigger.service_account_id not in {
        f.service_account_id for f in stack.topology.functions.values()
    }
    [bucket_filter] = event["event_filters"]
    assert bucket_filter["attribute"] == "bucket"
    _, bucket, _ = stack.ref(bucket_filter["value"])
    assert bucket["name"] == stack.config.uploads_bucket
    # Created only once the storage agent may publish and the trigger may receive, and
    # both grants have had time to propagate.
    address = stack.address("google_cloudfunctions2_function", fn)
    for role in ("roles/pubsub.publisher", "roles/eventarc.eventReceiver"):
        [binding] = [
            stack.address("google_project_iam_member", b)
            for b in stack.all("google_project_iam_member")
            if b["role"] == role
        ]
        assert stack.graph.settled(binding, address), role


def test_only_make_thumbnail_has_an_event_trigger(stack):
    with_trigger = [
        f["name"] for f in stack.all("google_cloudfunctions2_function") if "event_trigger" in f
    ]
    assert with_trigger == [stack.topology.functions["make_thumbnail"].name]


def test_trigger_region_matches_the_bucket_location(alt_stack):
    fn = _function(alt_stack, "make_thumbnail")
    assert fn["event_trigger"]["trigger_region"] == "europe-west4"
    uploads = alt_stack.one("google_storage_bucket", name=alt_stack.config.uploads_bucket)
    assert uploads["location"].lower() == fn["event_trigger"]["trigger_region"]


def test_functions_wait_for_their_apis(stack):
    for fn in stack.all("google_cloudfunctions2_function"):
        upstream = stack.graph.upstream(stack.address("google_cloudfunctions2_function", fn))
        apis = {
            stack.graph.nodes[a].body["service"]
            for a in upstream
            if a.startswith("google_project_service.")
        }
        assert {
            "cloudfunctions.googleapis.com",
            "run.googleapis.com",
            "cloudbuild.googleapis.com",
        } <= apis


def _invokers(synth):
    """function name -> set of service account ids with run.invoker on its service."""
    result: dict[str, set[str]] = {}
    for binding in synth.all("google_cloud_run_service_iam_member"):
        assert binding["role"] == "roles/run.invoker"
        _, fn, attr = synth.ref(binding["service"])
        assert attr == "name"
        assert binding["location"] == synth.config.region
        member = binding["member"]
        who = member if member.startswith("group:") else synth.account_of(member)
        result.setdefault(fn["name"], set()).add(who)
    return result


def test_trigger_and_push_invoker_may_invoke_exactly_their_targets(stack):
    t = stack.topology
    expected = {t.functions[t.trigger.function].name: {t.trigger.service_account_id}}
    for sub in t.subscriptions.values():
        if sub.push_function:
            expected.setdefault(t.functions[sub.push_function].name, set()).add(
                t.push_invoker_account_id
            )
    assert _invokers(stack) == expected


def test_backfill_invokers_may_invoke_make_thumbnail_only(alt_stack):
    t = alt_stack.topology
    invokers = _invokers(alt_stack)
    assert invokers[t.functions["make_thumbnail"].name] == {
        t.trigger.service_account_id,
        *alt_stack.config.backfill_invokers,
    }
    for key, spec in t.functions.items():
        if key != "make_thumbnail":
            assert not invokers.get(spec.name, set()) & set(alt_stack.config.backfill_invokers)


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_each_function_is_sized_by_its_own_settings(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    config = synth.config
    thumbnailer = _function(synth, "make_thumbnail")["service_config"]
    assert thumbnailer["max_instance_count"] == (
        config.thumbnail_max_instances or config.max_instances
    )
    assert (thumbnailer["available_cpu"], thumbnailer["max_instance_request_concurrency"]) == (
        config.thumbnail_cpu,
        1,
    )
    assert "THREADS" not in thumbnailer["environment_variables"]
    for key in ("write_metadata", "cleanup", "handle_dead_letter"):
        service = _function(synth, key)["service_config"]
        assert service["max_instance_count"] == (
            config.function_max_instances or config.max_instances
        )
        assert service["available_cpu"] == config.function_cpu
        assert float(service["available_cpu"]) >= 1  # Cloud Run: concurrency > 1 needs 1 vCPU
        assert service["max_instance_request_concurrency"] == config.function_concurrency
        # functions-framework serves that many requests at once, not 4 per CPU it sees.
        assert service["environment_variables"]["THREADS"] == str(config.function_concurrency)
