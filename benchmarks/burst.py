"""Benchmark: a burst of uploads against a stack capped at one instance per function.

The local stack models Cloud Run's capacity (`infra.local.fidelity.throttle`): make_thumbnail takes
`thumbnail_max_instances x 1` requests at once, a request beyond waits for a free instance up to the
bounded queue time and then gets 429, which the Eventarc stand-in retries with backoff.
This measures how close the drain of N uploads comes to the capacity ceiling:

    ideal drain = N x service time / slots      (the ceiling: every slot always busy)
    ratio       = ideal drain / measured drain   (target >= 0.8)

The service time is how long a successful request held its slot (sent until answered, the
router's delivery log), measured in the same run; the function's own work (download,
decode/encode, writes, publish: each document's `timings`) is shown next to it. Also: the
429 count, failed uploads and dead letters (both must be 0) and the upload-to-document
latency (p50, p95). The stack is started with one instance per function and a backoff factor of 0.1
(Cloud Run's 10 s queue bound is then 1 s or more, Eventarc's 10..600 s backoff 1..60 s);
`BENCH_STACK_JSON=.local/stack.json` measures a running stack instead (for example one from
`scripts/local up --set thumbnail_max_instances=1 --set function_max_instances=1`).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks import samples
from benchmarks._common import Row, percentile
from benchmarks.e2e import DONE, _clients, _doc_id, _epoch_ms, stack_info

FACTOR = 0.1
WORK = ("download_ms", "core_ms", "upload_ms", "publish_ms")


def _router(info: Mapping[str, Any], path: str) -> Any:
    with urllib.request.urlopen(f"{info['router']['url']}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def measure(info: Mapping[str, Any], count: int, timeout: float) -> dict[str, Any]:
    """Uploads `count` photos at once; waits for every document; returns what it saw."""
    gcs, db = _clients(info)
    uploads = gcs.bucket(info["buckets"]["uploads"])
    images = db.collection(info["collections"]["images"])
    run = uuid.uuid4().hex[:8]
    photos = samples.PHOTOS if samples.have_photos() else ("synthetic",)
    blobs = [samples.sample_path(p, samples.SIZE_12MP, "jpeg").read_bytes() for p in photos]
    data = blobs[0]
    warm = f"burst/{run}/warmup.jpg"  # clients created, imports done: not counted
    uploads.blob(warm).upload_from_string(data, content_type="image/jpeg")
    names = [f"burst/{run}/img-{i:04d}.jpg" for i in range(count)]
    _wait(db, images, uploads.name, [warm], time.monotonic() + timeout)
    before = _router(info, "/stats")["functions"].get("make_thumbnail", {}).get("throttled", 0)
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: uploads.blob(names[n]).upload_from_string(
                    blobs[n % len(blobs)], content_type="image/jpeg"
                ),
                range(count),
            )
        )
    docs = _wait(db, images, uploads.name, names, t0 + timeout)
    drain_s = time.monotonic() - t0
    stats = _router(info, "/stats")
    held = [
        d["seconds"]
        for d in _router(info, f"/deliveries?function=make_thumbnail&prefix=burst/{run}/img-")
        if 200 <= d["status"] < 300 and not d["duplicate"]
    ]
    letters = list(db.collection(info["collections"]["dead_letters"]).limit(1000).stream())
    return {
        "count": count,
        "docs": docs,
        "drain_s": drain_s,
        "service_s": statistics.mean(held) if held else float("nan"),
        "throttled": stats["functions"].get("make_thumbnail", {}).get("throttled", 0) - before,
        "slots": stats["capacity"]["make_thumbnail"]["slots"],
        "wait_s": stats["capacity"]["make_thumbnail"]["wait_s"],
        "abandoned": sum(stats.get("abandoned", {}).values()),
        "dead_letters": len(letters),
    }


def _wait(db: Any, images: Any, bucket: str, names: list[str], deadline: float) -> dict:
    refs = {n: images.document(_doc_id(bucket, n)) for n in names}
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(names) and time.monotonic() < deadline:
        for snap in db.get_all([refs[n] for n in names if n not in done]):
            doc = snap.to_dict() if snap.exists else None
            if doc and doc.get("status") in DONE:
                done[doc["name"]] = doc
        time.sleep(0.25)
    return done


def rows_from(raw: Mapping[str, Any]) -> list[Row]:
    docs = list(raw["docs"].values())
    processed = [d for d in docs if d["status"] == "processed"]
    count, slots = raw["count"], raw["slots"]
    service_ms = raw["service_s"] * 1000
    work_ms = statistics.mean(
        sum((d.get("timings") or {}).get(k, 0.0) for k in WORK) for d in processed
    )
    ideal_s = count * service_ms / 1000 / slots
    ratio = ideal_s / raw["drain_s"]
    latency = [
        _epoch_ms(d["updatedAt"]) - _epoch_ms(d["timeCreated"])
        for d in processed
        if d.get("updatedAt") and d.get("timeCreated")
    ]
    lost = count - len(processed)
    case = f"{count} uploads, make_thumbnail {slots} slot(s)"
    return [
        Row(
            "burst",
            f"{case}: drain time vs the capacity ceiling (N x service time / slots)",
            f"{raw['drain_s']:.1f} s",
            f"{ideal_s:.1f} s ({service_ms:.0f} ms a request, {work_ms:.0f} ms of it work)",
            f"{ratio:.2f} of ceiling",
            ">= 0.8",
            "met" if ratio >= 0.8 else "MISSED",
        ),
        Row(
            "burst",
            f"{case}: 429s (no instance free within {raw['wait_s']} s), retried like Eventarc",
            str(raw["throttled"]),
            target="> 0 (the limit was met)",
            status="met" if raw["throttled"] > 0 else "MISSED",
        ),
        Row(
            "burst",
            f"{case}: not processed / dead letters / abandoned",
            f"{lost} / {raw['dead_letters']} / {raw['abandoned']}",
            target="0 / 0 / 0",
            status="met"
            if (lost, raw["dead_letters"], raw["abandoned"]) == (0, 0, 0)
            else "MISSED",
        ),
        Row(
            "burst",
            f"{case}: upload to document latency (p50, p95)",
            f"{percentile(latency, 50) / 1000:.1f} s",
            ratio=f"p95 {percentile(latency, 95) / 1000:.1f} s",
        ),
    ]


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """The burst against a capped stack of our own (or BENCH_STACK_JSON's)."""
    if smoke:
        return [
            Row(
                "burst",
                "capped burst",
                "not run in smoke mode (needs the emulators)",
                status="skipped",
            )
        ]
    count = int(os.environ.get("BENCH_BURST", 60 if quick else 200))
    with stack_info(
        {"thumbnail_max_instances": 1, "function_max_instances": 1}, FACTOR, "burst-stack"
    ) as info:
        return rows_from(measure(info, count, timeout=900.0))
