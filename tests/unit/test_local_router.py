"""The router against fakes: filter -> ack without delivery, 2xx -> ack, 5xx -> nack later."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from infra.local.control import apply_fault_request
from infra.local.fidelity import Fidelity
from infra.local.fidelity.faults import FaultError, Faults
from infra.local.fidelity.throttle import Throttle
from infra.local.router import Router
from infra.model.config import load_config
from infra.model.topology import build_topology


class FakeSubscriber:
    def __init__(self) -> None:
        self.acked: list[str] = []
        self.nacked: list[tuple[str, int]] = []

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        self.acked += ack_ids

    def modify_ack_deadline(self, subscription: str, ack_ids: list[str], ack_deadline_seconds: int):
        self.nacked += [(a, ack_deadline_seconds) for a in ack_ids]


@pytest.fixture
def function_server():
    """A stand-in function: records bodies, answers with the status in `answer`."""
    seen: list[dict] = []
    answer = {"status": 204}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if answer.get("drop", 0) > 0:  # close with no answer, like a dropped keep-alive
                answer["drop"] -= 1
                self.close_connection = True
                return
            seen.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(answer["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", seen, answer
    server.shutdown()


def make_router(url: str, factor: float = 0.001, **settings) -> tuple[Router, FakeSubscriber]:
    """A router with the stack's hooks, against a fake subscriber and `url` for every function."""
    topology = build_topology(load_config(overrides={"project": "unit-proj", **settings}))
    subscriber = FakeSubscriber()
    urls = dict.fromkeys(topology.functions, url)
    hooks = Fidelity.for_topology(topology, backoff_factor=factor).delivery_hooks()
    router = Router(topology, subscriber, urls, hooks, factor)  # type: ignore[arg-type]
    return router, subscriber


def hook(router: Router, kind):
    """The router's hook of that kind (its faults, its throttle)."""
    return next(h for h in router.hooks if isinstance(h, kind))


