"""`benchmarks/run coldstart`: what a new function instance pays before its first answer.

`import main` in a fresh interpreter of the project's venv whose only source root is
`functions/` (as Cloud Functions runs it) against `import functions_framework` alone, and
functions-framework's spawn to its first response against a one-line function's.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks._common import FUNCTIONS, FUNCTIONS_MAIN, PROJECT_PYTHON, Row, function_env, judged
from infra.common.storage_events import eventarc_storage_event
from infra.local.processes import free_port
from infra.model.topology import FINALIZED

TARGET_IMPORT_MS = 500.0
# Prints the import's ms, then the file imported (checked: functions/main.py, not the root's).
_IMPORT = (
    "import time; t = time.perf_counter(); import {0}; "
    "print((time.perf_counter() - t) * 1000); print({0}.__file__)"
)
_HELLO = """import functions_framework


@functions_framework.cloud_event
def hello(event):
    return None
"""


def _env() -> dict[str, str]:
    """The function's settings, `functions/` as the only source root, PATH and HOME kept."""
    kept = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return function_env() | kept | {"PYTHONPATH": str(FUNCTIONS)}


def _timed_import(module: str, importtime: bool = False) -> str:
    """The child's output (stdout, or stderr's `-X importtime` table) of importing ``module``."""
    flags = ["-X", "importtime"] if importtime else []
    argv = [str(PROJECT_PYTHON), *flags, "-c", _IMPORT.format(module)]
    proc = subprocess.run(
        argv, cwd=FUNCTIONS, env=_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {proc.stderr[-1500:]}")
    return proc.stderr if importtime else proc.stdout


def measure_import(repeat: int) -> dict[str, float]:
    """Medians of `import main` and of `import functions_framework`, in ms, fresh each time."""
    _timed_import("main")  # warm the page cache and the .pyc files
    ours, framework = [], []
    for _ in range(repeat):
        ms, imported = _timed_import("main").split()[-2:]
        if Path(imported).resolve() != FUNCTIONS_MAIN:
            raise RuntimeError(f"`import main` loaded {imported}, not {FUNCTIONS_MAIN}")
        ours.append(float(ms))
        framework.append(float(_timed_import("functions_framework").split()[-2]))
    return {"inside": statistics.median(ours), "framework": statistics.median(framework)}


def heaviest_imports(top: int = 4) -> list[tuple[str, float]]:
    """What `import main` spends its time on (cumulative ms of main's direct imports)."""
    found = {}
    for line in _timed_import("main", importtime=True).splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(2)) <= 2 and m.group(3) != "main":  # main's own, not deeper
            found[m.group(3)] = int(m.group(1)) / 1000
    startup = {m.group(1) for m in re.finditer(r"\| (\S+)$", _timed_import("os", True), re.M)}
    ranked = sorted(found.items(), key=lambda kv: -kv[1])
    return [(name, ms) for name, ms in ranked if name not in startup][:top]


# A finalized event (binary mode) for an object outside the uploads bucket: acknowledged
# without work, so no emulator is needed.
_WHEN = "2024-01-01T00:00:00.000Z"
_OBJECT = {"bucket": "elsewhere", "name": "cold.jpg", "generation": "1", "metageneration": "1"}
_OBJECT |= {"contentType": "image/jpeg", "size": "1000", "timeCreated": _WHEN, "updated": _WHEN}
_HEADERS, _BODY = eventarc_storage_event(_OBJECT, "cold-start", FINALIZED, _WHEN)


def first_response(source: Path, target: str, timeout: float = 60.0) -> tuple[float, int]:
    """ms from spawning functions-framework to its first HTTP answer, and its status."""
    port = free_port()
    args = [str(PROJECT_PYTHON.parent / "functions-framework"), "--source", str(source)]
    args += ["--target", target, "--host", "127.0.0.1", "--port", str(port)]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", _BODY, _HEADERS)
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=source.parent,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    return (time.perf_counter() - started) * 1000, resp.status
            except urllib.error.HTTPError as exc:
                return (time.perf_counter() - started) * 1000, exc.code
            except (ConnectionError, urllib.error.URLError):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"functions-framework exited: {proc.communicate()[1][-1500:]}"
                    ) from None
                time.sleep(0.005)
        raise RuntimeError(f"no answer from functions-framework within {timeout} s")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """Import time against the framework's; first response against a hello function."""
    repeat = 1 if smoke else (4 if quick else 10)
    imp = measure_import(repeat)
    case = f"import functions/main.py, fresh interpreter (median of {repeat})"
    base = f"import functions_framework alone {imp['framework']:.0f} ms"
    ratio = f"{imp['inside'] / imp['framework']:.2f}x of framework"
    rows = [
        judged(
            "coldstart",
            case,
            f"{imp['inside']:.0f} ms",
            imp["inside"] <= TARGET_IMPORT_MS,
            f"<= {TARGET_IMPORT_MS:.0f} ms",
            base,
            ratio,
        )
    ]
    if smoke:
        return rows
    heavy = ", ".join(f"{name} {ms:.0f} ms" for name, ms in heaviest_imports())
    rows.append(Row("coldstart", "heaviest imports of main.py (cumulative, -X importtime)", heavy))
    n = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp) / "main.py"
        hello.write_text(_HELLO)
        pairs = [
            (first_response(FUNCTIONS_MAIN, "make_thumbnail"), first_response(hello, "hello")[0])
            for _ in range(n)
        ]
    ours, codes = statistics.median(p[0][0] for p in pairs), sorted({p[0][1] for p in pairs})
    base = statistics.median(p[1] for p in pairs)
    case = (
        f"functions-framework spawn to first response, make_thumbnail (median of {n}; HTTP {codes})"
    )
    ok = all(200 <= c < 300 for c in codes)
    status = "info" if ok else "FAILED"
    return [
        *rows,
        Row(
            "coldstart",
            case,
            f"{ours:.0f} ms",
            f"hello function {base:.0f} ms",
            f"{ours / base:.2f}x",
            "2xx",
            status,
        ),
    ]
