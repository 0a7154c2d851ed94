"""The router's control endpoint: live fault toggles and delivery counters over HTTP.

`scripts/local faults`, `scripts/local status` and tools outside the stack's process use
it; the URL is `router.url` in `.local/stack.json`. 127.0.0.1 only, no auth: a local tool.

    GET  /health                      "ok"
    GET  /stats                       calls/ok/failed/injected per function, filtered counts
    GET  /deliveries?function=F&prefix=P   every delivery (filter by function, object prefix)
    GET  /faults                      current fault settings
    PUT  /faults                      JSON: any of duplicate_rate, reorder_window,
                                      transient_rate, failing (list), fail (list), heal (list
                                      or "all"), reset (true)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from infra.local.faults import FaultError, FaultSettings
from infra.local.router import Router


def apply_fault_request(router: Router, request: dict[str, Any]) -> FaultSettings:
    """Applies a PUT /faults body; validates everything before changing anything."""
    faults = router.faults
    request = dict(request)
    unknown_functions = {
        name
        for key in ("fail", "failing")
        for name in request.get(key, [])
        if name not in router.topology.functions
    }
    if unknown_functions:
        raise FaultError(
            f"unknown function(s) {sorted(unknown_functions)}; "
            f"known: {sorted(router.topology.functions)}"
        )
    if request.pop("reset", False):
        faults.reset()
    fail = request.pop("fail", [])
    heal = request.pop("heal", [])
    if request:
        merged = {**faults.settings.to_json(), **request}
        FaultSettings.from_json(merged)  # raises on bad values
        faults.update(**request)
    if fail:
        faults.fail(fail)
    if heal:
        faults.heal(None if heal == "all" else heal)
    return faults.settings


class _Handler(BaseHTTPRequestHandler):
    router: Router  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr per request
        return

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, indent=None, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/health":
            self._send(200, "ok")
        elif url.path == "/stats":
            self._send(200, self.router.stats())
        elif url.path == "/deliveries":
            self._send(
                200,
                self.router.deliveries_json(
                    function=query.get("function"), object_prefix=query.get("prefix")
                ),
            )
        elif url.path == "/faults":
            self._send(200, self.router.faults.settings.to_json())
        else:
            self._send(404, {"error": f"no such endpoint {url.path}"})

    def do_PUT(self) -> None:
        if urlparse(self.path).path != "/faults":
            self._send(404, {"error": "PUT only on /faults"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            settings = apply_fault_request(self.router, request)
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, settings.to_json())


class ControlServer:
    """Serves the control endpoint on a daemon thread."""

    def __init__(self, router: Router, port: int) -> None:
        handler = type("BoundHandler", (_Handler,), {"router": router})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="router-control", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
