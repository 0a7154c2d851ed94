"""Two make_thumbnail runs of one generation under different output rules at once (a
rollout: one instance on the old rules, one on the new), in every order of their writes,
listings and deletes, over the in-memory GCS/Pub/Sub/Firestore: the object always ends
with one complete set, and the doc, whatever order the results arrive in, lists exactly
that set under its fingerprint."""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from imagekit import photo, push_body, push_event, resource, storage_event

from image_pipeline import pipeline as stages
from image_pipeline.errors import GenerationMismatch
from image_pipeline.formats import Box
from image_pipeline.passthrough import FINGERPRINT_KEY
from image_pipeline.records import image_doc_id

NAME = "race.jpg"
# One name in common (32x32.webp), so the runs also overwrite each other's outputs.
OLD = {"thumbnail_sizes": (Box(32, 32), Box(16, 16)), "thumbnail_formats": ("webp",)}
NEW = {"thumbnail_sizes": (Box(32, 32), Box(24, 24, "cover")), "thumbnail_formats": ("webp",)}
POINTS = ("upload", "list", "delete")  # where a run may be overtaken by the other
REDELIVERIES = 4


class Turns:
    """Lets one run at a time past each write/list/delete point, in an order chosen by
    ``pick`` (given the step, the index among the waiting runs, by name); records the choices."""

    def __init__(self, pick: Callable[[int], int]) -> None:
        self.pick = pick
        self.cond = threading.Condition()
        self.waiting: list[str] = []
        self.running: set[str] = set()
        self.granted: str | None = None
        self.choices: list[tuple[int, int]] = []  # (chosen, options) per step

    def point(self, who: str) -> None:
        with self.cond:
            self.waiting.append(who)
            self.running.discard(who)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.granted == who)
            self.granted = None
            self.running.add(who)

    def finished(self, who: str) -> None:
        with self.cond:
            self.running.discard(who)
            self.cond.notify_all()

    def drive(self, threads: list[threading.Thread]) -> None:
        while True:
            with self.cond:
                settled = lambda: not self.running and self.granted is None  # noqa: E731
                assert self.cond.wait_for(settled, timeout=30), "a run hung"
                if not self.waiting:
                    break
                options = sorted(self.waiting)
                chosen = self.pick(len(self.choices))
                self.choices.append((chosen, len(options)))
                who = options[chosen]
                self.waiting.remove(who)
                self.granted = who
                self.running.add(who)
                self.cond.notify_all()
        for t in threads:
            t.join(timeout=30)


class PausingStorage:
    """The shared storage, pausing the calling run before each of ``POINTS``."""

    def __init__(self, inner: Any, turns: Turns, who: str) -> None:
        self.inner, self.turns, self.who = inner, turns, who

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.inner, method)
        if method not in POINTS:
            return call

        def paused(*args: Any, **kwargs: Any) -> Any:
            self.turns.point(self.who)
            return call(*args, **kwargs)

        return paused


def race(
    base: stages.Pipeline, pick: Callable[[int], int], old_set_first: bool
) -> tuple[stages.Pipeline, list[tuple[int, int]]]:
    """One object, optionally processed under the old rules beforehand, then a run under
    the old rules and one under the new at once. The shared state and the choices made."""
    shared = dataclasses.replace(
        base,
        storage=type(base.storage)(),
        publisher=type(base.publisher)(),
        store=type(base.store)(),
    )
    live = shared.storage.put("uploads", NAME, photo(64, 48))
    event = storage_event(resource("uploads", NAME, live.generation, len(live.data)))
    if old_set_first:
        stages.make_thumbnail(under(shared, OLD), event, {})
    turns = Turns(pick)

    def run(who: str, rules: dict[str, Any]) -> None:
        mine = dataclasses.replace(
            under(shared, rules), storage=PausingStorage(shared.storage, turns, who)
        )
        try:
            for _ in range(REDELIVERIES):
                try:
                    stages.make_thumbnail(mine, event, {})
                    break
                except GenerationMismatch:
                    continue  # a replace lost a race: raised, so the platform redelivers
            else:
                raise AssertionError(f"{who} still failing after {REDELIVERIES} deliveries")
        finally:
            turns.finished(who)

    threads = [
        threading.Thread(target=run, args=(who, rules), daemon=True)
        for who, rules in (("a-old", OLD), ("b-new", NEW))
    ]
    turns.running = {"a-old", "b-new"}
    for t in threads:
        t.start()
    turns.drive(threads)
    return shared, turns.choices


