"""Benchmark 5: `python main.py` (the CDKTF synth): wall time and peak memory.

Each run is a fresh process writing into a temporary `CDKTF_OUTDIR` (so the repository's
`cdktf.out/` is left alone). Peak memory is reported twice: the largest single process
(`ru_maxrss` from `wait4`, which covers the Python app and the Node.js jsii runtime it
starts) and, with psutil, the largest sum over the whole process tree, sampled every
20 ms. The baseline is an empty CDKTF app (one stack, no resources): the fixed cost of
Python + jsii + Node that any CDKTF Python app pays.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, Row, child_env

_EMPTY_APP = """from cdktf import App, TerraformStack

app = App()
TerraformStack(app, "empty")
app.synth()
"""
MB = 1024 * 1024


def _tree_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    try:
        import psutil
    except ImportError:
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    peak = 0
    while not stop.is_set():
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        except psutil.Error:
            break
        peak = max(peak, total)
        stop.wait(0.02)
    out.append(peak)


def synth_once(script: Path, cwd: Path) -> dict[str, Any]:
    """One synth in a fresh process: wall ms, largest process, largest tree sum (bytes)."""
    with tempfile.TemporaryDirectory() as outdir:
        env = child_env({"CDKTF_OUTDIR": outdir})
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stop, tree = threading.Event(), []
        sampler = threading.Thread(target=_tree_rss, args=(proc.pid, stop, tree), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = (time.perf_counter() - t0) * 1000
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if proc.returncode != 0:
            raise RuntimeError(f"{script.name} exited {proc.returncode}: {err[-1500:]}")
        written = sorted(str(p.relative_to(outdir)) for p in Path(outdir).rglob("*.tf.json"))
    return {
        "wall": wall,
        "maxrss": usage.ru_maxrss * 1024,
        "tree": tree[0] if tree else 0,
        "written": written,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """Our synth vs the empty app, median of N runs each, interleaved."""
    n = 1 if (quick or smoke) else 2
    ours, empty = [], []
    with tempfile.TemporaryDirectory() as tmp:
        empty_app = Path(tmp) / "empty_app.py"
        empty_app.write_text(_EMPTY_APP)
        for _ in range(n):
            ours.append(synth_once(ROOT / "main.py", ROOT))
            empty.append(synth_once(empty_app, Path(tmp)))
    stacks = ", ".join(ours[0]["written"]) or "no .tf.json written"
    wall, base = _median(ours, "wall"), _median(empty, "wall")
    rows = [
        Row(
            "synth",
            f"python main.py: wall time (median of {n}; wrote {stacks})",
            f"{wall / 1000:.1f} s",
            f"empty CDKTF app {base / 1000:.1f} s",
            f"{wall / base:.2f}x",
            "",
            "info" if ours[0]["written"] else "FAILED",
        ),
        Row(
            "synth",
            "python main.py: peak RSS, largest process (ru_maxrss)",
            f"{_median(ours, 'maxrss') / MB:.0f} MiB",
            f"empty CDKTF app {_median(empty, 'maxrss') / MB:.0f} MiB",
            f"{_median(ours, 'maxrss') / _median(empty, 'maxrss'):.2f}x",
        ),
    ]
    if ours[0]["tree"]:
        rows.append(
            Row(
                "synth",
                "python main.py: peak RSS, whole process tree (Python + Node, sampled)",
                f"{_median(ours, 'tree') / MB:.0f} MiB",
                f"empty CDKTF app {_median(empty, 'tree') / MB:.0f} MiB",
                f"{_median(ours, 'tree') / max(_median(empty, 'tree'), 1):.2f}x",
            )
        )
    return rows
