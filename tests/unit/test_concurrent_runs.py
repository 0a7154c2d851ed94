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
from imagekit import notification, photo, push_body, push_event, resource, storage_event

from image_pipeline import imaging, thumbnails
from image_pipeline import pipeline as stages
from image_pipeline.errors import GenerationMismatch
from image_pipeline.formats import Box
from image_pipeline.gcs import StoredObject
from image_pipeline.passthrough import FINGERPRINT_KEY
from image_pipeline.records import image_doc_id

NAME = "race.jpg"
# One name in common (32x32.webp), so the runs also overwrite each other's outputs.
OLD = {"thumbnail_sizes": (Box(32, 32), Box(16, 16)), "thumbnail_formats": ("webp",)}
NEW = {"thumbnail_sizes": (Box(32, 32), Box(24, 24, "cover")), "thumbnail_formats": ("webp",)}
POINTS = ("upload", "list", "delete")  # where a run may be overtaken by the other
REDELIVERIES = 4
ONE = {"thumbnail_sizes": (Box(32, 32),), "thumbnail_formats": ("webp",)}  # fewer orders
LANDSCAPE, PORTRAIT = photo(64, 48), photo(48, 64)  # made once: every schedule uploads them


@pytest.fixture(autouse=True)
def core_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every schedule makes the same thumbnails of the same photo under the same rules: the
    imaging core, pure (test_imaging covers it), runs once for each, and the schedules spend
    their time on what this file is about, the writes, listings and deletes."""
    monkeypatch.setattr(imaging, "make_thumbnails", functools.cache(imaging.make_thumbnails))


class Turns:
    """Lets one run at a time past each write/list/delete point, in an order chosen by
    ``pick`` (given the step, the index among the waiting runs, by name); records the choices.
    Only the chosen run is woken (its own event), so no run wakes just to go back to sleep."""

    def __init__(self, pick: Callable[[int], int]) -> None:
        self.pick = pick
        self.cond = threading.Condition()  # the driver waits on it; the runs signal it
        self.waiting: dict[str, threading.Event] = {}
        self.running: set[str] = set()
        self.choices: list[tuple[int, int]] = []  # (chosen, options) per step

    def point(self, who: str) -> None:
        go = threading.Event()
        with self.cond:
            self.waiting[who] = go
            self.running.discard(who)
            self.cond.notify()
        go.wait()

    def finished(self, who: str) -> None:
        with self.cond:
            self.running.discard(who)
            self.cond.notify()

    def drive(self, threads: list[threading.Thread]) -> None:
        while True:
            with self.cond:
                assert self.cond.wait_for(lambda: not self.running, timeout=30), "a run hung"
                if not self.waiting:
                    break
                options = sorted(self.waiting)
                chosen = self.pick(len(self.choices))
                self.choices.append((chosen, len(options)))
                who = options[chosen]
                self.running.add(who)
                self.waiting.pop(who).set()
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


def fresh(base: stages.Pipeline) -> stages.Pipeline:
    """``base`` over empty in-memory storage, publisher and store."""
    return dataclasses.replace(
        base,
        storage=type(base.storage)(),
        publisher=type(base.publisher)(),
        store=type(base.store)(),
    )


def at_once(
    shared: stages.Pipeline,
    pick: Callable[[int], int],
    runs: dict[str, Callable[[stages.Pipeline], None]],
) -> list[tuple[int, int]]:
    """Each of ``runs`` in its own thread over ``shared``, one at a time past each of
    ``POINTS`` in the order ``pick`` chooses; a run that raises ``GenerationMismatch`` (a
    replace lost a race) is delivered again, as the platform would. The choices made."""
    turns = Turns(pick)

    def run(who: str, stage: Callable[[stages.Pipeline], None]) -> None:
        mine = dataclasses.replace(shared, storage=PausingStorage(shared.storage, turns, who))
        try:
            for _ in range(REDELIVERIES):
                try:
                    stage(mine)
                    break
                except GenerationMismatch:
                    continue
            else:
                raise AssertionError(f"{who} still failing after {REDELIVERIES} deliveries")
        finally:
            turns.finished(who)

    threads = [
        threading.Thread(target=run, args=(who, stage), daemon=True) for who, stage in runs.items()
    ]
    turns.running = set(runs)
    for t in threads:
        t.start()
    turns.drive(threads)
    return turns.choices


def race(
    base: stages.Pipeline, pick: Callable[[int], int], old_set_first: bool
) -> tuple[stages.Pipeline, list[tuple[int, int]]]:
    """One object, optionally processed under the old rules beforehand, then a run under
    the old rules and one under the new at once. The shared state and the choices made."""
    shared = fresh(base)
    live = shared.storage.put("uploads", NAME, LANDSCAPE)
    event = storage_event(resource("uploads", NAME, live.generation, len(live.data)))
    if old_set_first:
        stages.make_thumbnail(under(shared, OLD), event, {})

    def make(rules: dict[str, Any]) -> Callable[[stages.Pipeline], None]:
        return lambda mine: stages.make_thumbnail(under(mine, rules), event, {})

    return shared, at_once(shared, pick, {"a-old": make(OLD), "b-new": make(NEW)})


def under(p: stages.Pipeline, rules: dict[str, Any]) -> stages.Pipeline:
    return dataclasses.replace(p, settings=dataclasses.replace(p.settings, **rules))


def _replayed(prefix: tuple[int, ...], step: int) -> int:
    """The choices of ``prefix``, then always the first waiting run."""
    return prefix[step] if step < len(prefix) else 0


def every_schedule(
    staged: Callable[[Callable[[int], int]], tuple[stages.Pipeline, list[tuple[int, int]]]],
) -> Iterator[tuple[stages.Pipeline, list[int]]]:
    """Depth first over the choices: every interleaving of the runs' points once."""
    pending: list[list[int]] = [[]]
    while pending:
        prefix = pending.pop()
        pick = functools.partial(_replayed, tuple(prefix))
        shared, choices = staged(pick)
        taken = [chosen for chosen, _ in choices]
        assert taken[: len(prefix)] == prefix, "the runs did not replay the same way"
        for i in range(len(prefix), len(choices)):
            for other in range(1, choices[i][1]):
                pending.append([*taken[:i], other])
        yield shared, taken


