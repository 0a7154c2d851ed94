"""`benchmarks/run e2e` and `burst`: bursts of uploads through the local stack, end to end.

Each starts its own stack (`infra.local.local_stack.LocalStack`, no faults), or measures the
one ``BENCH_STACK_JSON=.local/stack.json`` names. After one warm-up upload, N uploads of the
12 MP JPEGs go at once and the images collection is polled until every doc is done. e2e:
100 uploads, throughput against the core alone (the pipeline's efficiency), latency, where
the time goes, the CPU of each process group. burst: 200 uploads to a stack of one instance
per function, its drain against the capacity ceiling, the 429s, nothing lost
(docs/benchmarks.md, docs/capacity.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import peers, samples
from benchmarks._common import CACHE, Row, defaults, judged, percentile

DONE = ("processed", "failed")
WORK = ("download_ms", "core_ms", "upload_ms", "publish_ms")
CAPPED = {"thumbnail_max_instances": 1, "function_max_instances": 1}
FACTOR = 0.1  # the capped stack's backoff: Cloud Run's 10 s queue bound 1 s, Eventarc's 1-60 s


@contextlib.contextmanager
def stack_info(overrides: Mapping[str, Any], factor: float, state: str) -> Iterator[dict[str, Any]]:
    """The stack.json of BENCH_STACK_JSON's stack, or of our own (cdktf.json's settings with
    ``overrides``, its state in the cache's ``state`` folder), stopped afterwards."""
    if given := os.environ.get("BENCH_STACK_JSON"):
        yield json.loads(Path(given).read_text())
        return
    from infra.local.local_stack import LocalStack, StackOptions
    from infra.model.config import load_config

    options = StackOptions(state_dir=CACHE / state, backoff_factor=factor)
    stack = LocalStack(load_config(environ={}, overrides=dict(overrides)), options)
    started = time.perf_counter()
    stack.up()
    try:
        yield stack.info() | {"_up_s": time.perf_counter() - started}
    finally:
        stack.down()


class Uploads:
    """Uploads to the stack's bucket and the docs they lead to."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore, storage

        from infra.common.emulator_clients import patched_env

        with patched_env(info["env"]):
            self.gcs = storage.Client(project=info["project"], credentials=AnonymousCredentials())
            self.db = firestore.Client(project=info["project"], credentials=AnonymousCredentials())
        self.info, self.run = info, uuid.uuid4().hex[:8]
        self.bucket = self.gcs.bucket(info["buckets"]["uploads"])
        self.images = self.db.collection(info["collections"]["images"])
        photos = samples.PHOTOS if samples.have_photos() else ("synthetic",)
        self.blobs = [samples.sample_path(p, samples.SIZE_12MP).read_bytes() for p in photos]

    def send(self, names: list[str]) -> float:
        """Uploads ``names`` at once (the photos round-robin); the seconds it took."""
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            jobs = [(n, self.blobs[i % len(self.blobs)]) for i, n in enumerate(names)]
            list(pool.map(lambda job: self.bucket.blob(job[0]).upload_from_string(job[1]), jobs))
        return time.monotonic() - started

    def wait(self, names: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The docs of ``names`` once processed or failed (those done before the timeout)."""
        from image_pipeline import records

        refs = {n: self.images.document(records.image_doc_id(self.bucket.name, n)) for n in names}
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(names) and time.monotonic() < deadline:
            for snap in self.db.get_all([refs[n] for n in names if n not in done]):
                doc = snap.to_dict() if snap.exists else None
                if doc and doc.get("status") in DONE:
                    done[doc["name"]] = doc
            time.sleep(0.25)
        return done

    def router(self, path: str, **query: str) -> Any:
        url = f"{self.info['router']['url']}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())


def epoch_ms(value: Any) -> float:
    """A doc's datetime, or an RFC 3339 text, in ms since the epoch."""
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.timestamp() * 1000


def latency_ms(doc: Mapping[str, Any]) -> float:
    return epoch_ms(doc["updatedAt"]) - epoch_ms(doc["timeCreated"])


def cpu_seconds(info: Mapping[str, Any]) -> dict[str, float]:
    """CPU seconds used so far by each process group of the stack, and by this process."""
    import resource

    import psutil

    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"this process (router, client)": usage.ru_utime + usage.ru_stime}
    groups = {int(pgid): name for name, pgid in (info.get("process_groups") or {}).items()}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if name := groups.get(os.getpgid(proc.pid)):
                out[name] = out.get(name, 0.0) + sum(proc.cpu_times()[:2])
    return out


