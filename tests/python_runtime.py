"""The Python a Cloud Run functions runtime id names (`infra.model.topology.FUNCTION_RUNTIME`):
the interpreter the functions' tests and the local stack must run on."""

from __future__ import annotations


def runtime_python_version(runtime: str) -> tuple[int, int]:
    """`python313` -> (3, 13)."""
    digits = runtime.removeprefix("python")
    if not (runtime.startswith("python3") and digits.isdigit() and len(digits) >= 2):
        raise ValueError(f"{runtime!r} is not a Python runtime id such as 'python313'")
    return int(digits[0]), int(digits[1:])
