"""A gRPC front per identity before the Pub/Sub and Firestore emulators.

Each function gets its own front as `PUBSUB_EMULATOR_HOST` and `FIRESTORE_EMULATOR_HOST`.
It parses each request (answers pass through as bytes) and forwards it with the caller's
deadline and metadata, or answers PERMISSION_DENIED naming the permission and the resource.
A method missing from `_METHODS` is refused (UNIMPLEMENTED) and recorded. Permissions from
https://cloud.google.com/pubsub/docs/access-control and .../firestore/docs/security/iam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.cloud.firestore_v1.types import firestore as fs
from google.pubsub_v1.types import PublishRequest

Needs = list[tuple[str, str]]  # (permission, resource)
Check = Callable[[str, str, str, str], bool]  # (member, permission, resource, call) -> go on?
WORKERS = 32  # calls served at once per identity: more than a function's concurrency
UPSTREAM_SECONDS = 300.0  # the deadline of a forwarded call whose caller gave none
_LIMITS = [(f"grpc.max_{way}_message_length", 16 << 20) for way in ("receive", "send")]


def _commit(request: Any) -> Needs:
    """Per write: delete; create (exists=false); update (must exist); create and update (no
    precondition). An empty commit needs databases.get."""
    needs: list[str] = []
    for write in request.writes:
        condition = write.current_document.WhichOneof("condition_type")
        if write.WhichOneof("operation") == "delete":
            needs.append("datastore.entities.delete")
        elif condition == "exists" and not write.current_document.exists:
            needs.append("datastore.entities.create")
        elif condition is not None:
            needs.append("datastore.entities.update")
        else:
            needs += ["datastore.entities.create", "datastore.entities.update"]
    return [(p, request.database) for p in dict.fromkeys(needs or ["datastore.databases.get"])]


def _database(permission: str) -> Callable[[Any], Needs]:
    """Firestore checks its permissions on the database (projects/P/databases/D)."""
    return lambda request: [(permission, request.database)]


_FS = "/google.firestore.v1.Firestore/"
# The methods the functions call: their request message, and what they need.
_METHODS: Mapping[str, tuple[Any, Callable[[Any], Needs]]] = {
    "/google.pubsub.v1.Publisher/Publish": (
        PublishRequest,
        lambda request: [("pubsub.topics.publish", request.topic)],
    ),
    _FS + "BatchGetDocuments": (fs.BatchGetDocumentsRequest, _database("datastore.entities.get")),
    _FS + "BeginTransaction": (fs.BeginTransactionRequest, _database("datastore.databases.get")),
    _FS + "Rollback": (fs.RollbackRequest, _database("datastore.databases.get")),
    _FS + "Commit": (fs.CommitRequest, _commit),
}


class GrpcFront(grpc.GenericRpcHandler):
    """Serves on 127.0.0.1 (a free port) as `member`, before both emulators (`upstreams`:
    `pubsub` and `firestore` -> host:port)."""

    def __init__(self, member: str, check: Check, upstreams: Mapping[str, str]) -> None:
        self.member = member
        self.check = check
        self._channels = {
            f"/google.{name}.": grpc.insecure_channel(host, options=_LIMITS)
            for name, host in upstreams.items()
        }
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="iam-grpc")
        self.server = grpc.server(pool, handlers=[self], options=_LIMITS)
        self.host = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    def start(self) -> GrpcFront:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(0).wait(5)
        for channel in self._channels.values():
            channel.close()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = str(details.method)
        channel = next((c for p, c in self._channels.items() if method.startswith(p)), None)
        if channel is None or method not in _METHODS:
            unknown = "(a method without known permissions: add it to iam_grpc._METHODS)"
            self.check(self.member, unknown, method, method)
            return None
        request_type, needs = _METHODS[method]
        # Every method is served and forwarded as a stream of answers: a unary answer is a
        # stream of one on the wire (gRPC's HTTP/2 framing does not tell them apart).
        forward = channel.unary_stream(method)  # no (de)serializers: bytes in, bytes out

        def handle(raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            for permission, resource in needs(request_type.pb().FromString(raw)):
                if not self.check(self.member, permission, resource, method):
                    context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"Permission '{permission}' denied on resource '{resource}' for "
                        f"{self.member or 'an unauthenticated caller'} (or it may not exist).",
                    )
            remaining = context.time_remaining()
            answers = forward(
                raw,
                timeout=min(remaining or UPSTREAM_SECONDS, UPSTREAM_SECONDS),
                metadata=[(k, v) for k, v in context.invocation_metadata() if k != "user-agent"],
            )
            try:
                yield from answers
            except grpc.RpcError as exc:  # the emulator's own answer, passed on as it is
                context.abort(exc.code(), exc.details() or "")
            finally:
                answers.cancel()

        return grpc.unary_stream_rpc_method_handler(handle)