def measure_e2e(info: Mapping[str, Any], count: int) -> dict[str, Any]:
    """The burst of ``count`` uploads; what the docs, the log and the router say of it."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    up = Uploads(info)
    warm = f"bench/{up.run}/warmup.jpg"
    up.send([warm])
    up.wait([warm], 300)
    names = [f"bench/{up.run}/img-{i:03d}.jpg" for i in range(count)]
    cpu_before = cpu_seconds(info)
    started = time.monotonic()
    up.send(names)
    docs = up.wait(names, 300)
    wall_s = time.monotonic() - started
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(info).items()}
    prefix = f"bench/{up.run}/img-"
    listed = up.gcs.list_blobs(info["buckets"]["thumbnails"])
    thumbnails = [b.name for b in listed if prefix in b.name]
    query = up.images.where(filter=FieldFilter("name", ">=", prefix))
    all_docs = len(list(query.where(filter=FieldFilter("name", "<", prefix + "~")).stream()))
    return {
        "count": count,
        "docs": docs,
        "thumbnails": thumbnails,
        "all_docs": all_docs,
        "wall_s": wall_s,
        "cpu": cpu,
    }


def stage_timings(processed: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-object ms of each step the doc records, and the rest of its upload-to-doc time:
    routing the upload's event and the result, waiting for a worker, publishing."""
    steps: dict[str, list[float]] = {}
    for doc in processed:
        t = doc.get("timings") or {}
        known = {
            k[:-3]: float(t[k])
            for k in ("download_ms", "core_ms", "upload_ms", "metadata_ms")
            if k in t
        }
        if "total_ms" in t:
            known["routing, waiting and publishing (the rest)"] = t["total_ms"] - sum(
                known.values()
            )
        for step, ms in known.items():
            steps.setdefault(step, []).append(ms)
    return steps


def core_per_second() -> float:
    """Images a second of the core alone on one thread, on the same photos (the baseline)."""
    sizes, _, quality = defaults()
    photos = samples.PHOTOS if samples.have_photos() else ("synthetic",)
    seconds = []
    for photo in photos:
        data = samples.sample_path(photo, samples.SIZE_12MP).read_bytes()
        peers.ours(data, sizes, quality, sizes)  # warm-up
        started = time.perf_counter()
        peers.ours(data, sizes, quality, sizes)
        seconds.append(time.perf_counter() - started)
    return 1 / statistics.mean(seconds)


def e2e_rows(raw: Mapping[str, Any], core_ips: float, per_image: int) -> list[Row]:
    """Completeness, throughput against the core alone, latency, where the time went."""
    count, docs = raw["count"], raw["docs"]
    processed = [d for d in docs.values() if d.get("status") == "processed"]
    label, want = f"12MP JPEG, burst of {count}", count * per_image
    made = (len(processed), len(docs) - len(processed), count - len(docs), raw["all_docs"])
    dup = f"{len(raw['thumbnails'])} thumbnails"
    rows = [
        judged(
            "e2e",
            f"{label}: processed / failed / lost / docs ({dup})",
            " / ".join(map(str, made)),
            made == (count, 0, 0, count) and len(raw["thumbnails"]) == want,
            f"{count} / 0 / 0 / {count}, {want} thumbnails",
        )
    ]
    if not processed:
        return rows
    ips, lat = count / raw["wall_s"], [latency_ms(d) for d in processed]
    case = f"{label}: throughput (first upload to last doc {raw['wall_s']:.1f} s), efficiency"
    base = f"core alone, 1 thread {core_ips:.2f} img/s"
    rows.append(
        judged(
            "e2e",
            case,
            f"{ips:.2f} img/s",
            ips >= 0.8 * core_ips,
            ">= 0.8x",
            base,
            f"{ips / core_ips:.2f}x",
        )
    )
    p50, p95 = f"p50 {percentile(lat, 50):.0f} ms", f"p95 {percentile(lat, 95):.0f} ms"
    rows.append(
        Row(
            "e2e",
            f"{label}: upload to processed latency (p50, p95, max)",
            p50,
            p95,
            f"max {max(lat):.0f} ms",
        )
    )
    totals = [d["timings"]["total_ms"] for d in processed if "total_ms" in d.get("timings", {})]
    total = statistics.median(totals) if totals else 0.0
    for step, values in stage_timings(processed).items():
        med, p95 = statistics.median(values), f"p95 {percentile(values, 95):.0f} ms"
        share = f"{med / total:.0%} of median total" if total else ""
        rows.append(
            Row(
                "e2e",
                f"{label}: where the time goes: {step} (median, p95)",
                f"{med:.0f} ms",
                p95,
                share,
            )
        )
    cores, cpu = os.cpu_count() or 1, raw["cpu"]
    top = sorted(cpu.items(), key=lambda kv: -kv[1])
    groups = ", ".join(f"{k} {v:.1f}" for k, v in top if v >= 0.05)
    case = f"{label}: CPU by process group, of {cores * raw['wall_s']:.0f} core-s"
    busy = f"{sum(cpu.values()) / (cores * raw['wall_s']):.0%} busy"
    return [*rows, Row("e2e", case, f"{sum(cpu.values()):.0f} core-s", groups, busy)]


