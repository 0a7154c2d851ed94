"""A stack running in the background: start it detached, show its state, stop it.

`scripts/local up --detach` re-runs `up` as a supervisor process in a session of its own
and returns once `.local/stack.json` names it; `status` and `down` read that file, from any
shell, whatever happened to the process that started the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import requests

from infra.common import paths
from infra.local.local_stack import read_stack_json
from infra.local.processes import group_alive, log_tail, pid_alive, stop_groups

DETACH_TIMEOUT = 180.0
# How long `down` lets the supervisor stop its children before it kills it and stops them
# itself: `down` answers within 30 s whatever state the stack is in.
DOWN_GRACE_SECONDS = 20.0
_EMULATORS = {
    "PUBSUB_EMULATOR_HOST": "Pub/Sub emulator",
    "FIRESTORE_EMULATOR_HOST": "Firestore emulator",
    "STORAGE_EMULATOR_HOST": "Cloud Storage emulator",
}


def refuse_if_running() -> None:
    with contextlib.suppress(RuntimeError):
        info = read_stack_json()
        if pid_alive(int(info.get("pid", 0))):
            raise SystemExit(
                f"a local stack is already running (pid {info['pid']}): scripts/local down"
            )
        reap(info)


def reap(info: dict[str, Any]) -> None:
    """A stack whose supervisor died: stop its leftover process groups (all at once), forget
    it."""
    groups = [int(pgid) for pgid in info.get("process_groups", {}).values()]
    stop_groups([pgid for pgid in groups if group_alive(pgid)], timeout=3.0)
    paths.STACK_JSON.unlink(missing_ok=True)


def detach() -> int:
    """`up` again, in the background, with this command's arguments."""
    argv = [sys.executable, "-m", "infra.local.cli", "up", "--supervised"]
    argv += [a for a in sys.argv[2:] if a != "--detach"]
    log_path = paths.LOGS_DIR / "supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        start = log.tell()  # what earlier runs logged is not this run's error
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log_tail(log_path, since=start)
            print(
                f"error: the stack did not start. Last lines of {log_path}:\n{tail}",
                file=sys.stderr,
            )
            return 1
        with contextlib.suppress(RuntimeError, ValueError):
            info = read_stack_json()
            if info.get("pid") == child.pid:
                print_summary(info)
                detached = f"detached (supervisor pid {child.pid}); stop with scripts/local down"
                print(detached, file=sys.stderr)
                return 0
        time.sleep(0.2)
    stop_groups([child.pid], 10.0)
    print(f"error: no stack after {DETACH_TIMEOUT:.0f}s; see {log_path}", file=sys.stderr)
    return 1


def print_summary(info: dict[str, Any]) -> None:
    print(f"local stack up in {info['timings'].get('up_s', '?')} s (project {info['project']})")
    for key, value in info["env"].items():
        print(f"  export {key}={value}")
    for name, fn in info["functions"].items():
        print(f"  function {name:<28} {fn['url']}")
    print(f"  router control: {info['router']['url']}")
    print(f"  gallery:        {info.get('gallery')}")
    print(f"  written: {paths.STACK_JSON}")


def down() -> int:
    try:
        info = read_stack_json()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 0
    for variable, host, answers, _ in _emulators(info, timeout=1.0):
        if not answers:  # said, so a slow or odd stop has its reason on screen
            print(f"note: the {_EMULATORS[variable]} at {host} was not answering", file=sys.stderr)
    pid = int(info["pid"])
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)  # the supervisor stops its children itself
        deadline = time.monotonic() + DOWN_GRACE_SECONDS
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):  # stuck: whatever it was doing, `down` still ends in seconds
            print(f"supervisor pid {pid} did not stop; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(RuntimeError, ValueError):  # a restart updates its groups
        info = read_stack_json()
    reap(info)
    print("local stack stopped")
    return 0


def status() -> int:
    info = read_stack_json()
    healthy = alive = pid_alive(int(info["pid"]))
    print(f"supervisor pid {info['pid']}: {'running' if alive else 'NOT running'}")
    rows = _emulators(info)
    if fake := info.get("emulators", {}).get("storage", {}).get("host"):
        answers = _answers(f"http://{fake}/storage/v1/b")
        rows.append(("fake-gcs-server", fake, answers, "behind the front"))
    for name, fn in info["functions"].items():
        rows.append((name, fn["url"], _answers(fn["url"]), _restarts(fn)))
    for name, where, ok, detail in rows:
        healthy &= ok
        print(f"  {name:<24} {where:<28} {'up' if ok else 'DOWN':<4} {detail}")
    router = info["router"]["url"]
    try:
        stats = requests.get(f"{router}/stats", timeout=2).json()
        faults = requests.get(f"{router}/faults", timeout=2).json()
    except requests.RequestException:
        print(f"  router control {router}: DOWN")
        return 1
    print("router:", json.dumps(stats))
    # Each function's slots (instances x concurrency), wait bound and 429s so far.
    print("capacity (Cloud Run's limit; 429 = refused for lack of an instance):")
    for key, cap in sorted(stats.get("capacity", {}).items()):
        throttled = stats.get("functions", {}).get(key, {}).get("throttled", 0)
        print(f"  {key:<20} {cap['slots']:>5} at once, wait <= {cap['wait_s']} s, 429: {throttled}")
    print("faults:", json.dumps(faults))
    return 0 if healthy else 1


def _emulators(info: dict[str, Any], timeout: float = 2.0) -> list[tuple[str, str, bool, str]]:
    """Each emulator's variable, host, whether it answers HTTP now, and its pid and restarts."""
    rows = []
    for name, host in info["env"].items():
        if name in _EMULATORS:
            url = host if host.startswith("http") else f"http://{host}"
            url += "/storage/v1/b" if name == "STORAGE_EMULATOR_HOST" else "/"
            known = info.get("emulators", {}).get(name.split("_")[0].lower(), {})
            rows.append((name, host, _answers(url, timeout), _restarts(known)))
    return rows


def _restarts(child: dict[str, Any]) -> str:
    return f"pid {child.get('pid', '?')}, restarted {child.get('restarts', 0)} time(s)"


def _answers(url: str, timeout: float = 2.0) -> bool:
    """Whether `url` answers HTTP now (any status)."""
    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException:
        return False
    return True
