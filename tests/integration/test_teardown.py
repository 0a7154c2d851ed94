"""Stopping the shared stack leaves no emulator, Java or function process behind, and takes
seconds whatever state the stack is in."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from infra.local.processes import group_alive

pytestmark = [pytest.mark.integration, pytest.mark.stack_teardown]


def test_down_leaves_no_process(local_stack):
    groups = {p.name: p.pid for p in local_stack.processes()}
    hosts = [local_stack.env[k].removeprefix("http://") for k in sorted(local_stack.env)
             if k.endswith("_EMULATOR_HOST")]  # fmt: skip
    ports = [h.rsplit(":", 1)[1] for h in hosts] + [
        f.url.rstrip("/").rsplit(":", 1)[1] for f in local_stack.functions.values()
    ]
    # One process per function of the topology and one per emulator.
    expected = len(local_stack.topology.functions) + len(hosts)
    assert len(groups) == expected and all(group_alive(pgid) for pgid in groups.values())
    # Whatever state the stack is in: Firestore frozen, deliveries hanging in the functions.
    firestore_group = str(local_stack.emulators["firestore"].pid)
    java = subprocess.run(["pgrep", "-g", firestore_group, "java"], capture_output=True, text=True)
    for pid in java.stdout.split():
        os.kill(int(pid), signal.SIGSTOP)
    uploads = local_stack.clients.storage.bucket(local_stack.info()["buckets"]["uploads"])
    for i in range(3):
        uploads.blob(f"teardown/{i}.png").upload_from_string(b"\x89PNG", content_type="image/png")
    time.sleep(1)

    started = time.monotonic()
    local_stack.down()
    assert time.monotonic() - started <= 30  # what `scripts/local down` promises

    assert [name for name, pgid in groups.items() if group_alive(pgid)] == []
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    leftovers = [
        line for line in ps.splitlines()
        if any(f"port={p}" in line or f"--port {p}" in line or f"-port {p}" in line
               or f"127.0.0.1:{p}" in line for p in ports)
        and " Z" not in line
    ]  # fmt: skip
    assert leftovers == [], "processes outlived the stack:\n" + "\n".join(leftovers)
