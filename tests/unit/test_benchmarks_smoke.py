"""Keeps benchmarks/ from rotting: the core benchmark, one tiny iteration, well-formed table.

Timings are never asserted (benchmarks report ratios; see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._common import COLUMNS, STATUSES

ROOT = Path(__file__).resolve().parents[2]


def smoke(name: str, cache: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`benchmarks/run NAME --smoke` with its cache in ``cache``; asserts it exited 0."""
    env = dict(os.environ, BENCH_CACHE=str(cache / name))  # one each: they may run at once
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "functions")])
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", name, "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture
def samples(pytestconfig: pytest.Config) -> Path:
    """The benchmarks' cache, kept between runs: generating the samples (a HEIC encode among
    them) costs more than the smoke run itself. A fresh clone starts empty."""
    assert pytestconfig.cache is not None, "needs pytest's cache provider (no -p no:cacheprovider)"
    return pytestconfig.cache.mkdir("benchmark-samples")


def test_core_benchmark_smoke_prints_a_well_formed_table(samples: Path) -> None:
    proc = smoke("core", samples, 60)
    header, rule, *lines = proc.stdout.strip().splitlines()
    assert header.split() == list(COLUMNS)
    # Column boundaries come from the dashes under the header.
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    assert len(spans) == len(COLUMNS)
    rows = [
        [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0] :].strip()]
        for line in lines
    ]
    *rows, summary = rows
    assert summary[0] == "run" and summary[2].endswith(" s"), summary
    assert rows, "no result rows"
    for row in rows:
        bench, case, value, _baseline, ratio, _target, status = row
        assert bench == "core" and case and value, row
        assert status in STATUSES and status != "FAILED", row
        if "ours vs" in case:
            assert re.fullmatch(r"\d+ms|[\d.]+ ms", value), row
            assert re.fullmatch(r"[\d.]+x", ratio), row
    assert any("ours vs naive Pillow" in row[1] for row in rows)
    assert any(row[1].endswith("0-255)") and row[6] == "met" for row in rows)  # same sizes


def test_formats_benchmark_smoke_runs_each_case(samples: Path) -> None:
    proc = smoke("formats", samples, 120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("formats ")]
    assert [line.split()[1] for line in lines] == [
        *("HEIC", "HEIC", "placeholder", "JPEG", "JPEG", "animated")
    ]
    assert not any("FAILED" in line for line in lines)
