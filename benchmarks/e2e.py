"""`benchmarks/run e2e` and `burst`: bursts of uploads through the local stack, end to end.

e2e: 100 uploads, throughput against the core alone, latency, where the time goes, CPU by
process group. burst: 200 uploads to a stack of one instance per function, its drain against
the capacity ceiling. How each is run and read: docs/benchmarks.md, docs/capacity.md.
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
from image_pipeline import records
from infra.ops.target import Target, from_stack

DONE = ("processed", "failed")
WORK = ("download_ms", "core_ms", "upload_ms", "publish_ms")  # burst: a request's work
STEPS = ("download_ms", "core_ms", "upload_ms", "metadata_ms")  # e2e: where the time goes
REST = "routing, waiting and publishing (the rest)"
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
    stack.up()
    try:
        yield stack.info()
    finally:
        stack.down()


def upload(
    target: Target, names: list[str], photos: list[bytes], timeout: float
) -> dict[str, dict[str, Any]]:
    """Uploads ``names`` at once from 8 threads (``photos`` round-robin); their docs once
    processed or failed (those done within ``timeout``)."""
    bucket = target.storage.bucket(target.uploads_bucket)
    with ThreadPoolExecutor(8) as pool:
        jobs = [(n, photos[i % len(photos)]) for i, n in enumerate(names)]
        list(pool.map(lambda job: bucket.blob(job[0]).upload_from_string(job[1]), jobs))
    ids = {n: records.image_doc_id(target.uploads_bucket, n) for n in names}
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(names) and time.monotonic() < deadline:
        waiting = [ids[n] for n in names if n not in done]
        found = target.documents.get_many(target.images_collection, waiting).values()
        done |= {doc["name"]: doc for doc in found if doc.get("status") in DONE}
        time.sleep(0.25)
    return done


def router(info: Mapping[str, Any], path: str, **query: str) -> Any:
    """A JSON answer of the stack's router (its control endpoints: docs/local-stack.md)."""
    url = f"{info['router']['url']}{path}?{urllib.parse.urlencode(query)}"
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
    import psutil

    out = {"this process (router, client)": sum(psutil.Process().cpu_times()[:2])}
    groups = {int(pgid): name for name, pgid in (info.get("process_groups") or {}).items()}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if name := groups.get(os.getpgid(proc.pid)):
                out[name] = out.get(name, 0.0) + sum(proc.cpu_times()[:2])
    return out


def measure(info: Mapping[str, Any], count: int, timeout: float) -> dict[str, Any]:
    """One warm-up upload (not counted), then ``count`` at once: their docs once done (within
    ``timeout``), and what the bucket, the router and the CPU counters say of the burst."""
    target, run = from_stack(info), uuid.uuid4().hex[:8]
    photos, prefix = [path.read_bytes() for path in samples.photos_12mp()], f"bench/{run}/img-"
    upload(target, [f"bench/{run}/warmup.jpg"], photos, timeout)
    cpu_before, throttled_before = cpu_seconds(info), _throttled(router(info, "/stats"))
    started = time.monotonic()
    docs = upload(target, [f"{prefix}{i:04d}.jpg" for i in range(count)], photos, timeout)
    seconds = time.monotonic() - started
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(info).items()}
    stats = router(info, "/stats")
    held = router(info, "/deliveries", function="make_thumbnail", prefix=prefix)
    thumbnails = [b.name for b in target.blobs(target.thumbnails_bucket) if prefix in b.name]
    made = target.settings  # what the stack's make_thumbnail makes of each upload
    return {
        "count": count,
        "docs": docs,
        "seconds": seconds,
        "cpu": cpu,
        "thumbnails": thumbnails,
        "per_image": len(made.thumbnail_sizes) * len(made.thumbnail_formats),
        "all_docs": sum(1 for _ in target.documents.by_name(target.images_collection, prefix)),
        # the seconds each request held its slot (the router's delivery log)
        "held": [d["seconds"] for d in held if 200 <= d["status"] < 300 and not d["duplicate"]],
        "throttled": _throttled(stats) - throttled_before,
        "capacity": stats["capacity"]["make_thumbnail"],
        "abandoned": sum(stats.get("abandoned", {}).values()),
        "dead_letters": sum(1 for _ in target.documents.stream(target.dead_letters_collection)),
    }


