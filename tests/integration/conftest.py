"""One local stack for the whole integration session: real emulators, real functions.

The stack starts once (session scope) and every test shares it; each test works under its
own object prefix, and fault injection is toggled at run time (`harness.faults(...)`), so
no test needs a stack of its own. A missing emulator or JDK FAILS the session with the
install hint: these tests are never skipped, in CI or anywhere else.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import storage
from PIL import Image

from image_pipeline.records import image_doc_id
from infra.local.control import apply_fault_request
from infra.local.delivery import Delivery
from infra.local.local_stack import LocalStack, StackOptions
from infra.local.pull import pull_filtered
from infra.local.servers import PreflightError
from infra.model.config import load_config
from tests.synthesis import INTEGRATION_ID, INTEGRATION_SETTINGS, Synth

# Small limits keep the "too big" cases cheap; everything else is the default config.
TEST_SETTINGS = INTEGRATION_SETTINGS  # its stacks are in the session synth (tests/synthesis.py)
BACKOFF_FACTOR = 0.01  # 10 s minimum backoff -> 100 ms
_counter = itertools.count()


class Harness:
    """What the tests do to and read from the shared stack."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        assert stack.clients and stack.router and stack.fidelity
        self.clients = stack.clients
        self.router = stack.router
        self.fidelity = stack.fidelity
        self.info = stack.info()
        self.uploads = self.clients.storage.bucket(self.info["buckets"]["uploads"])
        self.thumbnails = self.clients.storage.bucket(self.info["buckets"]["thumbnails"])
        self.images = self.clients.firestore.collection(self.info["collections"]["images"])
        self.dead_letters = self.clients.firestore.collection(
            self.info["collections"]["dead_letters"]
        )
        self._pulled: dict[str, list[dict[str, Any]]] = {}

    # -- inputs ----------------------------------------------------------------------------

    def upload(
        self,
        name: str,
        data: bytes,
        content_type: str = "image/jpeg",
        metadata: dict[str, str] | None = None,
    ) -> int:
        blob = self.uploads.blob(name)
        blob.metadata = metadata
        blob.upload_from_string(data, content_type=content_type)
        return int(blob.generation)

    def publish(self, topic_key: str, data: bytes, **attributes: str) -> str:
        path = self.stack.topology.topic_path(topic_key)
        return str(self.clients.publisher.publish(path, data, **attributes).result(30))

    # -- outputs ---------------------------------------------------------------------------

    def doc(self, name: str) -> dict[str, Any] | None:
        snap = self.images.document(image_doc_id(self.uploads.name, name)).get()
        return snap.to_dict() if snap.exists else None

    def wait_doc(
        self,
        name: str,
        until: Callable[[dict[str, Any]], bool] = lambda d: True,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        doc = None
        while time.monotonic() < deadline:
            doc = self.doc(name)
            if doc is not None and until(doc):
                return doc
            time.sleep(0.1)
        raise AssertionError(f"doc for {name!r} not as expected after {timeout}s: {doc}")

    def thumbnail_blobs(self, name: str) -> list[storage.Blob]:
        prefix = f"thumbnails/{name}/"
        return list(self.clients.storage.list_blobs(self.thumbnails.name, prefix=prefix))

    def thumbnail_image(self, blob_name: str) -> Image.Image:
        data = self.thumbnails.blob(blob_name).download_as_bytes()
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    def calls(self, function: str, prefix: str, *, injected: bool = False) -> list[Delivery]:
        """Deliveries that reached the function (or, with injected=True, were faked)."""
        return [
            d
            for d in self.router.log.deliveries(function=function, object_prefix=prefix)
            if (d.by == "injected") == injected and not d.duplicate and d.by != "throttled"
        ]

    def settled_calls(
        self, function: str, prefix: str, at_least: int = 1, timeout: float = 30.0
    ) -> list[Delivery]:
        """`calls`, once at least `at_least` are recorded: a function's effect (a doc, a
        deleted thumbnail) can be visible before the router has recorded its answer."""
        self.wait_until(
            lambda: len(self.calls(function, prefix)) >= at_least,
            timeout,
            f"{at_least} recorded call(s) of {function} for {prefix!r}",
        )
        return self.calls(function, prefix)

    def pulled(self, subscription: str, prefix: str, wait: float = 1.0) -> list[dict[str, Any]]:
        """Messages delivered to a pull subscription for objects under `prefix`.

        Pulling acks everything, so what other tests' pulls already took is kept here.
        """
        seen = self._pulled.setdefault(subscription, [])
        seen.extend(pull_filtered(self.clients.subscriber, self.info, subscription, 1000, wait))
        return [
            m for m in seen if m["message"]["attributes"].get("objectId", "").startswith(prefix)
        ]

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    @contextlib.contextmanager
    def faults(self, **settings: Any) -> Iterator[None]:
        """Fault injection for the body of a `with` block, then everything off again."""
        functions = self.stack.topology.functions
        apply_fault_request(self.fidelity.faults, settings, functions)
        try:
            yield
        finally:
            apply_fault_request(self.fidelity.faults, {"reset": True}, functions)


@pytest.fixture(scope="session")
def local_stack(
    tmp_path_factory: pytest.TempPathFactory, synthesized: dict[str, Synth]
) -> Iterator[LocalStack]:
    """The session's stack, enforcing the IAM its stacks were synthesized with."""
    state = tmp_path_factory.mktemp("local-stack")
    stack = LocalStack(
        load_config(overrides=TEST_SETTINGS),
        StackOptions(
            state_dir=state,
            backoff_factor=BACKOFF_FACTOR,
            poll_seconds=0.05,
            policy=synthesized[INTEGRATION_ID].outdir,
        ),
    )
    try:
        stack.up()
    except PreflightError as exc:
        pytest.fail(f"the integration tests need the emulators: {exc}", pytrace=False)
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def harness(local_stack: LocalStack) -> Harness:
    return Harness(local_stack)


@pytest.fixture(autouse=True)
def nothing_over_pubsub_limits(request: pytest.FixtureRequest, harness: Harness) -> Iterator[None]:
    """Fail a test during which anything was published that Pub/Sub would have refused
    (the emulator accepts it; the router refuses it, infra/local/fidelity/refusals.py)."""
    before = harness.fidelity.refusals.count()
    yield
    if request.node.get_closest_marker("refused_publishes") is None:
        refused = harness.fidelity.refusals.records()
        assert harness.fidelity.refusals.count() == before, f"over Pub/Sub's limits: {refused}"


@pytest.fixture(autouse=True)
def nothing_the_deployed_iam_refuses(harness: Harness) -> Iterator[None]:
    """Fail a test during which any identity used a permission no grant of the synthesized
    stacks gives it: on GCP that call is refused (infra/local/fidelity/iam.py)."""
    iam = harness.stack.iam
    assert iam is not None, "the integration stack must enforce its IAM"
    before = iam.denials()
    yield
    if iam.denials() != before:
        report = iam.report()["identities"]
        denied = {who: seen["denied"] for who, seen in report.items() if seen["denied"]}
        pytest.fail(f"calls the deployed IAM refuses (grant them, or stop making them): {denied}")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A fresh object prefix per test, so tests never see each other's objects."""
    return f"t{next(_counter):03d}-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}/"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The teardown test stops the shared stack, so it runs last whatever the selection; a
    test that restarts one of its emulators (which forgets what it held) runs just before."""

    def late(item: pytest.Item) -> int:
        if item.get_closest_marker("stack_teardown") is not None:
            return 2
        return int(item.get_closest_marker("restarts_emulators") is not None)

    items.sort(key=late)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack_teardown: stops the shared stack (runs last)")
    config.addinivalue_line(
        "markers", "restarts_emulators: kills an emulator of the shared stack (runs late)"
    )
    config.addinivalue_line(
        "markers", "refused_publishes: the test publishes over Pub/Sub's limits on purpose"
    )
    # The router polls with return_immediately on purpose (infra/local/router.py, `_pull`);
    # pytest re-enables DeprecationWarnings per test, so silence this one here.
    config.addinivalue_line(
        "filterwarnings", "ignore:The return_immediately flag is deprecated:DeprecationWarning"
    )
