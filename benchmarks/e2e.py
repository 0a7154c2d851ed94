"""Benchmark 3: a burst of uploads through the local stack, end to end.

By default the benchmark starts its own stack with the harness's Python API
(`infra.local.local_stack.LocalStack`, state in `.local/benchmarks/stack/`, no faults) and stops
it afterwards. To measure a stack that is already running (`scripts/local up --detach`),
set `BENCH_STACK_JSON=.local/stack.json`: only the documented `stack.json` contract is used
then (`project`, `env`, `buckets`, `collections`, `functions.*.log`).

One warm-up upload (not counted) lets each function create its clients; then N uploads
are sent at once (8 client threads) and the images collection is polled until every
object's doc is `processed` or `failed`. Latency is the doc's `updatedAt` minus the
object's `timeCreated` (both stamped by the local emulators, one clock). The breakdown
comes from the doc's `timings` (download, core, upload, metadata), the make_thumbnail
log's `published` lines (publish) and the router's delivery log (when make_thumbnail
answered), which splits the rest into event routing before make_thumbnail (including
waiting for a free worker) and the routing of the result event to write_metadata. CPU
seconds per process group show where the machine's two cores went. The sources are the
12 MP photos of the core benchmark, uploaded round-robin under distinct names (the pipeline
caches nothing, so content reuse is moot).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import samples
from benchmarks._common import CACHE, Row, percentile

DONE = ("processed", "failed")


@contextlib.contextmanager
def stack_info(
    overrides: Mapping[str, Any] | None = None, backoff_factor: float = 1.0, state: str = "stack"
) -> Iterator[dict[str, Any]]:
    """The running stack's stack.json content: BENCH_STACK_JSON's, or our own stack's
    (cdktf.json's settings with `overrides`, its state in the cache's `state` folder)."""
    given = os.environ.get("BENCH_STACK_JSON")
    if given:
        yield json.loads(Path(given).read_text())
        return
    from infra.local.local_stack import LocalStack, StackOptions
    from infra.model.config import load_config

    options = StackOptions(state_dir=CACHE / state, backoff_factor=backoff_factor)
    stack = LocalStack(load_config(environ={}, overrides=overrides), options)
    t0 = time.perf_counter()
    stack.up()
    try:
        info = stack.info()
        info["_up_s"] = time.perf_counter() - t0
        yield info
    finally:
        stack.down()


def _clients(info: Mapping[str, Any]) -> tuple[Any, Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore, storage

    from infra.common.emulator_clients import patched_env

    with patched_env(info["env"]):
        gcs = storage.Client(project=info["project"], credentials=AnonymousCredentials())
        db = firestore.Client(project=info["project"], credentials=AnonymousCredentials())
    return gcs, db


def _doc_id(bucket: str, name: str) -> str:
    from image_pipeline import records

    return records.image_doc_id(bucket, name)


def _ms(a: Any, b: Any) -> float:
    """b - a in ms; either may be a datetime or an RFC 3339 string."""

    def parse(v: Any) -> datetime:
        return (
            v if isinstance(v, datetime) else datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        )

    return (parse(b) - parse(a)).total_seconds() * 1000


def _publish_times(info: Mapping[str, Any], names: set[str]) -> tuple[dict[str, float], int]:
    """publish_ms per object from make_thumbnail's log, and how many objects were published
    more than once (redeliveries: harmless, the docs are idempotent, but worth knowing)."""
    log = None
    for fn in info.get("functions", {}).values():
        if fn.get("target") == "make_thumbnail" and fn.get("log"):
            log = Path(fn["log"])
    if log is None or not log.exists():
        return {}, 0
    found: dict[str, float] = {}
    repeats = 0
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            name = entry.get("object")
            ms = (entry.get("timings") or {}).get("publish_ms")
            if (
                name in names
                and ms is not None
                and str(entry.get("message", "")).startswith("published")
            ):
                repeats += name in found
                found[name] = float(ms)
    return found, repeats


def cpu_seconds(info: Mapping[str, Any]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process group of the stack, and by
    this process (the router threads when we started the stack, plus the upload client)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"this process (router, client)": usage.ru_utime + usage.ru_stime}
    try:
        import psutil
    except ImportError:
        return out
    groups = {int(pgid): name for name, pgid in (info.get("process_groups") or {}).items()}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            name = groups.get(os.getpgid(proc.pid))
            if name:
                t = proc.cpu_times()
                out[name] = out.get(name, 0.0) + t.user + t.system
    return out


def burst(info: Mapping[str, Any], count: int, paths: list[Path], timeout: float) -> dict:
    """Uploads `count` objects at once and waits for their docs; returns raw measurements."""
    gcs, db = _clients(info)
    uploads = gcs.bucket(info["buckets"]["uploads"])
    collection = db.collection(info["collections"]["images"])
    run = uuid.uuid4().hex[:8]
    blobs = [p.read_bytes() for p in paths]

    def put(name: str, data: bytes) -> None:
        uploads.blob(name).upload_from_string(data, content_type="image/jpeg")

    def wait(names: list[str], deadline: float) -> dict[str, dict[str, Any]]:
        refs = {n: collection.document(_doc_id(uploads.name, n)) for n in names}
        done: dict[str, dict[str, Any]] = {}
        while len(done) < len(names) and time.monotonic() < deadline:
            pending = [refs[n] for n in names if n not in done]
            for snap in db.get_all(pending):
                data = snap.to_dict() if snap.exists else None
                if data and data.get("status") in DONE:
                    done[data["name"]] = data
            time.sleep(0.25)
        return done

    warm = f"bench/{run}/warmup.jpg"
    put(warm, blobs[0])
    warm_doc = wait([warm], time.monotonic() + timeout).get(warm)
    names = [f"bench/{run}/img-{i:03d}.jpg" for i in range(count)]
    cpu_before = cpu_seconds(info)
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names, [blobs[i % len(blobs)] for i in range(count)]))
    uploaded_s = time.monotonic() - t0
    docs = wait(names, t0 + timeout)
    wall_s = time.monotonic() - t0
    cpu_after = cpu_seconds(info)
    cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = collection.where(filter=FieldFilter("name", ">=", f"bench/{run}/img-")).where(
        filter=FieldFilter("name", "<", f"bench/{run}/img.")
    )
    all_docs = [snap.to_dict() for snap in query.stream()]
    thumbs = list(gcs.list_blobs(info["buckets"]["thumbnails"], prefix=""))
    thumb_names = [b.name for b in thumbs if f"bench/{run}/img-" in b.name]
    created = {}
    for blob in gcs.list_blobs(uploads.name, prefix=f"bench/{run}/img-"):
        created[blob.name] = blob.time_created
    publish, repeats = _publish_times(info, set(names))
    return {
        "deliveries": _deliveries(info, f"bench/{run}/img-"),
        "count": count,
        "warm_doc": warm_doc,
        "docs": docs,
        "all_docs": all_docs,
        "thumbnails": thumb_names,
        "created": created,
        "publish": publish,
        "republished": repeats,
        "uploaded_s": uploaded_s,
        "wall_s": wall_s,
        "cpu": cpu,
    }


def _deliveries(info: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Every delivery the router made for our objects (its control endpoint), or []."""
    import urllib.parse
    import urllib.request

    url = (info.get("router") or {}).get("url")
    if not url:
        return []
    query = urllib.parse.urlencode({"prefix": prefix})
    try:
        with urllib.request.urlopen(f"{url}/deliveries?{query}", timeout=10) as resp:
            return list(json.loads(resp.read()))
    except (OSError, ValueError):
        return []