def _throttled(stats: Mapping[str, Any]) -> int:
    return int(stats["functions"].get("make_thumbnail", {}).get("throttled", 0))


def stage_timings(processed: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-object ms of each step the doc records, and the rest of its upload-to-doc time:
    routing the upload's event and the result, waiting for a worker, publishing."""
    steps: dict[str, list[float]] = {}
    for doc in processed:
        t = doc.get("timings") or {}
        known = {k.removesuffix("_ms"): float(t[k]) for k in STEPS if k in t}
        if "total_ms" in t:
            known[REST] = t["total_ms"] - sum(known.values())
        for step, ms in known.items():
            steps.setdefault(step, []).append(ms)
    return steps


def core_per_second() -> float:
    """Images a second of the core alone on one thread, on the same photos (the baseline)."""
    sizes, quality = defaults()
    seconds = []
    for path in samples.photos_12mp():
        data = path.read_bytes()
        peers.ours(data, sizes, quality, sizes)  # warm-up
        started = time.perf_counter()
        peers.ours(data, sizes, quality, sizes)
        seconds.append(time.perf_counter() - started)
    return 1 / statistics.mean(seconds)


def e2e_rows(raw: Mapping[str, Any], core_ips: float) -> list[Row]:
    """Completeness, throughput against the core alone, latency, where the time went."""
    count, docs = raw["count"], raw["docs"]
    processed = [d for d in docs.values() if d.get("status") == "processed"]
    label, want = f"12MP JPEG, burst of {count}", count * raw["per_image"]
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
    ips, lat = count / raw["seconds"], [latency_ms(d) for d in processed]
    case = f"{label}: throughput (first upload to last doc {raw['seconds']:.1f} s), efficiency"
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
    case = f"{label}: CPU by process group, of {cores * raw['seconds']:.0f} core-s"
    busy = f"{sum(cpu.values()) / (cores * raw['seconds']):.0%} busy"
    return [*rows, Row("e2e", case, f"{sum(cpu.values()):.0f} core-s", groups, busy)]


def capped_rows(raw: Mapping[str, Any]) -> list[Row]:
    """The drain against the capacity ceiling, the 429s, what was lost, the latency."""
    processed = [d for d in raw["docs"].values() if d["status"] == "processed"]
    count, slots, wait_s = raw["count"], raw["capacity"]["slots"], raw["capacity"]["wait_s"]
    service_ms = statistics.mean(raw["held"]) * 1000
    work_ms = statistics.mean(
        sum((d.get("timings") or {}).get(k, 0.0) for k in WORK) for d in processed
    )
    ideal_s = count * service_ms / 1000 / slots
    latency = [latency_ms(d) / 1000 for d in processed]
    lost = (count - len(processed), raw["dead_letters"], raw["abandoned"])
    case = f"{count} uploads, make_thumbnail {slots} slot(s)"
    ceiling = f"{ideal_s:.1f} s ({service_ms:.0f} ms a request, {work_ms:.0f} ms of it work)"
    ratio = ideal_s / raw["seconds"]
    p50, p95 = f"{percentile(latency, 50):.1f} s", f"p95 {percentile(latency, 95):.1f} s"
    return [
        judged(
            "burst",
            f"{case}: drain time vs the capacity ceiling (N x service time / slots)",
            f"{raw['seconds']:.1f} s",
            ratio >= 0.8,
            ">= 0.8",
            ceiling,
            f"{ratio:.2f} of ceiling",
        ),
        judged(
            "burst",
            f"{case}: 429s (no instance free within {wait_s} s), retried like Eventarc",
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
            return capped_rows(measure(info, count, 900))
    core_ips = core_per_second()
    with stack_info({}, 1.0, "stack") as info:
        return e2e_rows(measure(info, 30 if quick else 100, 300), core_ips)
