"""Peak memory of one cold thumbnail run in a fresh interpreter (`python -m` worker).

The worker imports everything first (and, with `import_main`, `functions/main.py`, so the
absolute number is what a function instance holds), reads the source into memory, resets
the kernel's peak-RSS mark (`/proc/self/clear_refs`), runs the engine once (a cold, first
run) and reads the peak back (`VmHWM`). "Added" is that peak minus the RSS just before the
run, so the input bytes, the interpreter and the libraries are not counted in it; the
absolute peak counts everything. `benchmarks/memory.py` and `benchmarks/worst_case.py` use it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import sys
from pathlib import Path
from typing import Any

from benchmarks import engines
from benchmarks._common import function_env, import_function_main, run_worker, status_kb


def measure(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker body: one cold run of one engine on one file; bytes of RSS."""
    from PIL import Image

    Image.init()  # every plugin registered before the baseline, like a warm instance
    main_file = None
    if payload.get("import_main"):
        # What a function instance holds after its first request: functions/main.py and
        # the client libraries it creates lazily.
        main_file = import_function_main().__file__
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
        "main": main_file,
    }


def case_peak(engine: str, path: Path, import_main: bool) -> dict[str, Any]:
    """One cold run of ``engine`` on ``path`` in a fresh interpreter: before, peak, added."""
    from benchmarks.core import defaults

    sizes, fmt, quality = defaults()
    payload = {"engine": engine, "path": str(path), "import_main": import_main}
    payload |= {"sizes": sizes, "format": fmt, "quality": quality}
    return run_worker(__name__, payload, function_env() | {"VIPS_CONCURRENCY": "1"})


def main() -> None:
    """Worker entry: payload JSON on stdin, result JSON on the last stdout line."""
    print(json.dumps(measure(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
