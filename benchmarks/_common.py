"""Shared pieces: result rows, tables, worker subprocesses, the defaults, machine facts."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import features

from image_pipeline.settings import Settings, Tunables

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
# The functions' entry module. The repository root holds another main.py (the CDKTF app),
# and a worker has the root first on its path (`python -m benchmarks...` from ROOT).
FUNCTIONS_MAIN = FUNCTIONS / "main.py"
# What a function instance runs: the project's interpreter, without the benchmark-only
# packages benchmarks/run layers on top of it.
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
# Samples, the last results and the benchmark's own local stack (BENCH_CACHE overrides).
CACHE = Path(os.environ.get("BENCH_CACHE") or ROOT / ".local" / "benchmarks")

COLUMNS = ("bench", "case", "value", "baseline", "ratio", "target", "status")
STATUSES = ("met", "MISSED", "info", "skipped", "FAILED")


@dataclass(frozen=True)
class Row:
    """One line of the results table: `value` ours, `baseline` the comparison measured in the
    same run, `ratio` text (its meaning differs per row: "4.2x", "0.31 of 1Gi")."""

    bench: str
    case: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    status: str = "info"

    def cells(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, c)) for c in COLUMNS)


def format_table(
    header: Sequence[str], cells: Iterable[Sequence[str]], markdown: bool = False
) -> str:
    """A fixed-width text table (or a Markdown one) under ``header``."""
    data = [tuple(header), *(tuple(row) for row in cells)]
    if markdown:
        lines = ["| " + " | ".join(data[0]) + " |", "|" + "---|" * len(header)]
        return "\n".join(
            lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in data[1:]]
        )
    widths = [max(len(r[i]) for r in data) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in data]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))]


def defaults() -> tuple[list[tuple[int, int]], int]:
    """The functions' default boxes and quality."""
    tunables = Tunables()
    return [(b.width, b.height) for b in tunables.thumbnail_sizes], tunables.thumbnail_quality


class Worker:
    """A fresh interpreter (or ``argv``) pinned to ``cpus``: a JSON request a line on its stdin,
    its answer a line on its stdout (`serve`). ``with`` closes it."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cpus: set[int] | None = None):
        path = [str(ROOT), str(FUNCTIONS), os.environ.get("PYTHONPATH")]  # as scripts set it
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path)), **env},
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )

    def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.proc.args} worker exited ({self.proc.wait()})")
        return dict(json.loads(line))

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_: object) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=600)


def serve(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A worker's loop: each request on stdin answered on stdout; one that raises (an engine
    that cannot read the input) is answered ``{"error": ...}``, said in the table."""
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        print(json.dumps(reply), flush=True)


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


def function_env() -> dict[str, str]:
    """A complete function environment (the Settings contract) with default settings. The
    emulator hosts point at a closed port: nothing here may reach a cloud, and anything that
    tried fails loudly instead of timing out."""
    names = {"UPLOADS_BUCKET": "bench-uploads", "THUMBNAILS_BUCKET": "bench-thumbnails"}
    names |= {"GOOGLE_CLOUD_PROJECT": "bench-project", "IMAGE_EVENTS_TOPIC": "bench-image-events"}
    closed = "127.0.0.1:9"
    hosts = {"PUBSUB_EMULATOR_HOST": closed, "FIRESTORE_EMULATOR_HOST": closed}
    return Settings.from_env(names).to_env() | hosts | {"STORAGE_EMULATOR_HOST": f"http://{closed}"}


def status_kb(field: str) -> int:
    """A /proc/self/status field in kB (VmRSS now, VmHWM the peak since clear_refs)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


def machine_info() -> dict[str, str]:
    """Facts that make a result comparable: cores, CPU, RAM, versions."""
    cpuinfo, meminfo = (Path(f"/proc/{n}").read_text() for n in ("cpuinfo", "meminfo"))
    cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    ram = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.M)
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu.group(1) if cpu else "unknown",
        "ram": f"{int(ram.group(1)) / 2**20:.1f} GiB" if ram else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "pillow": str(features.version("pil")),
        "libjpeg-turbo": str(features.version_feature("libjpeg_turbo")),
        "libwebp": str(features.version("webp")),
    }
    try:
        import pyvips

        info["libvips"] = ".".join(str(pyvips.version(i)) for i in range(3))
    except (ImportError, OSError):
        info["libvips"] = "not installed"
    script = "console.log(process.version, 'sharp', require('sharp').versions.sharp)"
    node = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=False)
    info["node"] = node.stdout.strip() or "no node with sharp"
    return info


def save_results(rows: list[Row], info: Mapping[str, str], argv: list[str]) -> Path:
    """Writes the rows and machine facts to .local/benchmarks/last.json; returns the path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "last.json"
    results = {"argv": argv, "machine": dict(info), "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(results, indent=2))
    return path


def judged(bench: str, case: str, value: str, ok: bool, target: str, *rest: str) -> Row:
    """A row against a target (``rest``: baseline, ratio): met or MISSED."""
    return Row(bench, case, value, *rest, target=target, status="met" if ok else "MISSED")
