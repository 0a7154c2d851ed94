"""`benchmarks/run [core|memory|e2e|coldstart|synth|burst ...] [--quick]`: one table for all."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence

from benchmarks._common import CACHE, Row, format_table, machine_info, save_results

BENCHMARKS = ("core", "memory", "e2e", "coldstart", "synth", "formats")
# Run only when named: minutes of large files (every mode's worst allowed input), and a
# burst against a stack capped at one instance per function (its own emulators).
ON_REQUEST = {"worst": "worst_case", "burst": "burst"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="Runs the benchmarks and prints one table of ratios against baselines "
        "measured in the same run.",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(BENCHMARKS)} (default: all), or worst (every mode's worst "
        "allowed input) or burst (a capped stack drains N uploads)",
    )
    p.add_argument("--quick", action="store_true", help="fewer images and repetitions")
    p.add_argument(
        "--smoke", action="store_true", help="one tiny iteration (tests use this; no numbers)"
    )
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--last",
        action="store_true",
        help="print the last saved results (.local/benchmarks/last.json) instead of running",
    )
    return p


def _print_last(markdown: bool) -> int:
    path = CACHE / "last.json"
    if not path.exists():
        print(f"no saved results: {path} (run benchmarks/run first)", file=sys.stderr)
        return 1
    saved = json.loads(path.read_text())
    print("machine: " + ", ".join(f"{k} {v}" for k, v in saved["machine"].items()))
    print("command: benchmarks/run " + " ".join(saved["argv"]))
    print(format_table([Row(**r) for r in saved["rows"]], markdown=markdown))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the chosen benchmarks (all by default); 1 when one of them crashed."""
    args = _parser().parse_args(argv)
    if args.last:
        return _print_last(args.markdown)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS and n not in ON_REQUEST]
    if unknown:
        _parser().error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHMARKS)})")
    info = machine_info()
    print(
        f"machine: {info['nproc']} cores, {info['cpu']}, {info['ram']}; Python {info['python']}, "
        f"Pillow {info.get('pillow')}, libvips {info.get('libvips')}; "
        f"load average {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows: list[Row] = []
    crashed = False
    for name in names:
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{ON_REQUEST.get(name, name)}")
            rows.extend(module.run(quick=args.quick, smoke=args.smoke))
        except Exception as exc:  # one broken benchmark must not hide the others
            crashed = True
            traceback.print_exc(file=sys.stderr)
            rows.append(Row(name, "crashed", f"{type(exc).__name__}: {exc}"[:160], status="FAILED"))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    rows.append(
        Row(
            "run",
            f"{' '.join(names)}{' --quick' if args.quick else ''}: wall time; 1-min load "
            "average before/after (background load skews absolute numbers, less so ratios)",
            f"{time.perf_counter() - started:.0f} s",
            f"load {load_before:.2f} / {os.getloadavg()[0]:.2f} on {info['nproc']} cores",
        )
    )
    print(format_table(rows, markdown=args.markdown))
    if not args.smoke:
        path = save_results(rows, info, list(argv if argv is not None else sys.argv[1:]))
        print(f"results: {path}", file=sys.stderr)
    return 1 if crashed else 0
