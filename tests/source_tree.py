"""The files of the working tree (tracked, and untracked but not ignored), and which of them
are non-test source: Python, shell and JavaScript outside tests/, plus the extensionless
scripts. Shared by the guards on file size, function size, the line budget and dead code."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SOURCE = re.compile(r"\.(py|sh|js)$|^scripts/[^./]+$|^benchmarks/run$|^\.ci/run$")


@cache
def tree_files() -> tuple[str, ...]:
    """Paths relative to ROOT, as git sees the tree (a deleted but still tracked file is left
    out)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return tuple(sorted({p for p in listed if p and (ROOT / p).is_file()}))


def source_files() -> list[str]:
    """Non-test source: what the line budget counts."""
    return [p for p in tree_files() if not p.startswith("tests/") and _SOURCE.search(p)]


def python_sources() -> list[str]:
    return [p for p in source_files() if p.endswith(".py")]


def line_count(path: str) -> int:
    """Lines as `wc -l` counts them (blank lines and comments included)."""
    return (ROOT / path).read_bytes().count(b"\n")
