"""`benchmarks/run [NAME ...] [--quick] [--markdown]`: one table for every benchmark run."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence

from benchmarks._common import CACHE, COLUMNS, Row, format_table, machine_info, save_results

# name -> (module, keyword arguments of its run()). The default run is every one but the
# last two: minutes of large files (every mode's worst allowed input), and a burst against a
# stack capped at one instance per function (its own emulators).
BENCHMARKS = {
    "peers": ("peers", {}),
    "memory": ("memory", {}),
    "e2e": ("e2e", {}),
    "coldstart": ("coldstart", {}),
    "worst": ("memory", {"every_mode": True}),
    "burst": ("e2e", {"capped": True}),
}
DEFAULT = ("peers", "memory", "e2e", "coldstart")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="Runs the benchmarks; prints one table of ratios against baselines "
        "measured in the same run.",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        choices=BENCHMARKS,
        help=f"any of {', '.join(BENCHMARKS)} (default: {' '.join(DEFAULT)})",
    )
    p.add_argument("--quick", action="store_true", help="fewer inputs and rounds")
    p.add_argument("--smoke", action="store_true", help="one tiny round (tests use it; no numbers)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--last", action="store_true", help="print the last saved results instead")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the chosen benchmarks; 1 when one of them crashed."""
    args = _parser().parse_args(argv)
    if args.last:
        saved = json.loads((CACHE / "last.json").read_text())
        print("machine: " + ", ".join(f"{k} {v}" for k, v in saved["machine"].items()))
        cells = [Row(**r).cells() for r in saved["rows"]]
        print(format_table(COLUMNS, cells, args.markdown))
        return 0
    names = args.names or list(DEFAULT)
    info, load, started = machine_info(), os.getloadavg()[0], time.perf_counter()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), file=sys.stderr)
    rows: list[Row] = []
    for name in names:
        module, options = BENCHMARKS[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            run = importlib.import_module(f"benchmarks.{module}").run
            rows += run(quick=args.quick, smoke=args.smoke, **options)
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc(file=sys.stderr)
            rows.append(Row(name, "crashed", f"{type(exc).__name__}: {exc}"[:160], status="FAILED"))
    case = f"{' '.join(names)}: wall time, 1-minute load average before / after"
    load_text = f"load {load:.2f} / {os.getloadavg()[0]:.2f} on {info['nproc']} cores"
    rows.append(Row("run", case, f"{time.perf_counter() - started:.0f} s", load_text))
    print(format_table(COLUMNS, [r.cells() for r in rows], args.markdown))
    if not args.smoke:
        print(f"results: {save_results(rows, info, sys.argv[1:])}", file=sys.stderr)
    return 1 if any(r.case == "crashed" for r in rows) else 0
