"""Shared pieces: result rows, the table, timing helpers, worker subprocesses, machine facts."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
# The functions' entry module. The repository root holds another main.py (the CDKTF app),
# and a worker has the root first on its path (`python -m benchmarks...` from ROOT).
FUNCTIONS_MAIN = FUNCTIONS / "main.py"
# Samples, the last results and the benchmark's own local stack (BENCH_CACHE overrides).
CACHE = Path(os.environ.get("BENCH_CACHE") or ROOT / ".local" / "benchmarks")

COLUMNS = ("bench", "case", "value", "baseline", "ratio", "target", "status")
STATUSES = ("met", "MISSED", "info", "skipped", "FAILED")


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    `value` is what we measured for our code; `baseline` the comparison measured in the same
    run (empty when there is none). `ratio` is written as text because its meaning differs
    per row ("4.2x faster", "0.31 of limit"); `status` is one of STATUSES.
    """

    bench: str
    case: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    status: str = "info"

    def cells(self) -> tuple[str, ...]:
        """The row as strings, in COLUMNS order."""
        return tuple(str(getattr(self, c)) for c in COLUMNS)


def speedup_row(
    bench: str,
    case: str,
    ours_ms: float,
    base_name: str,
    base_ms: float,
    target: float | None = None,
) -> Row:
    """A row comparing our time with a baseline's: ratio = baseline / ours (higher = faster)."""
    ratio = base_ms / ours_ms if ours_ms > 0 else float("inf")
    status = "info" if target is None else ("met" if ratio >= target else "MISSED")
    return Row(
        bench,
        case,
        f"{ours_ms:.1f} ms",
        f"{base_name} {base_ms:.1f} ms",
        f"{ratio:.2f}x",
        "" if target is None else f">= {target:g}x",
        status,
    )


def format_table(rows: Iterable[Row], markdown: bool = False) -> str:
    """Fixed-width text table (or a Markdown one) with a header line."""
    data = [COLUMNS, *(r.cells() for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(data[0]) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in data[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in data) for i in range(len(COLUMNS))]
    out = []
    for n, r in enumerate(data):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Runs `fn` warmup + repeat times; returns the median and all samples, in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples), samples


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[k]


def child_env(extra: Mapping[str, str] | None = None, unset: Iterable[str] = ()) -> dict[str, str]:
    """Environment for a child Python: repo root and functions/ importable, like scripts."""
    env = {k: v for k, v in os.environ.items() if k not in set(unset)}
    paths = [str(ROOT), str(FUNCTIONS)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def run_worker(
    module: str,
    payload: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    unset: Iterable[str] = (),
) -> dict[str, Any]:
    """Runs `python -m module` in a fresh interpreter with `payload` as JSON on stdin.

    The worker prints one JSON object as its last stdout line; that object is returned.
    A failing worker raises RuntimeError with its stderr tail.
    """
    proc = subprocess.run(
        [sys.executable, "-m", module],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=child_env(env, unset),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"{module} worker failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1])


def import_function_main() -> ModuleType:
    """functions/main.py as module `main`, as a function instance holds it, loaded by path:
    a plain `import main` in a worker finds the CDKTF app at the repository root first."""
    module = sys.modules.get("main")
    if module is None:
        spec = importlib.util.spec_from_file_location("main", FUNCTIONS_MAIN)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {FUNCTIONS_MAIN}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["main"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["main"]
            raise
    if Path(module.__file__ or "").resolve() != FUNCTIONS_MAIN:
        raise RuntimeError(f"module 'main' is {module.__file__}, not {FUNCTIONS_MAIN}")
    return module


def machine_info() -> dict[str, str]:
    """Facts that make a result comparable: cores, CPU, RAM, versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import PIL
        from PIL import features

        info["pillow"] = PIL.__version__
        turbo = features.version_feature("libjpeg_turbo")
        info["libjpeg"] = f"libjpeg-turbo {turbo}" if turbo else str(features.version("jpg"))
        info["libwebp"] = str(features.version("webp"))
    except ImportError:
        info["pillow"] = "not installed"
    try:
        import pyvips

        info["libvips"] = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
        info["pyvips"] = pyvips.__version__
    except (ImportError, OSError):
        info["libvips"] = "not installed"
    return info


def save_results(rows: list[Row], info: Mapping[str, str], argv: list[str]) -> Path:
    """Writes the rows and machine facts to .local/benchmarks/last.json; returns the path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "last.json"
    path.write_text(
        json.dumps(
            {"argv": argv, "machine": dict(info), "rows": [asdict(r) for r in rows]}, indent=2
        )
    )
    return path


def function_env(uploads: str = "bench-uploads") -> dict[str, str]:
    """A complete function environment (the Settings contract) with default settings.

    The emulator hosts point at a closed local port: nothing measured here may reach a
    cloud, and anything that tried would fail loudly instead of silently timing out.
    """
    env = {
        "GOOGLE_CLOUD_PROJECT": "bench-project",
        "UPLOADS_BUCKET": uploads,
        "THUMBNAILS_BUCKET": "bench-thumbnails",
        "IMAGE_EVENTS_TOPIC": "bench-image-events",
    }
    try:
        sys.path[:0] = [p for p in (str(ROOT), str(FUNCTIONS)) if p not in sys.path]
        from image_pipeline.settings import Settings

        env = Settings.from_env(env).to_env()
    except ImportError:
        pass
    closed = "127.0.0.1:9"
    env |= {
        "STORAGE_EMULATOR_HOST": f"http://{closed}",
        "PUBSUB_EMULATOR_HOST": closed,
        "FIRESTORE_EMULATOR_HOST": closed,
    }
    return env


def status_kb(field: str) -> int:
    """A /proc/self/status field in kB (VmRSS now, VmHWM the peak since clear_refs)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]
