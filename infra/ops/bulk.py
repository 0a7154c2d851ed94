"""One bounded pass, what `scripts/backfill` and `scripts/erase` share: a listing in name
order, a dry run unless told to execute, at most `limit` items at most `rate` a second, and a
checkpoint after each item (docs/deploy-and-operate.md, "Backfill"). Bounded on purpose: the
Firebase resize extension dropped its backfill after a runaway bill (firebase/extensions#3189).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from infra.common import arguments
from infra.common.paths import ROOT
from infra.common.terminal import printable

T = TypeVar("T")
DEFAULT_LIMIT = 1000


class CheckpointError(ValueError):
    """The --checkpoint path cannot be read or written as a checkpoint; the message says why."""


@dataclass
class Checkpoint:
    """Where the last run stopped and what it counted; cumulative over resumed runs."""

    selection: str  # what the pass goes through: a checkpoint of another one is refused
    last_name: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    @classmethod
    def load(cls, path: Path, selection: str) -> Checkpoint:
        """The saved position for this selection; a fresh one after a full pass. A file
        that is not a checkpoint raises CheckpointError (it is never replaced)."""
        _check_writable(path)
        if not path.exists():
            return cls(selection)
        try:
            saved = cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"--checkpoint {path} is not a checkpoint: {exc}") from None
        kinds = (str, str, dict, bool)
        if not all(isinstance(v, k) for v, k in zip(asdict(saved).values(), kinds, strict=True)):
            raise CheckpointError(f"--checkpoint {path}: a field is mistyped")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in saved.counts.values()):
            raise CheckpointError(f"--checkpoint {path}: a count is not a whole number")
        if saved.selection != selection:
            raise CheckpointError(f"{path} belongs to {saved.selection}; pass another --checkpoint")
        return cls(selection) if saved.complete else saved

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # atomic: an interrupted run never leaves half a checkpoint


def _check_writable(path: Path) -> None:
    """Refuses, before anything is done, a checkpoint that could never be saved."""
    if path.exists() and not path.is_file():
        raise CheckpointError(f"--checkpoint {path} is not a file")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"--checkpoint {path} cannot be created ({folder} is not writable)")


@dataclass(frozen=True)
class Tool:
    """A tool that makes passes: its name, what a dry run would do and a run did, and what
    it counts (`Tool("backfill", ("process", "sent"), "objects")`)."""

    name: str
    verbs: tuple[str, str]
    noun: str


@dataclass
class Pass:
    """One bounded pass of a tool."""

    tool: Tool
    checkpoint: Checkpoint
    path: Path
    limit: int
    rate: float = 0.0
    execute: bool = False
    out: TextIO | None = None
    err: TextIO | None = None
    selected: int = 0
    failed: int = 0
    _next_at: float = 0.0  # the rate limit: the earliest time of the next action

    def each(self, listing: Iterable[T], name_of: Callable[[T], str]) -> Iterator[T]:
        """The listing's items, up to the limit; after each one, the checkpoint moves past it."""
        if self.checkpoint.last_name:
            where = printable(self.path)
            self._say(f"resuming after '{printable(self.checkpoint.last_name)}' ({where})", True)
        for item in listing:
            if self.selected >= self.limit:
                break
            self.count("listed")
            yield item
            self.checkpoint.last_name = name_of(item)
            self._save()
        else:
            self.checkpoint.complete = True
        self._save()
        done, verb = self.selected - self.failed, self.tool.verbs[1]
        if self.execute:
            said = f"{verb} {done}, failed {self.failed}"
        else:
            said = f"dry run: {self.selected} {self.tool.noun} would be {verb}; add --execute"
        counts = ", ".join(f"{n} {what}" for what, n in self.checkpoint.counts.items())
        self._say(f"{said} ({counts})")
        if not self.checkpoint.complete:
            where = printable(self.checkpoint.last_name)
            self._say(f"stopped at --limit {self.limit}; the next run continues after '{where}'")

    def count(self, what: str) -> None:
        self.checkpoint.counts[what] = self.checkpoint.counts.get(what, 0) + 1

    def act(self, what: str, details: Iterable[str], action: Callable[[], str | None]) -> None:
        """Selects one item: a dry run says what it would do; a run does it (at the rate),
        then says what it did or why it failed."""
        self.selected += 1
        lines = "".join(f"\n  {printable(d)}" for d in details)
        if not self.execute:
            self._say(f"would {self.tool.verbs[0]} {printable(what)}{lines}")
            return
        delay = self._next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_at = time.monotonic() + (1.0 / self.rate if self.rate > 0 else 0.0)
        error = action()
        self.failed += bool(error)
        self.count("failed" if error else self.tool.verbs[1])
        if error:
            self._say(f"FAILED {printable(what)}: {printable(error)}")
        else:
            self._say(f"{self.tool.verbs[1]} {printable(what)}{lines}")

    def _save(self) -> None:
        if self.execute:
            self.checkpoint.save(self.path)

    def _say(self, line: str, to_err: bool = False) -> None:
        print(line, file=(self.err or sys.stderr) if to_err else self.out, flush=True)


def start(
    tool: Tool,
    selection: str,
    *,
    checkpoint_path: Path,
    limit: int = DEFAULT_LIMIT,
    rate: float = 10.0,
    execute: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> Pass:
    """A pass over `selection` from its checkpoint, printing to `out` (where it resumes: `err`)."""
    checkpoint = Checkpoint.load(checkpoint_path, selection)
    return Pass(tool, checkpoint, checkpoint_path, limit, rate, execute, out, err)


def add_arguments(parser: argparse.ArgumentParser, tool: Tool, execute: str) -> None:
    """The flags that bound a pass: --limit, --rate, --execute, --checkpoint."""
    parser.add_argument(
        "--limit",
        type=arguments.number(low=1, integer=True),
        default=DEFAULT_LIMIT,
        help=f"hard cap on {tool.noun} one run acts on (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--rate",
        type=arguments.number(above=0),
        default=10.0,
        help=f"{tool.noun} per second (10)",
    )
    parser.add_argument("--execute", action="store_true", help=f"{execute} (default: dry run)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help=f"resume file (default: .local/{tool.name}/<project>-<bucket>-<selection hash>.json)",
    )


def options(
    args: argparse.Namespace, tool: Tool, project: str, bucket: str, key: str
) -> dict[str, Any]:
    """What the flags of `add_arguments` ask of a pass over `key`: bounds and a checkpoint,
    by default one file per tool, bucket and selection (each keeps its own position)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    default = ROOT / ".local" / tool.name / f"{project}-{bucket}-{digest}.json"
    return {
        "limit": args.limit,
        "rate": args.rate,
        "execute": args.execute,
        "checkpoint_path": args.checkpoint or default,
    }