def received(event_type: str, attempt: int = 1, ack_id: str = "ack-1"):
    message = SimpleNamespace(
        message_id="m1",
        data=b"{}",
        attributes={"eventType": event_type, "objectId": "x.jpg", "generation": "3"},
        publish_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return SimpleNamespace(message=message, delivery_attempt=attempt, ack_id=ack_id)


def route(router: Router, key: str):
    return next(r for r in router.routes if r.name == key)


def test_routes_cover_push_subscriptions_only(function_server):
    router, _ = make_router(function_server[0])
    names = {r.name for r in router.routes}
    assert names == {"trigger", "metadata_writer", "cleanup", "dead_letter_recorder"}


def test_non_matching_message_is_acked_and_never_delivered(function_server):
    url, seen, _ = function_server
    router, subscriber = make_router(url)
    router._handle(route(router, "metadata_writer"), received("image.bogus"))
    assert seen == [] and subscriber.acked == ["ack-1"]
    assert router.stats()["filtered"] == {"metadata_writer": 1}


def test_success_acks_and_posts_the_push_body(function_server):
    url, seen, _ = function_server
    router, subscriber = make_router(url)
    router._handle(route(router, "metadata_writer"), received("image.processed", attempt=2))
    assert subscriber.acked == ["ack-1"]
    body = seen[0]["body"]
    assert body["subscription"] == "projects/unit-proj/subscriptions/imgpipe-metadata-writer"
    assert body["deliveryAttempt"] == 2
    (delivery,) = router.log.deliveries("write_metadata")
    assert (delivery.status, delivery.object, delivery.generation) == (204, "x.jpg", "3")


def test_a_connection_closed_before_any_answer_is_retried_once_not_nacked(function_server):
    url, seen, answer = function_server
    answer["drop"] = 1
    router, subscriber = make_router(url)
    router._handle(route(router, "metadata_writer"), received("image.processed"))
    assert len(seen) == 1 and subscriber.acked == ["ack-1"] and subscriber.nacked == []


def handled_until_nacked(router: Router, subscriber: FakeSubscriber, key: str, item) -> None:
    """Handles one message and waits for its nack (at most 5 s), which comes after backoff."""
    router._handle(route(router, key), item)
    deadline = time.monotonic() + 5
    while not subscriber.nacked and time.monotonic() < deadline:
        time.sleep(0.01)


def test_failure_nacks_after_backoff(function_server):
    url, _, answer = function_server
    answer["status"] = 500
    router, subscriber = make_router(url)
    handled_until_nacked(router, subscriber, "metadata_writer", received("image.failed"))
    assert subscriber.acked == [] and subscriber.nacked == [("ack-1", 0)]


def test_injected_failure_does_not_call_the_function(function_server):
    url, seen, _ = function_server
    router, _ = make_router(url)
    apply_fault_request(hook(router, Faults), {"fail": ["write_metadata"]}, ["write_metadata"])
    router._handle(route(router, "metadata_writer"), received("image.processed"))
    assert seen == []
    (delivery,) = router.log.deliveries("write_metadata")
    assert delivery.by == "injected" and delivery.status == 500


def test_control_requests_validate_before_changing(function_server):
    router, _ = make_router(function_server[0])
    faults, functions = hook(router, Faults), router.topology.functions
    apply_fault_request(faults, {"fail": ["cleanup"], "duplicate_rate": 0.5}, functions)
    assert faults.settings.failing == {"cleanup"}
    with pytest.raises(FaultError, match="unknown function"):
        apply_fault_request(faults, {"fail": ["nope"]}, functions)
    with pytest.raises(FaultError):
        apply_fault_request(faults, {"transient_rate": 2}, functions)
    assert faults.settings.transient_rate == 0.0
    apply_fault_request(faults, {"heal": "all", "reset": True}, functions)
    assert faults.settings.failing == frozenset()


def finalize(name: str, published: datetime, ack_id: str = "ack-t"):
    """A raw fake-gcs finalize event, as the trigger route pulls it."""
    message = SimpleNamespace(
        message_id="t1",
        data=json.dumps({"bucket": "unit-proj-imgpipe-uploads", "name": name,
                         "generation": "5"}).encode(),
        attributes={"eventType": "OBJECT_FINALIZE", "bucketId": "unit-proj-imgpipe-uploads",
                    "objectId": name, "objectGeneration": "5"},
        publish_time=published,
    )  # fmt: skip
    return SimpleNamespace(message=message, delivery_attempt=0, ack_id=ack_id)


def trigger_router(url: str, window: float) -> tuple[Router, FakeSubscriber]:
    router, subscriber = make_router(url, factor=1.0)
    route(router, "trigger").window_seconds = window
    return router, subscriber


def test_the_trigger_posts_hostile_names_percent_encoded_with_the_name_in_the_body(
    function_server,
):
    url, seen, _ = function_server
    router, subscriber = trigger_router(url, window=3600)
    name = "写真 \x1b 100%.jpg"
    router._handle(route(router, "trigger"), finalize(name, datetime.now(UTC)))
    assert subscriber.acked == ["ack-t"]
    (request,) = seen
    assert request["body"]["name"] == name
    assert request["headers"]["ce-subject"] == "objects/%E5%86%99%E7%9C%9F%20%1B%20100%25.jpg"


def test_the_trigger_retries_within_its_window_then_gives_up_visibly(function_server, caplog):
    url, _, answer = function_server
    answer["status"] = 500
    router, subscriber = trigger_router(url, window=60)
    trigger = route(router, "trigger")
    fresh = datetime.now(UTC)
    router._handle(trigger, finalize("x.jpg", fresh))  # 1st failure: back in 10 s, inside
    assert subscriber.nacked == [("ack-t", 10)] and subscriber.acked == []
    old = datetime.fromtimestamp(fresh.timestamp() - 55, UTC)  # the next try would be at 75 s
    router._handle(trigger, finalize("x.jpg", old, ack_id="ack-t2"))
    assert subscriber.acked == ["ack-t2"]  # given up: acked, never redelivered
    (abandoned,) = router.log.abandoned()
    assert (abandoned.object, abandoned.generation, abandoned.attempts) == ("x.jpg", "5", 2)
    assert abandoned.reason == "retry_window_exceeded"
    assert router.stats()["abandoned"] == {"trigger": 1}
    assert "abandoned 'x.jpg'" in caplog.text
    assert [d.status for d in router.log.deliveries("make_thumbnail")] == [500, 500]


def test_any_exception_while_delivering_is_a_recorded_nack(function_server, monkeypatch):
    url, seen, _ = function_server
    router, subscriber = trigger_router(url, window=3600)

    def broken(*args, **kwargs):
        raise UnicodeEncodeError("latin-1", "写", 0, 1, "ordinal not in range(256)")

    monkeypatch.setattr(router.dispatcher, "_post", broken)
    router._handle(route(router, "trigger"), finalize("写.jpg", datetime.now(UTC)))
    assert seen == [] and subscriber.acked == [] and subscriber.nacked == [("ack-t", 10)]
    (delivery,) = router.log.deliveries("make_thumbnail")
    assert delivery.status == 599 and delivery.error.startswith("UnicodeEncodeError")
    assert router.stats()["functions"]["make_thumbnail"]["failed"] == 1


@pytest.mark.parametrize(
    "attributes",
    [
        {"eventType": "image.processed", "contentType": "x" * 1025},
        {"eventType": "image.processed", "k" * 257: "v"},
        {f"a{i}": "v" for i in range(101)},
    ],
    ids=["value", "key", "count"],
)
def test_messages_over_pubsub_limits_are_refused_not_delivered(function_server, attributes):
    url, seen, _ = function_server
    router, subscriber = make_router(url)
    item = received("image.processed", ack_id="ack-big")
    item.message.attributes = attributes
    router._handle(route(router, "metadata_writer"), item)
    router._handle(route(router, "metadata_writer"), item)  # pulled again
    assert seen == []  # never reached the function
    assert subscriber.acked == ["ack-big", "ack-big"] and subscriber.nacked == []
    stats = router.stats()["refused"]
    assert stats["count"] == 1  # one message, however many times it is pulled
    (record,) = stats["messages"]
    assert record["message_id"] == "m1" and record["route"] == "metadata_writer"
    assert record["problems"]


def test_messages_at_the_limits_are_delivered(function_server):
    url, seen, _ = function_server
    router, subscriber = make_router(url)
    item = received("image.processed")
    item.message.attributes = {**item.message.attributes, "contentType": "é" * 512}
    router._handle(route(router, "metadata_writer"), item)
    assert len(seen) == 1 and subscriber.acked == ["ack-1"]
    assert router.stats()["refused"] == {"count": 0, "messages": []}


def capped_router(url: str, **settings: object) -> tuple[Router, FakeSubscriber]:
    """One instance per function serving one request, as `scripts/local up --set
    thumbnail_max_instances=1 --set function_max_instances=1 --set function_concurrency=1`
    makes."""
    capped = {"thumbnail_max_instances": 1, "function_max_instances": 1, "function_concurrency": 1}
    return make_router(url, factor=0.005, **{**capped, **settings})


def test_capacity_is_the_topologys_instances_times_concurrency(function_server):
    router, _ = capped_router(
        function_server[0],
        thumbnail_max_instances=2,
        function_max_instances=2,
        function_concurrency=3,
    )
    capacity = router.stats()["capacity"]
    assert (capacity["make_thumbnail"]["slots"], capacity["write_metadata"]["slots"]) == (2, 6)
    # Cloud Run's max(10 s, 3.5 x start-up), on the stack's scale (0.005): 50 ms here.
    assert capacity["cleanup"]["wait_s"] == 0.05


def test_a_push_delivery_with_no_slot_free_is_a_429_nack_that_never_reaches_the_function(
    function_server,
):
    url, seen, _ = function_server
    router, subscriber = capped_router(url)
    with hook(router, Throttle).slot("cleanup") as admitted:  # the one instance is busy
        assert admitted
        # Nacked after the subscription's backoff (10 s x 0.005): the emulator counts the
        # attempt, so throttling goes towards the dead-letter policy as on GCP.
        handled_until_nacked(router, subscriber, "cleanup", received("OBJECT_DELETE"))
    assert seen == [] and subscriber.acked == [] and subscriber.nacked == [("ack-1", 0)]
    (delivery,) = router.log.deliveries("cleanup")
    assert (delivery.status, delivery.by) == (429, "throttled")
    assert router.stats()["functions"]["cleanup"] == {
        "calls": 0,
        "ok": 0,
        "failed": 0,
        "injected": 0,
        "throttled": 1,
    }
    router._handle(route(router, "cleanup"), received("OBJECT_DELETE", ack_id="ack-2"))
    assert subscriber.acked == ["ack-2"] and len(seen) == 1  # a slot is free now


def test_a_request_waits_for_a_slot_within_the_bound(function_server):
    url, seen, _ = function_server
    router, subscriber = capped_router(url)
    throttle = hook(router, Throttle)
    throttle.waits["cleanup"] = 5.0
    held = throttle.slot("cleanup")
    assert held.__enter__()
    threading.Timer(0.2, held.__exit__, (None, None, None)).start()
    router._handle(route(router, "cleanup"), received("OBJECT_DELETE"))
    assert subscriber.acked == ["ack-1"] and len(seen) == 1  # waited, then served


def test_a_redeploy_resizes_the_capacity(function_server):
    router, _ = capped_router(function_server[0])
    throttle = hook(router, Throttle)
    held = throttle.slot("make_thumbnail")
    assert held.__enter__()
    bigger = load_config(overrides={"project": "unit-proj", "thumbnail_max_instances": 3})
    throttle.resize(build_topology(bigger))
    assert router.stats()["capacity"]["make_thumbnail"]["slots"] == 3
    held.__exit__(None, None, None)  # released on the semaphore it came from
    with throttle.slot("make_thumbnail") as one, throttle.slot("make_thumbnail") as two:
        assert one and two
