"""The gRPC front: the real Pub/Sub and Firestore clients through it, to a stand-in upstream
that records what reaches it (the emulators themselves are the integration suite's)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.types import firestore as fs
from google.cloud.pubsub_v1 import PublisherClient
from google.pubsub_v1.types import PublishResponse

from infra.common.emulator_clients import patched_env
from infra.local.fidelity.iam_grpc import GrpcFront
from infra.model.iam_policy import Binding, Policy

ME = "me@proj-one.iam.gserviceaccount.com"
TOPIC = "projects/proj-one/topics/events"
DATABASE = "projects/proj-one/databases/(default)"


class Upstream(grpc.GenericRpcHandler):
    """Answers Publish, Commit and BatchGetDocuments; records each call and its deadline."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None, dict[str, str]]] = []
        self.fail_with: grpc.StatusCode | None = None
        self._lock = threading.Lock()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = str(details.method)

        def record(context: grpc.ServicerContext) -> None:
            with self._lock:
                self.calls.append(
                    (method, context.time_remaining(), dict(context.invocation_metadata()))
                )
            if self.fail_with is not None:
                context.abort(self.fail_with, "upstream says no")

        if method.endswith("/BatchGetDocuments"):

            def stream(raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
                record(context)
                request = fs.BatchGetDocumentsRequest.pb().FromString(raw)
                for name in request.documents:
                    yield fs.BatchGetDocumentsResponse.pb()(missing=name).SerializeToString()

            return grpc.unary_stream_rpc_method_handler(stream)

        def unary(raw: bytes, context: grpc.ServicerContext) -> bytes:
            record(context)
            if method.endswith("/Publish"):
                return PublishResponse.pb()(message_ids=["42"]).SerializeToString()
            commit = fs.CommitRequest.pb().FromString(raw)
            answer = fs.CommitResponse.pb()()
            for _ in commit.writes:
                answer.write_results.add()
            return answer.SerializeToString()

        return grpc.unary_unary_rpc_method_handler(unary)


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    handler = Upstream()
    server = grpc.server(ThreadPoolExecutor(4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield handler, f"127.0.0.1:{port}"
    server.stop(0)


class Checks:
    """The front's `check`: a policy's answer, each question recorded; `soft` lets all pass."""

    def __init__(self, *bindings: Binding, soft: bool = False) -> None:
        self.policy = Policy("test", bindings, {}, {}, "")
        self.soft = soft
        self.asked: list[tuple[str, str, str, bool]] = []

    def __call__(self, member: str, permission: str, resource: str, call: str) -> bool:
        granted = self.policy.grant(member, permission, resource) is not None
        self.asked.append((permission, resource, call, granted))
        return granted or self.soft


def _front(upstream: str, *bindings: Binding, soft: bool = False) -> GrpcFront:
    hosts = {"pubsub": upstream, "firestore": upstream}
    return GrpcFront(ME, Checks(*bindings, soft=soft), hosts)


@pytest.fixture
def serve() -> Iterator[Any]:
    fronts: list[GrpcFront] = []

    def start(front: GrpcFront) -> GrpcFront:
        fronts.append(front.start())
        return front

    yield start
    for front in fronts:
        front.stop()


def _publisher(front: GrpcFront) -> PublisherClient:
    with patched_env({"PUBSUB_EMULATOR_HOST": front.host}):
        return PublisherClient()


def _firestore(front: GrpcFront) -> firestore.Client:
    with patched_env({"FIRESTORE_EMULATOR_HOST": front.host}):
        return firestore.Client(project="proj-one", credentials=AnonymousCredentials())


def test_a_granted_publish_reaches_the_emulator_with_the_callers_deadline(upstream, serve):
    handler, host = upstream
    front = serve(_front(host, Binding("b", ME, "roles/pubsub.publisher", TOPIC)))
    assert _publisher(front).publish(TOPIC, b"x").result(timeout=30) == "42"
    [(method, remaining, _)] = handler.calls
    assert method == "/google.pubsub.v1.Publisher/Publish"
    assert remaining is not None and remaining <= 60  # the client's own deadline, passed on
    assert front.check.asked == [("pubsub.topics.publish", TOPIC, method, True)]


def test_a_publish_without_a_grant_is_denied_naming_permission_and_topic(upstream, serve):
    handler, host = upstream
    other = "projects/proj-one/topics/other"
    front = serve(_front(host, Binding("b", ME, "roles/pubsub.publisher", other)))
    with pytest.raises(exceptions.PermissionDenied) as denied:
        _publisher(front).publish(TOPIC, b"x").result(timeout=30)
    assert f"Permission 'pubsub.topics.publish' denied on resource '{TOPIC}'" in str(denied.value)
    assert handler.calls == []
    assert front.check.asked == [
        ("pubsub.topics.publish", TOPIC, "/google.pubsub.v1.Publisher/Publish", False)
    ]


def test_soft_mode_forwards_a_denied_call_and_records_it(upstream, serve):
    handler, host = upstream
    front = serve(_front(host, soft=True))
    assert _publisher(front).publish(TOPIC, b"x").result(timeout=30) == "42"
    assert len(handler.calls) == 1 and front.check.asked[0][3] is False


def test_firestore_writes_need_what_their_preconditions_say(upstream, serve):
    handler, host = upstream
    creator = Binding("c", ME, "roles/datastore.user", DATABASE)
    front = serve(_front(host, creator))
    doc = _firestore(front).collection("images").document("a")
    doc.create({"k": 1})  # exists=false: create
    doc.set({"k": 2})  # no precondition: create and update
    assert not doc.get().exists  # BatchGetDocuments, a stream: get
    assert [(a[0], a[3]) for a in front.check.asked] == [
        ("datastore.entities.create", True),
        ("datastore.entities.create", True),
        ("datastore.entities.update", True),
        ("datastore.entities.get", True),
    ]
    # The caller's metadata goes on (the emulator takes "Bearer owner" as an admin's call).
    assert handler.calls[0][2].get("authorization") == "Bearer owner"
    assert [c[0].rsplit("/", 1)[1] for c in handler.calls] == [
        "Commit",
        "Commit",
        "BatchGetDocuments",
    ]


def test_a_grant_on_another_database_does_not_reach_this_one(upstream, serve):
    _, host = upstream
    elsewhere = Binding("c", ME, "roles/datastore.user", "projects/proj-one/databases/other")
    front = serve(_front(host, elsewhere))
    with pytest.raises(exceptions.PermissionDenied, match=r"datastore\.entities\.get"):
        _firestore(front).collection("images").document("a").get()


def test_a_method_without_known_permissions_is_refused_and_recorded(upstream, serve):
    handler, host = upstream
    front = serve(_front(host, Binding("c", ME, "roles/datastore.user", DATABASE)))
    with pytest.raises(exceptions.MethodNotImplemented):
        list(_firestore(front).collection("images").list_documents())
    assert handler.calls == []
    [(permission, resource, _, granted)] = front.check.asked
    assert resource == "/google.firestore.v1.Firestore/ListDocuments"
    assert "_METHODS" in permission and not granted


def test_upstream_errors_reach_the_caller_unchanged(upstream, serve):
    handler, host = upstream
    handler.fail_with = grpc.StatusCode.NOT_FOUND
    front = serve(_front(host, Binding("b", ME, "roles/pubsub.publisher", TOPIC)))
    with pytest.raises(exceptions.NotFound, match="upstream says no"):
        _publisher(front).publish(TOPIC, b"x").result(timeout=30)
