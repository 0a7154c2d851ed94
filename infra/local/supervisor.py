"""Restarts a child of the local stack that died, on its port, as the platform starts a new
instance (docs/local-stack.md). The dead child's whole process group goes first, so no Java
outlives its gcloud wrapper and holds the port; a failed restart is tried again, backing off
up to a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from infra.local.processes import stop_groups
from infra.local.servers import Server

log = logging.getLogger("infra.local.supervisor")

Restart = Callable[[threading.Event], object]
Check = Callable[[], list[tuple[str, Server, Restart]]]


class Supervisor:
    """Every 0.5 s, `children()` lists (key, process, restart); a dead one is restarted."""

    def __init__(
        self, children: Check, restarted: Callable[[], None], lock: threading.Lock
    ) -> None:
        self.restarts: dict[str, int] = {}
        self.lock = lock  # held while checking and restarting: a redeploy stops processes
        self.stopping = threading.Event()
        self._children = children
        self._restarted = restarted
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # also cancels a restart in progress
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            with self.lock:
                for key, process, restart in self._children():
                    due = self._retry_at.get(key, 0.0) <= time.monotonic()
                    if due and not self.stopping.is_set() and not process.alive():
                        self._restart(key, process, restart)

    def _restart(self, key: str, dead: Server, restart: Restart) -> None:
        code = dead.popen.returncode
        log.warning("%s (pid %s) exited with %s; restarting", dead.title, dead.pid, code)
        stop_groups([dead.pid], 10.0)  # what the dead leader left behind holds the port
        try:
            restart(self.stopping)
        except Exception as exc:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            self._retry_at[key] = time.monotonic() + min(60.0, 2.0**failures)
            log.error("restarting %s failed (%d in a row): %s", key, failures, exc)
            return
        self._failures.pop(key, None)
        self.restarts[key] = self.restarts.get(key, 0) + 1
        log.warning("%s restarted", key)
        self._restarted()
