"""Benchmark 2: peak memory of one thumbnail run, each case in a fresh interpreter.

Also the worst allowed 16-bit gray and RGBA PNGs at the limits (`benchmarks/worst_case.py`).

The worker imports everything first (and, for the 100 MP case, `functions/main.py`, so the
absolute number is what a function instance holds), reads the source into memory, resets
the kernel's peak-RSS mark (`/proc/self/clear_refs`), runs the engine once (a cold, first
run) and reads the peak back (`VmHWM`). "Added" is that peak minus the RSS just before the
run, so the input bytes, the interpreter and the libraries are not counted in it; the
absolute peak counts everything.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import sys
from pathlib import Path
from typing import Any

from benchmarks import engines, samples, worst_case
from benchmarks._common import Row, function_env, run_worker, status_kb

MB = 1024 * 1024
TARGET_12MP_MB = 80
LIMIT_MIB = 512


def measure(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker body: one cold run of one engine on one file; bytes of RSS."""
    from PIL import Image

    Image.init()  # every plugin registered before the baseline, like a warm instance
    if payload.get("import_main"):
        # What a function instance holds after its first request: functions/main.py and
        # the client libraries it creates lazily.
        import main  # noqa: F401

        for module in ("google.cloud.storage", "google.cloud.pubsub_v1", "google.cloud.firestore"):
            with contextlib.suppress(ImportError):
                __import__(module)
    if payload["engine"].startswith("pyvips"):
        import pyvips

        pyvips.cache_set_max(0)
    from image_pipeline import imaging  # noqa: F401

    sizes, fmt, quality = payload["sizes"], payload["format"], payload["quality"]
    data = Path(payload["path"]).read_bytes()
    gc.collect()
    before = status_kb("VmRSS") * 1024
    try:
        Path("/proc/self/clear_refs").write_text("5")  # peak mark := current RSS
        exact = True
    except OSError:
        exact = False
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = engines.ENGINES[payload["engine"]](data, [tuple(s) for s in sizes], fmt, quality)
    peak = status_kb("VmHWM") * 1024 if exact else 0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if not exact:
        peak = maxrss
    return {
        "before": before,
        "peak": peak,
        "added": peak - before,
        "exact": exact and maxrss >= maxrss_before,
        "outputs": [(w, h) for w, h, _ in out],
    }


def case_peak(engine: str, path: Path, import_main: bool) -> dict[str, Any]:
    """One cold run of ``engine`` on ``path`` in a fresh interpreter: before, peak, added."""
    from benchmarks.core import defaults

    sizes, fmt, quality = defaults()
    payload = {"engine": engine, "path": str(path), "import_main": import_main}
    payload |= {"sizes": sizes, "format": fmt, "quality": quality}
    return run_worker(__name__, payload, function_env() | {"VIPS_CONCURRENCY": "1"})


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """12 MP: added RSS, ours vs naive Pillow (and pyvips); 100 MP: absolute peak."""
    from benchmarks.core import have_pyvips

    photo = "coffee" if samples.have_photos() else "synthetic"
    small = (400, 300) if smoke else samples.SIZE_12MP
    big = (800, 600) if smoke else samples.SIZE_100MP
    label = "12MP" if not smoke else "400x300"
    rows: list[Row] = []
    path = samples.sample_path(photo, small, "jpeg")
    ours = case_peak("ours", path, False)
    naive = case_peak("pillow_naive", path, False)
    rows.append(
        Row(
            "memory",
            f"JPEG {label}: peak RSS added, ours vs naive Pillow",
            f"{ours['added'] / MB:.1f} MB",
            f"naive Pillow {naive['added'] / MB:.1f} MB",
            f"{naive['added'] / max(ours['added'], 1):.2f}x less",
            f"<= {TARGET_12MP_MB} MB",
            "met" if ours["added"] <= TARGET_12MP_MB * MB else "MISSED",
        )
    )
    if have_pyvips() and not smoke:
        vips = case_peak("pyvips_each", path, False)
        rows.append(
            Row(
                "memory",
                f"JPEG {label}: peak RSS added, ours vs pyvips thumbnail_buffer [1 thread]",
                f"{ours['added'] / MB:.1f} MB",
                f"pyvips {vips['added'] / MB:.1f} MB",
                f"{vips['added'] / max(ours['added'], 1):.2f}x less",
            )
        )
    if not smoke:
        # The two inputs the pixel limit alone let past a 1 GiB function (issue: 1277 and
        # 1003 MiB at 10950x10950): now the worst that passes must stay under it.
        rows += worst_case.rows((worst_case.PNG_16_BIT, worst_case.PNG_RGBA))
    if quick and not smoke:
        return rows
    big_path = samples.sample_path(photo, big, "jpeg")
    mp = f"{big[0] * big[1] / 1e6:.0f}MP" if not smoke else f"{big[0]}x{big[1]}"
    ours_big = case_peak("ours", big_path, True)
    naive_big = case_peak("pillow_naive", big_path, True)
    rows.append(
        Row(
            "memory",
            f"JPEG {mp} ({big_path.stat().st_size / MB:.1f} MB file), main.py + clients loaded: "
            f"absolute peak RSS (added {ours_big['added'] / MB:.0f} MB)",
            f"{ours_big['peak'] / MB:.0f} MiB",
            f"naive Pillow {naive_big['peak'] / MB:.0f} MiB",
            f"{ours_big['peak'] / (LIMIT_MIB * MB):.2f} of limit",
            f"<= {LIMIT_MIB} MiB",
            "met" if ours_big["peak"] <= LIMIT_MIB * MB else "MISSED",
        )
    )
    return rows


def main() -> None:
    """Worker entry: payload JSON on stdin, result JSON on the last stdout line."""
    print(json.dumps(measure(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
