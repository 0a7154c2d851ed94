"""Benchmark 1: the thumbnail core against naive Pillow and pyvips, on 12 MP photos.

Every engine produces every default size (read from `infra.model.config.DeploymentConfig`) in
the default output format and quality. Timings are medians of N runs after a warm-up,
with the engines interleaved run by run so that background load hits all of them alike.

Two worker processes, each a fresh interpreter:
- `VIPS_CONCURRENCY=1`: ours, naive Pillow, pyvips per size, pyvips decode-once. Pillow
  resizes on one thread, so this is the like-for-like comparison.
- libvips' default concurrency (one thread per core): ours again (so each ratio compares
  numbers from the same process and minutes) and the two pyvips variants.

The worker also checks that every engine produced the same dimensions, and how far our
pixels are from naive Pillow's (RMSE on 0..255), so that speed is not bought with quality.
"""

from __future__ import annotations

import io
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import engines, samples
from benchmarks._common import Row, run_worker, speedup_row
from image_pipeline.formats import OUTPUTS

FORMATS = ("jpeg", "png", "webp")
TARGET_NAIVE = 4.0
TARGET_VIPS = 1.0
LABELS = {
    "pillow_naive": "naive Pillow",
    "pyvips_each": "pyvips thumbnail_buffer x sizes",
    "pyvips_once": "pyvips decode once",
}


def defaults() -> tuple[list[tuple[int, int]], str, int]:
    """Default sizes, first output format and quality, from DeploymentConfig."""
    from infra.model.config import DeploymentConfig

    cfg = DeploymentConfig(project="benchmark-project")
    sizes = [(s.width, s.height) for s in cfg.thumbnail_sizes]
    return sizes, cfg.thumbnail_formats[0], cfg.thumbnail_quality


def have_pyvips() -> bool:
    """True when pyvips and its libvips load."""
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _rmse(a: bytes, b: bytes) -> float:
    from PIL import Image, ImageChops, ImageStat

    with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
        ia, ib = ia.convert("RGB"), ib.convert("RGB")
        if ia.size != ib.size:
            return math.inf
        diff = ImageChops.difference(ia, ib)
        return math.sqrt(sum(v * v for v in ImageStat.Stat(diff).rms) / 3)


def _encode_floor(outputs: engines.Output, fmt: str, quality: int) -> float:
    """ms to encode our outputs again: the part every engine pays alike."""
    from PIL import Image

    images = []
    for _, _, data in outputs:
        with Image.open(io.BytesIO(data)) as im:
            images.append(im.convert("RGB"))
    output = OUTPUTS[fmt]
    params = output.encoder_options(quality)

    def encode() -> None:
        for im in images:
            im.save(io.BytesIO(), output.pillow, **params)

    encode()
    t0 = time.perf_counter()
    for _ in range(3):
        encode()
    return (time.perf_counter() - t0) * 1000 / 3