def under(p: stages.Pipeline, rules: dict[str, Any]) -> stages.Pipeline:
    return dataclasses.replace(p, settings=dataclasses.replace(p.settings, **rules))


def _replayed(prefix: tuple[int, ...], step: int) -> int:
    """The choices of ``prefix``, then always the first waiting run."""
    return prefix[step] if step < len(prefix) else 0


def every_schedule(
    base: stages.Pipeline, old_set_first: bool
) -> Iterator[tuple[stages.Pipeline, list[int]]]:
    """Depth first over the choices: every interleaving of the two runs' points once."""
    pending: list[list[int]] = [[]]
    while pending:
        prefix = pending.pop()
        pick = functools.partial(_replayed, tuple(prefix))
        shared, choices = race(base, pick, old_set_first)
        taken = [chosen for chosen, _ in choices]
        assert taken[: len(prefix)] == prefix, "the runs did not replay the same way"
        for i in range(len(prefix), len(choices)):
            for other in range(1, choices[i][1]):
                pending.append([*taken[:i], other])
        yield shared, taken


def expected_names(p: stages.Pipeline, rules: dict[str, Any]) -> set[str]:
    s = under(p, rules).settings
    outputs = s.outputs_for(NAME)
    return {
        stages.thumbnail_name(s.thumbnail_prefix, "uploads", NAME, box, fmt)
        for box in outputs.sizes
        for fmt in outputs.formats
    }


def doc_after(p: stages.Pipeline, order: tuple[int, ...]) -> dict[str, Any]:
    """The doc after the results published so far are delivered in ``order``."""
    store = type(p.store)()
    q = dataclasses.replace(p, store=store)
    for i in order:
        _, data, attrs = p.publisher.messages[i]
        stages.write_metadata(q, push_event(push_body(data, attrs, message_id=f"r-{i}")), {})
    return store.collections["images"][image_doc_id("uploads", NAME)]


@pytest.mark.parametrize("old_set_first", [False, True], ids=["fresh", "old-set-in-place"])
def test_two_runs_under_different_rules_end_with_one_complete_set_in_every_order(
    pipeline, old_set_first
):
    sets = {
        under(pipeline, rules).settings.output_fingerprint: expected_names(pipeline, rules)
        for rules in (OLD, NEW)
    }
    winners: collections.Counter[str] = collections.Counter()
    schedules = 0
    for shared, taken in every_schedule(pipeline, old_set_first):
        schedules += 1
        live = {
            name: shared.storage.live["thumbs", name].metadata[FINGERPRINT_KEY]
            for name in shared.storage.names("thumbs")
        }
        fingerprints = set(live.values())
        assert len(fingerprints) == 1, (taken, live)
        (fingerprint,) = fingerprints
        assert set(live) == sets[fingerprint], (taken, live)
        winners[fingerprint] += 1
        published = range(len(shared.publisher.messages))
        assert published, taken
        for order in itertools.permutations(published):
            doc = doc_after(shared, order)
            assert doc["outputFingerprint"] == fingerprint, (taken, order)
            assert {t["name"] for t in doc["thumbnails"]} == set(live), (taken, order)
    # Both rules win in some order: the rank is the order of writes, not which rules are newer.
    assert set(winners) == set(sets), winners
    assert schedules > 20, schedules
