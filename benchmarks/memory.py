"""Benchmark 2: peak memory of one thumbnail run, each case in a fresh interpreter
(`benchmarks/peak_rss.py` measures one).

Also the worst allowed 16-bit gray and RGBA PNGs at the limits (`benchmarks/worst_case.py`).
"""

from __future__ import annotations

from benchmarks import samples, worst_case
from benchmarks._common import Row
from benchmarks.peak_rss import case_peak

MB = 1024 * 1024
TARGET_12MP_MB = 80
LIMIT_MIB = 512


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """12 MP: added RSS, ours vs naive Pillow (and pyvips); 100 MP: absolute peak."""
    from benchmarks.core import have_pyvips

    photo = "coffee" if samples.have_photos() else "synthetic"
    small = (400, 300) if smoke else samples.SIZE_12MP
    big = (800, 600) if smoke else samples.SIZE_100MP
    label = "12MP" if not smoke else "400x300"
    rows: list[Row] = []
    path = samples.sample_path(photo, small, "jpeg")
    ours = case_peak("ours", path, False)
    naive = case_peak("pillow_naive", path, False)
    rows.append(
        Row(
            "memory",
            f"JPEG {label}: peak RSS added, ours vs naive Pillow",
            f"{ours['added'] / MB:.1f} MB",
            f"naive Pillow {naive['added'] / MB:.1f} MB",
            f"{naive['added'] / max(ours['added'], 1):.2f}x less",
            f"<= {TARGET_12MP_MB} MB",
            "met" if ours["added"] <= TARGET_12MP_MB * MB else "MISSED",
        )
    )
    if have_pyvips() and not smoke:
        vips = case_peak("pyvips_each", path, False)
        rows.append(
            Row(
                "memory",
                f"JPEG {label}: peak RSS added, ours vs pyvips thumbnail_buffer [1 thread]",
                f"{ours['added'] / MB:.1f} MB",
                f"pyvips {vips['added'] / MB:.1f} MB",
                f"{vips['added'] / max(ours['added'], 1):.2f}x less",
            )
        )
    if not smoke:
        # The two inputs the pixel limit alone let past a 1 GiB function (issue: 1277 and
        # 1003 MiB at 10950x10950): now the worst that passes must stay under it.
        rows += worst_case.rows((worst_case.PNG_16_BIT, worst_case.PNG_RGBA))
    if quick and not smoke:
        return rows
    big_path = samples.sample_path(photo, big, "jpeg")
    mp = f"{big[0] * big[1] / 1e6:.0f}MP" if not smoke else f"{big[0]}x{big[1]}"
    ours_big = case_peak("ours", big_path, True)
    naive_big = case_peak("pillow_naive", big_path, True)
    rows.append(
        Row(
            "memory",
            f"JPEG {mp} ({big_path.stat().st_size / MB:.1f} MB file), main.py + clients loaded: "
            f"absolute peak RSS (added {ours_big['added'] / MB:.0f} MB)",
            f"{ours_big['peak'] / MB:.0f} MiB",
            f"naive Pillow {naive_big['peak'] / MB:.0f} MiB",
            f"{ours_big['peak'] / (LIMIT_MIB * MB):.2f} of limit",
            f"<= {LIMIT_MIB} MiB",
            "met" if ours_big["peak"] <= LIMIT_MIB * MB else "MISSED",
        )
    )
    return rows
