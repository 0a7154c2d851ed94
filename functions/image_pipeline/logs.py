"""Structured logs: one JSON object per line on stdout, which Cloud Logging parses.

``severity`` and ``message`` are the special fields Cloud Logging reads, as is
``logging.googleapis.com/trace`` (it ties a line to the request's trace) and
``stack_trace`` (Error Reporting picks it up).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

TRACE_FIELD = "logging.googleapis.com/trace"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/.*)?")


def trace_fields(
    project: str, headers: Mapping[str, str], traceparent: str | None
) -> dict[str, str]:
    """The trace field for a log line: the trace id of a W3C ``traceparent`` (the CloudEvent
    extension's, else the header's), else of an ``X-Cloud-Trace-Context`` header."""
    traceparent = traceparent or headers.get("traceparent") or ""
    match = _TRACEPARENT.fullmatch(traceparent.strip().lower())
    if not match or match[1] == "0" * 32:
        match = _CLOUD_TRACE.fullmatch((headers.get("X-Cloud-Trace-Context") or "").strip())
    return {TRACE_FIELD: f"projects/{project}/traces/{match[1].lower()}"} if match else {}


class Logger:
    """Writes lines carrying the bound fields (event id, object, trace, ...)."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def bind(self, **fields: Any) -> Logger:
        return Logger(**{**self.fields, **fields})

    def log(self, severity: str, message: str, **fields: Any) -> None:
        entry = {"severity": severity, "message": message, **self.fields, **fields}
        line = json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def info(self, message: str, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("ERROR", message, **fields)

    def exception(self, message: str, **fields: Any) -> None:
        """An ERROR line with the stack trace of the exception being handled, as
        ``logging.Logger.exception``; Error Reporting groups on the trace."""
        exc = sys.exception()
        stack = "".join(traceback.format_exception(exc)) if exc else None
        self.error(message, error=f"{type(exc).__name__}: {exc}", stack_trace=stack, **fields)