def _epoch_ms(value: Any) -> float:
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.timestamp() * 1000


def stage_timings(raw: dict, processed: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-object ms for each step from upload to doc, in pipeline order.

    The functions record download/core/upload/publish/metadata; the router's delivery log
    says when make_thumbnail answered, which splits the rest into the routing before
    make_thumbnail (GCS notification -> Pub/Sub -> router -> trigger, and waiting for a
    worker) and the routing of the result event (Pub/Sub -> router -> push).
    """
    answered: dict[str, float] = {}
    for d in raw.get("deliveries") or []:
        if d.get("function") == "make_thumbnail" and 200 <= int(d.get("status", 0)) < 300:
            at = float(d["at"]) * 1000
            answered[d["object"]] = min(at, answered.get(d["object"], at))
    steps: dict[str, list[float]] = {}
    for doc in processed:
        t = dict(doc.get("timings") or {})
        if doc["name"] in raw["publish"]:
            t["publish_ms"] = raw["publish"][doc["name"]]
        order: list[tuple[str, float | None]] = []
        work = sum(t.get(k, 0.0) for k in ("download_ms", "core_ms", "upload_ms", "publish_ms"))
        mt = answered.get(doc["name"])
        try:
            created, updated = _epoch_ms(doc["timeCreated"]), _epoch_ms(doc["updatedAt"])
        except (KeyError, TypeError, ValueError):
            mt = None
        if mt is not None:
            order.append(("routing to make_thumbnail + waiting", mt - created - work))
        order += [(k[:-3], t.get(k)) for k in ("download_ms", "core_ms", "upload_ms", "publish_ms")]
        if mt is not None:
            push = updated - mt - t.get("metadata_ms", 0.0)
            order.append(("result event routing to write_metadata", push))
        order.append(("metadata (Firestore transaction)", t.get("metadata_ms")))
        if mt is None and "total_ms" in t:
            known = work + t.get("metadata_ms", 0.0)
            order.append(("routing + queueing (total - stages)", t["total_ms"] - known))
        for key, value in order:
            if value is not None:
                steps.setdefault(key, []).append(float(value))
    return steps


def _core_throughput(paths: list[Path]) -> float:
    """Images/s of the core alone, one thread, on the same files (the baseline)."""
    from benchmarks import engines
    from benchmarks.core import defaults

    sizes, fmt, quality = defaults()
    times = []
    for p in paths:
        data = p.read_bytes()
        engines.ours(data, sizes, fmt, quality)
        t0 = time.perf_counter()
        engines.ours(data, sizes, fmt, quality)
        times.append(time.perf_counter() - t0)
    return 1 / statistics.mean(times)


def rows_from(
    raw: dict, core_ips: float, label: str, up_s: float | None, per_image: int = 3
) -> list[Row]:
    """Table rows from a burst's raw measurements."""
    count, docs = raw["count"], raw["docs"]
    processed = [d for d in docs.values() if d.get("status") == "processed"]
    failed = len(docs) - len(processed)
    lost = count - len(docs)
    sizes_per_image = per_image  # thumbnails per upload: boxes x formats
    rows = [
        Row(
            "e2e",
            f"{label}: burst of {count}, all processed"
            + (f" (stack up in {up_s:.0f} s, not counted)" if up_s else ""),
            f"{len(processed)}/{count} processed",
            f"{failed} failed, {lost} lost",
            "",
            "all, 0 lost",
            "met" if len(processed) == count else "MISSED",
        ),
        Row(
            "e2e",
            f"{label}: no duplicates (docs, thumbnails; make_thumbnail redeliveries "
            f"{raw['republished']})",
            f"{len(raw['all_docs'])} docs",
            f"{len(raw['thumbnails'])} thumbnails (want {count * sizes_per_image})",
            "",
            "exactly 1 doc per object",
            "met"
            if len(raw["all_docs"]) == count and len(raw["thumbnails"]) == count * sizes_per_image
            else "MISSED",
        ),
    ]
    if not processed:
        return rows
    ips = count / raw["wall_s"]
    rows.append(
        Row(
            "e2e",
            f"{label}: throughput (first upload -> last doc {raw['wall_s']:.1f} s; "
            f"uploads took {raw['uploaded_s']:.1f} s)",
            f"{ips:.2f} img/s",
            f"core alone, 1 thread {core_ips:.2f} img/s",
            f"{ips / core_ips:.2f}x",
        )
    )
    lat = []
    for d in processed:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            lat.append(_ms(d["timeCreated"], d["updatedAt"]))
    if lat:
        rows.append(
            Row(
                "e2e",
                f"{label}: upload -> processed latency in the burst (updatedAt - timeCreated; "
                f"p50, p95, max)",
                f"p50 {percentile(lat, 50):.0f} ms",
                f"p95 {percentile(lat, 95):.0f} ms",
                f"max {max(lat):.0f} ms",
            )
        )
    warm = raw.get("warm_doc") or {}
    with contextlib.suppress(KeyError, TypeError, ValueError):
        rows.append(
            Row(
                "e2e",
                f"{label}: one upload alone (the warm-up, first request of each function)",
                f"{_ms(warm['timeCreated'], warm['updatedAt']):.0f} ms",
                f"core {warm['timings']['core_ms']:.0f} ms",
            )
        )
    totals = [d["timings"]["total_ms"] for d in processed if "total_ms" in d.get("timings", {})]
    med_total = statistics.median(totals) if totals else 0.0
    for step, values in stage_timings(raw, processed).items():
        med = statistics.median(values)
        rows.append(
            Row(
                "e2e",
                f"{label}: where the time goes: {step} (median, p95)",
                f"{med:.0f} ms",
                f"p95 {percentile(values, 95):.0f} ms",
                f"{med / med_total:.0%} of median total" if med_total else "",
            )
        )
    deliveries = raw.get("deliveries") or []
    if deliveries:
        per: dict[str, list[int]] = {}
        seen: dict[tuple[str, str], int] = {}
        for d in deliveries:
            ok = 200 <= int(d.get("status", 0)) < 300
            entry = per.setdefault(d["function"], [0, 0, 0])
            entry[0 if ok else 1] += 1
            if ok:
                key = (d["function"], d["object"])
                seen[key] = seen.get(key, 0) + 1
                if seen[key] == 2:
                    entry[2] += 1
        rows.append(
            Row(
                "e2e",
                f"{label}: router deliveries (a non-2xx is retried by the router)",
                "; ".join(
                    f"{fn}: {a} 2xx, {b} non-2xx, {c} objects 2xx twice"
                    for fn, (a, b, c) in sorted(per.items())
                ),
            )
        )
    cpu = raw.get("cpu") or {}
    if cpu:
        total_cpu = sum(cpu.values())
        cores = os.cpu_count() or 1
        top = sorted(cpu.items(), key=lambda kv: -kv[1])
        rows.append(
            Row(
                "e2e",
                f"{label}: CPU used during the burst (of {cores * raw['wall_s']:.0f} core-s "
                f"on {cores} cores), by process group",
                f"{total_cpu:.0f} core-s",
                ", ".join(f"{k} {v:.1f}" for k, v in top if v >= 0.05),
                f"{total_cpu / (cores * raw['wall_s']):.0%} busy",
            )
        )
    return rows


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """The burst against our own stack (or BENCH_STACK_JSON's)."""
    if smoke:
        return [
            Row("e2e", "burst", "not run in smoke mode (needs the emulators)", status="skipped")
        ]
    count = 30 if quick else 100
    photos = samples.PHOTOS if samples.have_photos() else ("synthetic",)
    paths = [samples.sample_path(p, samples.SIZE_12MP, "jpeg") for p in photos]
    core_ips = _core_throughput(paths)
    with stack_info() as info:
        raw = burst(info, count, paths, timeout=300.0)
        up_s = info.get("_up_s")
    from infra.model.config import load_config

    config = load_config(environ={})  # what the stack was started with (cdktf.json)
    per_image = len(config.thumbnail_sizes) * len(config.thumbnail_formats)
    return rows_from(raw, core_ips, "12MP JPEG", up_s, per_image)
