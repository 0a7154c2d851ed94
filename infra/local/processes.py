"""Child processes of the local stack: each in its own process group, stopped as a group.

`gcloud … emulators … start` is a Python wrapper that spawns Java; killing the wrapper
alone leaves Java running (measured with gcloud 528). Every child therefore starts a new
session, and stopping it signals the whole group, then makes sure the group is gone.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Ports for children, below the kernels' ephemeral ranges (Linux 32768-60999, macOS 49152 up):
# a port the OS picks for bind(0) is ephemeral, so any outgoing connection (the readiness
# probes make hundreds) can take it before the child binds it, and the Firestore emulator then
# exits with a BindException (seen here in one of six `scripts/demo` runs).
_CHILD_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on right now and not handed out before (127.0.0.1 only)."""
    while (port := random.choice(_CHILD_PORTS)) in _handed_out:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    _handed_out.add(port)
    return port


def log_tail(path: Path, lines: int = 25, since: int = 0) -> str:
    """The last `lines` lines written after byte offset `since` (an appended log's earlier
    runs are not this run's)."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Starts `argv` in a new session (its own process group), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return popen


def _answers_signal_0(send: Callable[[int, int], None], target: int) -> bool:
    """Whether `send(target, 0)` (os.kill or os.killpg) finds a process (ours or not)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists."""
    return _answers_signal_0(os.kill, pid)


def group_alive(pgid: int) -> bool:
    """Whether any live process of group `pgid` still exists."""
    if not _answers_signal_0(os.killpg, pgid):
        return False
    # Zombies answer signal 0 too; on Linux, /proc tells them apart.
    return bool(_group_members(pgid)) if Path("/proc/self").exists() else True


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids of a process group, read from /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_groups(pgids: Sequence[int], timeout: float = 5.0) -> None:
    """Stops several process groups at once: SIGTERM to all, one shared wait, then SIGKILL
    to what is left (stopping them one by one would add up their grace periods)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for pgid in pgids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(-pgid, os.WNOHANG)
            if not any(group_alive(pgid) for pgid in pgids):
                return
            time.sleep(0.05)