def measure_capped(info: Mapping[str, Any], count: int) -> dict[str, Any]:
    """``count`` uploads to a stack of one instance per function: drain, slots, 429s."""
    up = Uploads(info)
    warm = f"burst/{up.run}/warmup.jpg"
    up.send([warm])
    up.wait([warm], 900)
    before, started = _throttled(up), time.monotonic()
    names = [f"burst/{up.run}/img-{i:04d}.jpg" for i in range(count)]
    up.send(names)
    docs = up.wait(names, 900)
    drain_s = time.monotonic() - started
    stats = up.router("/stats")
    held = [
        d["seconds"]
        for d in up.router("/deliveries", function="make_thumbnail", prefix=f"burst/{up.run}/img-")
        if 200 <= d["status"] < 300 and not d["duplicate"]
    ]
    letters = list(up.db.collection(info["collections"]["dead_letters"]).limit(1000).stream())
    capacity = stats["capacity"]["make_thumbnail"]
    return {
        "count": count,
        "docs": docs,
        "drain_s": drain_s,
        "service_s": statistics.mean(held),
        "throttled": _throttled(up) - before,
        "slots": capacity["slots"],
        "wait_s": capacity["wait_s"],
        "abandoned": sum(stats.get("abandoned", {}).values()),
        "dead_letters": len(letters),
    }


def _throttled(up: Uploads) -> int:
    return int(up.router("/stats")["functions"].get("make_thumbnail", {}).get("throttled", 0))


def capped_rows(raw: Mapping[str, Any]) -> list[Row]:
    """The drain against the capacity ceiling, the 429s, what was lost, the latency."""
    processed = [d for d in raw["docs"].values() if d["status"] == "processed"]
    count, slots, service_ms = raw["count"], raw["slots"], raw["service_s"] * 1000
    work_ms = statistics.mean(
        sum((d.get("timings") or {}).get(k, 0.0) for k in WORK) for d in processed
    )
    ideal_s = count * service_ms / 1000 / slots
    latency = [latency_ms(d) / 1000 for d in processed]
    lost = (count - len(processed), raw["dead_letters"], raw["abandoned"])
    case = f"{count} uploads, make_thumbnail {slots} slot(s)"
    ceiling = f"{ideal_s:.1f} s ({service_ms:.0f} ms a request, {work_ms:.0f} ms of it work)"
    ratio = ideal_s / raw["drain_s"]
    p50, p95 = f"{percentile(latency, 50):.1f} s", f"p95 {percentile(latency, 95):.1f} s"
    return [
        judged(
            "burst",
            f"{case}: drain time vs the capacity ceiling (N x service time / slots)",
            f"{raw['drain_s']:.1f} s",
            ratio >= 0.8,
            ">= 0.8",
            ceiling,
            f"{ratio:.2f} of ceiling",
        ),
        judged(
            "burst",
            f"{case}: 429s (no instance free within {raw['wait_s']} s), retried like Eventarc",
            str(raw["throttled"]),
            raw["throttled"] > 0,
            "> 0 (the limit was met)",
        ),
        judged(
            "burst",
            f"{case}: not processed / dead letters / abandoned",
            " / ".join(map(str, lost)),
            lost == (0, 0, 0),
            "0 / 0 / 0",
        ),
        Row("burst", f"{case}: upload to document latency (p50, p95)", p50, ratio=p95),
    ]


def run(quick: bool = False, smoke: bool = False, capped: bool = False) -> list[Row]:
    """The burst against our own stack (or BENCH_STACK_JSON's); ``capped``: one instance each."""
    if smoke:
        return [
            Row("e2e", "burst", "not run in smoke mode (needs the emulators)", status="skipped")
        ]
    if capped:
        count = int(os.environ.get("BENCH_BURST", 60 if quick else 200))
        with stack_info(CAPPED, FACTOR, "burst-stack") as info:
            return capped_rows(measure_capped(info, count))
    from infra.model.config import load_config

    config = load_config(environ={})  # what the stack starts with (cdktf.json)
    core_ips = core_per_second()
    with stack_info({}, 1.0, "stack") as info:
        raw = measure_e2e(info, 30 if quick else 100)
    return e2e_rows(raw, core_ips, len(config.thumbnail_sizes) * len(config.thumbnail_formats))