def expected_names(p: stages.Pipeline, rules: dict[str, Any]) -> set[str]:
    s = under(p, rules).settings
    outputs = s.outputs.outputs_for(NAME)
    return {
        thumbnails.thumbnail_name(s.thumbnail_prefix, "uploads", NAME, box, fmt)
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
        under(pipeline, rules).settings.outputs.fingerprint: expected_names(pipeline, rules)
        for rules in (OLD, NEW)
    }
    winners: collections.Counter[str] = collections.Counter()
    staged = functools.partial(race, pipeline, old_set_first=old_set_first)
    schedules = 0
    for schedules, (shared, taken) in enumerate(every_schedule(staged), 1):
        live = {
            name: shared.storage.live["thumbs", name].metadata[FINGERPRINT_KEY]
            for name in shared.storage.names("thumbs")
        }
        fingerprints = set(live.values())
        assert len(fingerprints) == 1, (schedules, taken, live)
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


# --- an overwrite: the old generation's cleanup and run against the new generation's run ---


def overwrite_race(
    base: stages.Pipeline, pick: Callable[[int], int], old_set_first: bool
) -> tuple[stages.Pipeline, list[tuple[int, int]], int]:
    """A generation (processed beforehand, or not), then overwritten: the old generation's
    cleanup (its OBJECT_DELETE with ``overwrittenByGeneration``), a run of the old generation
    that found it live before the overwrite (so it goes on to write) and the new
    generation's run, at once. The shared state, the choices made, the new generation."""
    shared = under(fresh(base), ONE)
    old = shared.storage.put("uploads", NAME, LANDSCAPE)
    old_event = storage_event(resource("uploads", NAME, old.generation, len(old.data)))
    if old_set_first:
        stages.make_thumbnail(shared, old_event, {})
    new = shared.storage.put("uploads", NAME, PORTRAIT)
    new_event = storage_event(
        resource("uploads", NAME, new.generation, len(new.data)), event_id="evt-2"
    )
    overwritten = push_event(
        notification("uploads", NAME, old.generation, overwrittenByGeneration=str(new.generation))
    )
    runs: dict[str, Callable[[stages.Pipeline], None]] = {
        "a-cleanup": lambda mine: stages.cleanup(mine, overwritten, {}),
        "b-old": lambda mine: stages.make_thumbnail(checked_before(mine, old), old_event, {}),
        "c-new": lambda mine: stages.make_thumbnail(mine, new_event, {}),
    }
    return shared, at_once(shared, pick, runs), new.generation


def checked_before(p: stages.Pipeline, old: Any) -> stages.Pipeline:
    """``p`` whose first look at the source finds ``old`` live: the overwrite landed just
    after it (its download is no matter: old generations stay readable here)."""
    storage = p.storage
    first = [StoredObject(NAME, old.generation, {})]

    class Before:
        def __getattr__(self, method: str) -> Any:
            return getattr(storage, method)

        def stat(self, bucket: str, name: str) -> StoredObject | None:
            if (bucket, name) == ("uploads", NAME) and first:
                return first.pop()
            return storage.stat(bucket, name)

    return dataclasses.replace(p, storage=Before())


@pytest.mark.parametrize("old_set_first", [False, True], ids=["fresh", "old-set-in-place"])
def test_an_overwrite_ends_with_the_new_generations_set_in_every_order(pipeline, old_set_first):
    """Cleanup deletes an old thumbnail only under a precondition on the generation it
    listed, so it never removes one the new run wrote over it meanwhile (Cloud Storage
    checks a precondition atomically with the request:
    https://cloud.google.com/storage/docs/request-preconditions)."""
    expected = expected_names(pipeline, ONE)
    schedules = 0
    new_generation = 0

    def staged(pick: Callable[[int], int]) -> tuple[stages.Pipeline, list[tuple[int, int]]]:
        nonlocal new_generation
        shared, choices, new_generation = overwrite_race(pipeline, pick, old_set_first)
        return shared, choices

    for schedules, (shared, taken) in enumerate(every_schedule(staged), 1):
        held = {
            name: shared.storage.live["thumbs", name].metadata["source-generation"]
            for name in shared.storage.names("thumbs")
        }
        assert held == dict.fromkeys(expected, str(new_generation)), (schedules, taken, held)
        for order in itertools.permutations(range(len(shared.publisher.messages))):
            doc = doc_after(shared, order)
            assert (doc["status"], doc["generation"]) == ("processed", new_generation), taken
            assert {t["name"] for t in doc["thumbnails"]} == expected, (taken, order)
    assert schedules >= 20, schedules
