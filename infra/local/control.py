"""The router's control endpoint: live fault toggles and delivery counters over HTTP, for
`scripts/local` and tools outside the stack's process (its endpoints: docs/local-stack.md,
"The router's control endpoint"). 127.0.0.1 only, no auth: `infra.local.http_guard` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from image_pipeline.settings import to_text
from infra.local.fidelity.faults import FaultError, Faults, planned
from infra.local.fidelity.iam import Identities
from infra.local.http_guard import GuardedHandler, Refused, serve_in_thread
from infra.local.router import Router
from infra.model.config import DeploymentConfig

MAX_REQUEST_BYTES = 64 * 1024  # a fault request is a few hundred bytes

# Applies new deployment settings to the running stack; returns what to answer.
Redeploy = Callable[[Mapping[str, Any]], dict[str, Any]]


def apply_fault_request(faults: Faults, request: Any, functions: Any) -> dict[str, Any]:
    """Applies a PUT /faults body whole, or raises FaultError and changes nothing."""
    reseed = isinstance(request, dict) and "seed" in request
    return faults.change(lambda now: planned(now, request, functions), reseed).to_json()


def settings_body(config: DeploymentConfig) -> dict[str, str]:
    """A PUT /settings body: every deployment setting as the text its parser reads back."""
    return {f.name: to_text(getattr(config, f.name)) for f in fields(config)}


class RedeployError(ValueError):
    """Settings the running stack cannot take; the message says why."""


class _Handler(GuardedHandler):
    router: Router  # these three are set on the subclass made per server
    faults: Faults
    redeploy: Redeploy | None

    def on_get(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        log, prefix, function = self.router.log, query.get("prefix"), query.get("function")
        answers: dict[str, Callable[[], Any]] = {
            "/health": lambda: "ok",
            "/stats": self.router.stats,
            "/deliveries": lambda: [asdict(d) for d in log.deliveries(function, prefix)],
            "/abandoned": lambda: [asdict(a) for a in log.abandoned(prefix)],
            "/faults": lambda: self.faults.settings.to_json(),
        }
        for hook in self.router.hooks:  # GET /iam while the stack checks IAM
            if isinstance(hook, Identities):
                answers["/iam"] = hook.report
        if url.path not in answers:
            raise Refused(HTTPStatus.NOT_FOUND, f"no such endpoint {url.path}")
        self.send_json(200, answers[url.path]())

    def on_put(self) -> None:
        path = urlparse(self.path).path
        if path not in ("/faults", "/settings") or (path == "/settings" and not self.redeploy):
            raise Refused(HTTPStatus.NOT_FOUND, "PUT only on /faults and /settings")
        body = self.read_json(MAX_REQUEST_BYTES)
        try:
            if path == "/faults":
                functions = self.router.topology.functions
                self.send_json(200, apply_fault_request(self.faults, body, functions))
            elif not isinstance(body, dict):
                raise RedeployError("the body must be a JSON object")
            else:
                assert self.redeploy is not None
                self.send_json(200, self.redeploy(body))
        except (FaultError, RedeployError) as exc:
            raise Refused(HTTPStatus.BAD_REQUEST, str(exc)) from None


def serve_control(
    router: Router, faults: Faults, redeploy: Redeploy | None = None
) -> ThreadingHTTPServer:
    """Serves the control endpoint on a daemon thread, on a free port of 127.0.0.1."""
    attributes = {
        "router": router,
        "faults": faults,
        "redeploy": staticmethod(redeploy) if redeploy else None,
    }
    handler = type("BoundHandler", (_Handler,), attributes)
    return serve_in_thread(handler, "127.0.0.1", 0, "control")[0]
