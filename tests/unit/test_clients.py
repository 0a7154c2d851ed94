"""Lazily created clients: one per process, even when concurrent requests start together."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from image_pipeline.clients import shared


def test_concurrent_first_uses_create_one_client():
    made: list[object] = []

    @shared
    def client(project: str) -> object:
        time.sleep(0.05)  # a client takes a while to build: the window for a second one
        made.append(object())
        return made[-1]

    start = threading.Barrier(16)

    def use(_: int) -> object:
        start.wait()
        return client("p")

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(use, range(16)))
    assert len(made) == 1 and all(c is made[0] for c in got)
    assert client("other") is not made[0]  # per arguments, like functools.cache
