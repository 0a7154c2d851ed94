"""Benchmark 4: cold start.

- Import: `import main` (functions/main.py) in a fresh interpreter whose only source root is
  `functions/`, as Cloud Functions runs it, timed inside the child with perf_counter;
  median of N. The baseline is `python -c pass` (the interpreter alone), timed from outside,
  next to the same child's wall time.
- First response: from spawning `functions-framework --target make_thumbnail` to the answer
  to a finalized CloudEvent for an object outside the uploads bucket (acknowledged without
  work, so no emulator is needed). The baseline is the same framework serving a one-line
  CloudEvent function, so the ratio is what our module costs on top of the framework.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks._common import FUNCTIONS, FUNCTIONS_MAIN, Row, function_env

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
    env = function_env()
    env["PYTHONPATH"] = str(FUNCTIONS)
    import os

    for key in ("PATH", "HOME", "LANG", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _wall(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed: {proc.stderr[-1500:]}")
    return wall, proc.stdout


def measure_import(repeat: int) -> dict[str, float]:
    """Medians: `import main` in-process and its process wall time, `import
    functions_framework` alone (the framework's floor), and `python -c pass` wall time."""
    env = _env()
    inside, wall, framework, bare = [], [], [], []
    ours, floor = _IMPORT.format("main"), _IMPORT.format("functions_framework")
    _wall([sys.executable, "-c", ours], FUNCTIONS, env)  # warm the page cache, .pyc
    for _ in range(repeat):
        w, out = _wall([sys.executable, "-c", ours], FUNCTIONS, env)
        ms, imported = out.strip().splitlines()[-2:]
        if Path(imported).resolve() != FUNCTIONS_MAIN:
            raise RuntimeError(f"`import main` loaded {imported}, not {FUNCTIONS_MAIN}")
        inside.append(float(ms))
        wall.append(w)
        out = _wall([sys.executable, "-c", floor], FUNCTIONS, env)[1]
        framework.append(float(out.strip().splitlines()[-2]))
        bare.append(_wall([sys.executable, "-c", "pass"], FUNCTIONS, env)[0])
    return {
        "inside": statistics.median(inside),
        "wall": statistics.median(wall),
        "framework": statistics.median(framework),
        "bare": statistics.median(bare),
    }


def _top_level_imports(code: str) -> dict[str, float]:
    """Top-level imports of `python -X importtime -c code` -> cumulative ms."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=FUNCTIONS,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(2)) <= 2:  # imported by main itself, not by a dependency
            found[m.group(3)] = int(m.group(1)) / 1000
    return found


def heaviest_imports(top: int = 4) -> list[tuple[str, float]]:
    """What `import main` spends its time on, without the interpreter's own start-up."""
    startup = set(_top_level_imports("pass"))
    found = {k: v for k, v in _top_level_imports("import main").items() if k not in startup}
    found.pop("main", None)
    return sorted(found.items(), key=lambda kv: -kv[1])[:top]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event_request(port: int) -> urllib.request.Request:
    body = {
        "bucket": "some-other-bucket",
        "name": "photos/cold.jpg",
        "generation": "1",
        "metageneration": "1",
        "contentType": "image/jpeg",
        "size": "1000",
        "timeCreated": "2024-01-01T00:00:00.000Z",
        "updated": "2024-01-01T00:00:00.000Z",
    }
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "benchmark-cold-start",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/some-other-bucket",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-subject": "objects/photos/cold.jpg",
        "ce-time": "2024-01-01T00:00:00.000Z",
    }
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/", json.dumps(body).encode(), headers, method="POST"
    )


def first_response(source: Path, target: str, timeout: float = 60.0) -> tuple[float, int]:
    """ms from spawning functions-framework to the first HTTP answer; and its status."""
    framework = Path(sys.executable).parent / "functions-framework"
    port = _free_port()
    args = [str(framework), "--source", str(source), "--target", target]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=source.parent,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(_event_request(port), timeout=5) as resp:
                    return (time.perf_counter() - t0) * 1000, resp.status
            except urllib.error.HTTPError as exc:
                return (time.perf_counter() - t0) * 1000, exc.code
            except (ConnectionError, urllib.error.URLError):
                if proc.poll() is not None:
                    tail = proc.stderr.read()[-1500:] if proc.stderr else ""
                    raise RuntimeError(f"functions-framework exited: {tail}") from None
                time.sleep(0.005)
        raise RuntimeError(f"no answer from functions-framework within {timeout} s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """Import time against the bare interpreter; first response against a hello function."""
    repeat = 1 if smoke else (4 if quick else 10)
    imp = measure_import(repeat)
    rows = [
        Row(
            "coldstart",
            f"import functions/main.py, fresh interpreter (median of {repeat}; process wall "
            f"{imp['wall']:.0f} ms vs python -c pass {imp['bare']:.0f} ms)",
            f"{imp['inside']:.0f} ms",
            f"import functions_framework alone {imp['framework']:.0f} ms",
            f"{imp['inside'] / imp['framework']:.2f}x of framework",
            f"<= {TARGET_IMPORT_MS:.0f} ms",
            "met" if imp["inside"] <= TARGET_IMPORT_MS else "MISSED",
        )
    ]
    if not smoke:
        heavy = heaviest_imports()
        rows.append(
            Row(
                "coldstart",
                "heaviest imports of main.py (cumulative, -X importtime)",
                ", ".join(f"{name} {ms:.0f} ms" for name, ms in heavy),
            )
        )
        n = 2 if quick else 5
        with tempfile.TemporaryDirectory() as tmp:
            hello = Path(tmp) / "main.py"
            hello.write_text(_HELLO)
            ours, base, codes = [], [], set()
            for _ in range(n):
                ms, code = first_response(FUNCTIONS_MAIN, "make_thumbnail")
                ours.append(ms)
                codes.add(code)
                base.append(first_response(hello, "hello")[0])
        ok = all(200 <= c < 300 for c in codes)
        rows.append(
            Row(
                "coldstart",
                f"functions-framework spawn -> first response, make_thumbnail (median of {n}; "
                f"HTTP {','.join(map(str, sorted(codes)))})",
                f"{statistics.median(ours):.0f} ms",
                f"hello function {statistics.median(base):.0f} ms",
                f"{statistics.median(ours) / statistics.median(base):.2f}x",
                "2xx",
                "info" if ok else "FAILED",
            )
        )
    return rows
