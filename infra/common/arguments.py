"""Command-line arguments of the operator tools, checked where they are read.

Every refusal is one line on stderr and exit code 2 (argparse's code for bad usage), never
a traceback: `Parser.error` prints no usage block, and `refuse` is the same line for a
problem found after parsing (a corrupt checkpoint file, a bad setting).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import NoReturn

from infra.common.terminal import printable

USAGE_ERROR = 2
# Firestore document ids: no '/', not '.' or '..', not __.*__, at most 1500 bytes of UTF-8
# (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields).
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)
MAX_ID_BYTES = 1500


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`--help` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        refuse(f"{self.prog}: {message} (see --help)")


def refusal(message: str) -> int:
    """Prints `error: message` (one line, escaped); returns the usage-error code."""
    print(f"error: {printable(message)}", file=sys.stderr)
    return USAGE_ERROR


def refuse(message: str) -> NoReturn:
    """`refusal`, then exit."""
    raise SystemExit(refusal(message))


def doc_id_error(value: str) -> str | None:
    """Why `value` cannot be a Firestore document id (None when it can)."""
    if not value:
        return "an id cannot be empty"
    if "/" in value:
        return f"{value!r} contains '/' (it would name a nested document)"
    if value in (".", ".."):
        return f"{value!r} is not a document id"
    if _RESERVED_ID.fullmatch(value):
        return f"{value!r} is reserved (ids matching __.*__ are Firestore's)"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return f"an id is at most {MAX_ID_BYTES} bytes"
    return None


def doc_id(value: str) -> str:
    """argparse type: a valid Firestore document id."""
    if problem := doc_id_error(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
    integer: bool = False,
) -> Callable[[str], float]:
    """argparse type: a finite number in [low, high] (or > above); `integer`: a whole one."""

    def parse(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than {above:g}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {high:g}")
        return value

    parse.__name__ = "whole number" if integer else "number"  # argparse names the type so
    return parse
