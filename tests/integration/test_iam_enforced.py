"""The local stack refuses what the deployed IAM refuses, names it, and loses nothing for it.

One grant per service is removed from a copy of the session's synthesized stacks, and a
stack of its own is started on the copy (`--policy`, as `scripts/local up --policy DIR`):
make_thumbnail's read of the uploads (Cloud Storage), write_metadata's `datastore.user`
(Firestore), cleanup's publisher role on the result topic (Pub/Sub) and the push account's
`run.invoker` on the dead-letter recorder. Then each flow fails as on GCP: refused,
retried, and ended the way the platform ends it (the trigger gives up after its window;
push messages are dead-lettered, and the recorder's own dead letters go on to the
unrecorded topic). The session's stack, which runs on the whole policy, shows each grant
used or says why it stays.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from image_pipeline.events import StorageObject, result_event
from infra.local import sample_images
from infra.local.fidelity.iam import Identities
from infra.local.local_stack import LocalStack, StackOptions
from infra.local.servers import PreflightError
from infra.model.config import load_config
from infra.model.iam_policy import Binding, load_policy, service_resource
from infra.model.topology import build_topology
from tests.integration.conftest import BACKOFF_FACTOR, TEST_SETTINGS, Harness
from tests.synthesis import INTEGRATION_ID, Synth

pytestmark = pytest.mark.integration


def _without(outdir: Path, copy: Path, bindings: list[Binding]) -> Path:
    """A copy of `outdir` whose stacks lack `bindings`."""
    shutil.copytree(outdir, copy)
    for path in copy.glob("stacks/*/cdk.tf.json"):
        tf = json.loads(path.read_text())
        for binding in bindings:
            kind, logical_id = binding.address.split(".", 1)
            tf.get("resource", {}).get(kind, {}).pop(logical_id, None)
        path.write_text(json.dumps(tf))
    return copy


@pytest.fixture(scope="module")
def narrowed(
    tmp_path_factory: pytest.TempPathFactory, synthesized: dict[str, Synth]
) -> Iterator[tuple[Harness, dict[str, Binding]]]:
    config = load_config(overrides=TEST_SETTINGS)
    t = build_topology(config)
    policy = load_policy(synthesized[INTEGRATION_ID].outdir, t)

    def grant(member: str, role: str, resource: str) -> Binding:
        [found] = [
            b
            for b in policy.bindings
            if (b.member, b.role) == (member, role) and b.resource.endswith(resource)
        ]
        return found

    runtime = policy.runtime
    removed = {
        "storage": grant(runtime["make_thumbnail"], "roles/storage.objectViewer", "-uploads"),
        "firestore": grant(runtime["write_metadata"], "roles/datastore.user", t.project),
        "pubsub": grant(runtime["cleanup"], "roles/pubsub.publisher", t.topic_path("image_events")),
        "run.invoker": grant(
            policy.invokers["dead_letter_recorder"],
            "roles/run.invoker",
            service_resource(t, "handle_dead_letter"),
        ),
    }
    state = tmp_path_factory.mktemp("narrowed-stack")
    copy = _without(synthesized[INTEGRATION_ID].outdir, state / "cdktf.out", [*removed.values()])
    stack = LocalStack(
        config,
        StackOptions(
            state_dir=state,
            backoff_factor=BACKOFF_FACTOR,
            poll_seconds=0.05,
            trigger_window_seconds=3.0,
            policy=copy,
        ),
    )
    try:
        stack.up()
    except PreflightError as exc:
        pytest.fail(f"the integration tests need the emulators: {exc}", pytrace=False)
    try:
        yield Harness(stack), removed
    finally:
        stack.down()


def _denied(iam: Identities, member: str, permission: str) -> list[dict[str, object]]:
    return [
        d for d in iam.report()["identities"][member]["denied"] if d["permission"] == permission
    ]


def _log(harness: Harness, function: str) -> str:
    name = harness.stack.topology.functions[function].name
    return Path(harness.info["functions"][name]["log"]).read_text(errors="replace")


def test_a_missing_grant_is_refused_as_on_gcp_named_and_nothing_is_lost(narrowed, prefix):
    h, removed = narrowed
    iam, topology = h.stack.iam, h.stack.topology
    assert iam is not None
    photo, written, gone = prefix + "photo.jpg", prefix + "written.jpg", prefix + "gone.jpg"
    h.upload(photo, sample_images.jpeg(300, 200))  # make_thumbnail may not read it
    obj = StorageObject(h.uploads.name, written, 7, None, "image/jpeg", 100)
    event = result_event("processed", obj, "evt-1", image={"width": 3, "height": 2}, thumbnails=[])
    h.publish("image_events", event.encoded(), **event.attributes)  # write_metadata may not write
    h.upload(gone, sample_images.jpeg(200, 100))
    h.uploads.blob(gone).delete()  # cleanup may not publish image.deleted

    # Storage: refused with Cloud Storage's 403, retried like Eventarc, then given up on.
    h.wait_until(lambda: h.router.log.abandoned(photo), 60, f"the trigger to give up on {photo}")
    assert h.doc(photo) is None
    storage = _denied(iam, removed["storage"].member, "storage.objects.get")
    assert any(photo in str(d["resource"]) for d in storage), storage
    assert "does not have storage.objects.get access" in _log(h, "make_thumbnail")

    # Firestore and Pub/Sub: each refused message is retried, dead-lettered, and (the
    # recorder may not be invoked: 403) dead-lettered again to the unrecorded topic.
    def unrecorded() -> set[str]:
        return {
            m["message"]["attributes"].get("objectId", "")
            for m in h.pulled("dead_letters_unrecorded", prefix)
        }

    h.wait_until(lambda: {written, gone} <= unrecorded(), 90, "both dead letters unrecorded")
    assert h.doc(written) is None
    database = f"projects/{topology.project}/databases/{topology.firestore_database}"
    firestore = _denied(iam, removed["firestore"].member, "datastore.databases.get")
    assert [d["resource"] for d in firestore] == [database]
    assert f"Permission 'datastore.databases.get' denied on resource '{database}'" in _log(
        h, "write_metadata"
    )
    topic = topology.topic_path("image_events")
    assert [d["resource"] for d in _denied(iam, removed["pubsub"].member, "pubsub.topics.publish")]
    assert f"Permission 'pubsub.topics.publish' denied on resource '{topic}'" in _log(h, "cleanup")
    recorder = [d for d in h.router.log.deliveries(function="handle_dead_letter") if d.by != "iam"]
    assert recorder == [], "the recorder was reached without run.invoker"
    invoke = _denied(iam, removed["run.invoker"].member, "run.routes.invoke")
    assert [d["resource"] for d in invoke] == [service_resource(topology, "handle_dead_letter")]


def test_every_grant_is_used_by_the_pipeline_or_says_why_it_stays(harness, prefix):
    """After an upload, an overwrite, a delete and a dead letter, no grant of the stacks is
    left unused unless it says why it stays (`//.kept`): an unused one is one to remove."""
    name = prefix + "photo.jpg"
    first = harness.upload(name, sample_images.jpeg(300, 200))
    harness.wait_doc(name, lambda d: d.get("status") == "processed")
    second = harness.upload(name, sample_images.jpeg(320, 200))  # cleanup reads the upload
    harness.wait_doc(name, lambda d: d.get("generation") == second != first)
    harness.uploads.blob(name).delete()
    harness.wait_doc(name, lambda d: d.get("status") == "deleted")
    with harness.faults(failing=["write_metadata"]):
        obj = StorageObject(harness.uploads.name, prefix + "x.jpg", 1, None, "image/jpeg", 1)
        event = result_event("failed", obj, "e", error={"reason": "corrupt", "message": "x"})
        harness.publish("image_events", event.encoded(), **event.attributes)
        harness.wait_until(
            lambda: any(
                d.to_dict().get("attributes", {}).get("objectId") == prefix + "x.jpg"
                for d in harness.dead_letters.stream()
            ),
            60,
            "the dead letter to be recorded",
        )
    iam = harness.stack.iam
    assert iam is not None
    unused = {
        who: [(g["role"], g["resource"]) for g in seen["unused_grants"] if not g["kept"]]
        for who, seen in iam.report()["identities"].items()
    }
    assert {who: grants for who, grants in unused.items() if grants} == {}