def measure(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker body: time the named engines on the given files, interleaved."""
    sizes = [tuple(s) for s in payload["sizes"]]
    out_fmt, quality = payload["format"], payload["quality"]
    warmup = payload["warmup"]
    names: list[str] = payload["engines"]
    result: dict[str, Any] = {"medians": {}, "rmse": {}, "dims_ok": True, "floor": {}}
    try:
        import pyvips

        result["vips_concurrency"] = pyvips.concurrency_get()
    except (ImportError, OSError):
        result["vips_concurrency"] = None
    for in_fmt, paths in payload["files"].items():
        per_engine: dict[str, list[float]] = {n: [] for n in names}
        rmse: dict[str, float] = {n: 0.0 for n in names}
        floors = []
        for path in paths:
            data = Path(path).read_bytes()
            samples_ms: dict[str, list[float]] = {n: [] for n in names}
            outputs: dict[str, engines.Output] = {}
            for n in names:  # warm-up, and the outputs for the checks
                for _ in range(max(1, warmup)):
                    outputs[n] = engines.ENGINES[n](data, sizes, out_fmt, quality)
            # Pixels compared through lossless PNG, so only resampling differences count.
            lossless = {
                n: engines.ENGINES[n](data, sizes, "png", quality)
                for n in names
                if payload.get("checks")
            }
            for r in range(payload["repeat"][in_fmt]):
                order = names[r % len(names) :] + names[: r % len(names)]
                for n in order:
                    t0 = time.perf_counter()
                    engines.ENGINES[n](data, sizes, out_fmt, quality)
                    samples_ms[n].append((time.perf_counter() - t0) * 1000)
            for n in names:
                per_engine[n].append(statistics.median(samples_ms[n]))
                dims = [(w, h) for w, h, _ in outputs[n]]
                if dims != [(w, h) for w, h, _ in outputs[names[0]]]:
                    result["dims_ok"] = False
                    result.setdefault("dims", {})[n] = dims
                if "pillow_naive" in lossless and n != "pillow_naive":
                    for (_, _, mine), (_, _, ref) in zip(
                        lossless[n], lossless["pillow_naive"], strict=True
                    ):
                        rmse[n] = max(rmse[n], _rmse(mine, ref))
            if payload.get("floor") and "ours" in outputs:
                floors.append(_encode_floor(outputs["ours"], out_fmt, quality))
        result["medians"][in_fmt] = per_engine
        result["rmse"][in_fmt] = rmse
        if floors:
            result["floor"][in_fmt] = statistics.mean(floors)
    return result


def _plan(quick: bool, smoke: bool) -> tuple[dict[str, list[str]], dict[str, int], int, str]:
    """Which sample files to use and how many timed runs of each: (files, repeat per input
    format, warm-ups, label). JPEG, the target case, gets three photos and five runs in a
    full run; PNG and WebP inputs (seconds per call for the naive baseline) one photo,
    three runs."""
    if smoke or not samples.have_photos():
        size = (400, 300) if smoke else samples.SIZE_12MP
        fmts = ("jpeg",) if smoke else FORMATS
        files = {f: [str(samples.sample_path("synthetic", size, f))] for f in fmts}
        return (
            files,
            dict.fromkeys(fmts, 1 if smoke else 3),
            0 if smoke else 1,
            (f"{size[0]}x{size[1]} synthetic"),
        )
    files: dict[str, list[str]] = {f: [] for f in FORMATS}
    for p in samples.PHOTOS if not quick else samples.PHOTOS[1:2]:
        fmts = FORMATS if p == samples.PHOTOS[1] else ("jpeg",)
        for f, path in samples.prepare(p, samples.SIZE_12MP, fmts).items():
            files[f].append(str(path))
    repeat = {f: 2 if quick else (5 if f == "jpeg" else 3) for f in FORMATS}
    return files, repeat, 1, "12MP"


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """Runs the workers and turns their medians into table rows."""
    sizes, out_fmt, quality = defaults()
    files, repeat, warmup, label = _plan(quick, smoke)
    vips = have_pyvips()
    base = {"sizes": sizes, "format": out_fmt, "quality": quality, "files": files}
    base |= {"repeat": repeat, "warmup": warmup}
    pinned = ["ours", "pillow_naive"] + (["pyvips_each", "pyvips_once"] if vips else [])
    pinned_payload = base | {"engines": pinned, "checks": True, "floor": not smoke}
    runs = [
        (
            "VIPS_CONCURRENCY=1",
            run_worker(__name__, pinned_payload, {"VIPS_CONCURRENCY": "1"}),
        )
    ]
    if vips and not smoke:
        default = base | {"engines": ["ours", "pyvips_each", "pyvips_once"]}
        runs.append(
            ("libvips default threads", run_worker(__name__, default, unset=["VIPS_CONCURRENCY"]))
        )
    box_text = ",".join(f"{w}x{h}" for w, h in sizes)
    rows = [
        Row(
            "core",
            "settings",
            f"{box_text} -> {out_fmt} q{quality}, all sizes per call",
            "median of "
            + "/".join(f"{n} {f}" for f, n in repeat.items())
            + f" runs after {warmup} warm-up, engines interleaved",
        )
    ]
    for in_fmt, paths in files.items():
        case = f"{in_fmt.upper()} {label}" + (f" x{len(paths)}" if len(paths) > 1 else "")
        jpeg = in_fmt == "jpeg"
        for threads, res in runs:
            med = res["medians"][in_fmt]
            ours = statistics.mean(med["ours"])
            for name in med:
                if name == "ours" or (name == "pillow_naive" and threads != runs[0][0]):
                    continue
                # Targets are about 12 MP JPEG photos, not the smoke run's tiny picture.
                target = None
                if jpeg and not smoke:
                    target = {"pillow_naive": TARGET_NAIVE, "pyvips_each": TARGET_VIPS}.get(name)
                tag = "" if name == "pillow_naive" else f" [{_threads(threads, res)}]"
                rows.append(
                    speedup_row(
                        "core",
                        f"{case}: ours vs {LABELS[name]}{tag}",
                        ours,
                        LABELS[name],
                        statistics.mean(med[name]),
                        target,
                    )
                )
        first = runs[0][1]
        floor = first["floor"].get(in_fmt)
        med = first["medians"][in_fmt]
        if floor:
            ours, naive = statistics.mean(med["ours"]), statistics.mean(med["pillow_naive"])
            rows.append(
                Row(
                    "core",
                    f"{case}: same, minus the {out_fmt} encode every engine pays ({floor:.0f} ms)",
                    f"{ours - floor:.1f} ms",
                    f"naive Pillow {naive - floor:.1f} ms",
                    f"{(naive - floor) / max(ours - floor, 1e-9):.2f}x",
                )
            )
        worst = first["rmse"][in_fmt]
        rows.append(
            Row(
                "core",
                f"{case}: pixel RMSE vs naive Pillow (lossless, worst size, 0-255)",
                f"{worst['ours']:.2f}",
                ", ".join(f"{n} {v:.2f}" for n, v in worst.items() if n.startswith("pyvips")),
                "",
                "same dimensions",
                "met" if first["dims_ok"] else "FAILED",
            )
        )
    if not vips:
        rows.append(Row("core", "pyvips comparison", "pyvips not installed", status="skipped"))
    return rows


def _threads(label: str, res: dict[str, Any]) -> str:
    n = res.get("vips_concurrency")
    return "1 thread" if label.startswith("VIPS") else f"{n} threads (libvips default)"


def main(argv: Sequence[str] | None = None) -> None:
    """Worker entry: payload JSON on stdin, result JSON on the last stdout line."""
    payload = json.load(sys.stdin)
    print(json.dumps(measure(payload)))


if __name__ == "__main__":
    main()
