"""Text from storage, printed safely on an operator's terminal.

Object names (and anything derived from them) may hold any character GCS accepts except
CR and LF: ESC sequences that move the cursor, retitle the window or rewrite earlier lines,
right-to-left overrides that reorder what is shown, NUL, DEL, C1 controls. Every tool prints
such text through `printable`, which keeps every printable character as it is (non-Latin
scripts and emoji included) and writes every other one as a Python-style escape. Backslashes
are doubled, so the escaped form is unambiguous: `a\\x1bb` is a name holding ESC, `a\\\\x1bb`
one holding a backslash followed by "x1b".
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object) -> str:
    """`text` with every non-printable character (Unicode categories C* and Z* other than the
    plain space, as `str.isprintable` defines them) escaped, and backslashes doubled."""
    value = str(text)
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(
        "\\\\" if char == "\\" else char if char.isprintable() else _escape(char) for char in value
    )


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Aligned columns under a header, every cell `printable`."""
    cells = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def quiet_broken_pipe(command: Callable[[], int]) -> int:
    """Runs `command`; when the reader of its output goes away (`scripts/local status |
    head`), it ends quietly with the status a SIGPIPE'd tool has, not a traceback."""
    try:
        return command()
    except BrokenPipeError:
        # Python would report the same error again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
