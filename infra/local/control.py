"""The router's control endpoint: live fault toggles and delivery counters over HTTP.

`scripts/local faults`, `scripts/local status` and tools outside the stack's process use
it; the URL is `router.url` in `.local/stack.json`. 127.0.0.1 only, no auth: a local tool,
so `infra.common.http_guard` refuses other Host names, cross-site writes and unbounded bodies.

    GET  /health                      "ok"
    GET  /stats                       calls/ok/failed/injected/throttled (429s) per function,
                                      filtered, refused, capacity (slots and wait per function)
    GET  /deliveries?function=F&prefix=P   every delivery (filter by function, object prefix);
                                      `throttled` marks a 429 for lack of a free instance
    GET  /abandoned?prefix=P          messages a route gave up on or refused, with the reason
    GET  /faults                      current fault settings
    PUT  /faults                      JSON: any of duplicate_rate, reorder_window,
                                      transient_rate, failing (list), fail (list), heal (list
                                      or "all"), reset (true), seed (integer)
    PUT  /settings                    JSON: every deployment setting as text (what
                                      `scripts/local redeploy` sends); the functions restart
                                      with them, as `cdktf deploy` rolls out new settings
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import fields, replace
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from image_pipeline.settings import to_text
from infra.common.http_guard import GuardedHandler, Refused, serve_in_thread
from infra.local.faults import FaultError, FaultSettings, names_list
from infra.local.router import Router
from infra.model.config import DeploymentConfig

MAX_REQUEST_BYTES = 64 * 1024  # a fault request is a few hundred bytes


def planned_settings(
    current: FaultSettings, request: Any, functions: Collection[str]
) -> FaultSettings:
    """The settings a PUT /faults body asks for, given the current ones (pure).

    Raises FaultError naming the first bad value, so a request is applied whole or not at all.
    """
    if not isinstance(request, dict):
        raise FaultError(f"the body must be a JSON object, not {type(request).__name__}")
    changes = dict(request)
    reset = changes.pop("reset", False)
    if not isinstance(reset, bool):
        raise FaultError(f"reset: {reset!r} must be true or false")
    fail = _known(changes.pop("fail", []), "fail", functions)
    heal = changes.pop("heal", [])
    healed = None if heal == "all" else _known(heal, "heal", functions)
    if "failing" in changes:
        _known(changes["failing"], "failing", functions)
    base = FaultSettings(seed=current.seed) if reset else current
    settings = FaultSettings.from_json({**base.to_json(), **changes})
    failing = settings.failing | fail
    return replace(settings, failing=frozenset() if healed is None else failing - healed)


def _known(value: Any, setting: str, functions: Collection[str]) -> frozenset[str]:
    names = frozenset(names_list(value, setting))
    unknown = names - set(functions)
    if unknown:
        raise FaultError(
            f"{setting}: unknown function(s) {sorted(unknown)}; known: {sorted(functions)}"
        )
    return names


def apply_fault_request(router: Router, request: Any) -> FaultSettings:
    """Applies a PUT /faults body; validates everything before changing anything."""
    functions = router.topology.functions
    return router.faults.change(
        lambda current: planned_settings(current, request, functions),
        reseed=isinstance(request, dict) and "seed" in request,
    )


# Applies new deployment settings to the running stack; returns what to answer.
Redeploy = Callable[[Mapping[str, Any]], dict[str, Any]]


def settings_body(config: DeploymentConfig) -> dict[str, str]:
    """A PUT /settings body: every deployment setting as the text its parser reads back."""
    return {f.name: to_text(getattr(config, f.name)) for f in fields(config)}


class RedeployError(ValueError):
    """Settings the running stack cannot take; the message says why."""


class _Handler(GuardedHandler):
    router: Router  # set on the subclass made per server
    redeploy: Redeploy | None

    def on_get(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/health":
            self.send_json(200, "ok")
        elif url.path == "/stats":
            self.send_json(200, self.router.stats())
        elif url.path == "/deliveries":
            self.send_json(
                200,
                self.router.deliveries_json(
                    function=query.get("function"), object_prefix=query.get("prefix")
                ),
            )
        elif url.path == "/abandoned":
            self.send_json(200, self.router.log.abandoned_json(query.get("prefix")))
        elif url.path == "/faults":
            self.send_json(200, self.router.faults.settings.to_json())
        else:
            self.send_json(404, {"error": f"no such endpoint {url.path}"})

    def on_put(self) -> None:
        path = urlparse(self.path).path
        if path == "/settings" and self.redeploy is not None:
            settings = self.read_json(MAX_REQUEST_BYTES)
            if not isinstance(settings, dict):
                raise Refused(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            try:
                self.send_json(200, self.redeploy(settings))
            except RedeployError as exc:
                raise Refused(HTTPStatus.BAD_REQUEST, str(exc)) from None
            return
        if path != "/faults":
            raise Refused(HTTPStatus.NOT_FOUND, "PUT only on /faults and /settings")
        request = self.read_json(MAX_REQUEST_BYTES)
        try:
            settings = apply_fault_request(self.router, request)
        except FaultError as exc:
            raise Refused(HTTPStatus.BAD_REQUEST, str(exc)) from None
        self.send_json(200, settings.to_json())


class ControlServer:
    """Serves the control endpoint on a daemon thread."""

    def __init__(self, router: Router, port: int, redeploy: Redeploy | None = None) -> None:
        attributes = {"router": router, "redeploy": staticmethod(redeploy) if redeploy else None}
        self._handler = type("BoundHandler", (_Handler,), attributes)
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> None:
        self._server, self._thread = serve_in_thread(
            self._handler, "127.0.0.1", self._port, "router-control"
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
