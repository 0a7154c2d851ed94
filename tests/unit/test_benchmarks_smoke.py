"""Keeps benchmarks/ from rotting: the peers benchmark, one tiny round, well-formed tables.

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


def test_peers_benchmark_smoke_prints_its_comparison_and_a_well_formed_table(
    tmp_path: Path,
) -> None:
    proc = smoke("peers", tmp_path, 120)
    lines = proc.stdout.strip().splitlines()
    comparison = [line.split() for line in lines if line.startswith("JPEG 400x300")]
    assert comparison[0][2] == "ours" and any(w[2:4] == ["naive", "Pillow"] for w in comparison)
    assert (tmp_path / "peers" / "peers.md").read_text().startswith("| input | engine |")
    start = next(i for i, line in enumerate(lines) if line.split() == list(COLUMNS))
    rule, *rest = lines[start + 1 :]
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    assert len(spans) == len(COLUMNS)
    rows = [
        [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0] :].strip()] for line in rest
    ]
    *rows, summary = rows
    assert summary[0] == "run" and summary[2].endswith(" s"), summary
    for row in rows:
        assert row[0] == "peers" and row[6] in STATUSES and row[6] != "FAILED", row
    assert any(row[1] == "engines whose sizes differ from ours" and row[6] == "met" for row in rows)
