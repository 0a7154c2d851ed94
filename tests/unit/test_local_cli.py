"""`scripts/local` argument handling that needs no running stack."""

from __future__ import annotations

import pytest

from infra.local import cli, demo, lifecycle


@pytest.mark.parametrize(
    "arguments",
    [["replay", "--all"], ["replay", "--force", "abc"], ["replay", "abc", "def"]],
)
def test_replay_hands_every_argument_to_the_dead_letters_tool(monkeypatch, arguments):
    seen: list[list[str]] = []
    monkeypatch.setattr(cli.dead_letters, "main", lambda argv: seen.append(list(argv)) or 7)
    assert cli.main(arguments) == 7
    assert seen == [arguments]


def test_demo_help_prints_usage_without_starting_a_stack(capsys):
    with pytest.raises(SystemExit) as stop:
        demo.main(["--help"])
    assert stop.value.code == 0
    assert "scripts/demo" in capsys.readouterr().out


def test_redeploy_sends_the_settings_checked_here_with_the_running_stacks_project(
    monkeypatch, capsys
):
    info = {"project": "local-proj-1", "router": {"url": "http://127.0.0.1:9"}}
    monkeypatch.setattr(cli, "read_stack_json", lambda: info)
    sent = []

    class Answer:
        ok = True

        def json(self):
            return {"outputFingerprint": "f"}

    def put(url, json, timeout):
        sent.append((url, json))
        return Answer()

    monkeypatch.setattr(cli.requests, "put", put)
    rules = '[{"include": ["a/**"], "sizes": ["32x32:cover"]}]'
    assert cli.main(["redeploy", "--set", f"output_rules={rules}"]) == 0
    ((url, body),) = sent
    assert url == "http://127.0.0.1:9/settings"
    assert body["project"] == "local-proj-1"
    assert (
        body["output_rules"].startswith('[{"name":"rule-0"')
        and "32x32:cover" in body["output_rules"]
    )
    assert all(isinstance(v, str) for v in body.values())

    assert cli.main(["redeploy", "--set", "thumbnail_sizes=64x64:fill"]) == 2  # refused here
    assert len(sent) == 1 and "unknown fit mode" in capsys.readouterr().err


def test_down_names_a_dead_emulator_and_ends_a_supervisor_that_ignores_sigterm(
    monkeypatch, tmp_path, capsys
):
    import json
    import signal
    import subprocess
    import sys
    import time

    from infra.local.processes import group_alive, pid_alive, stop_groups

    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ignoring SIGTERM', flush=True); time.sleep(60)"
    )
    supervisor, child = (
        subprocess.Popen(
            [sys.executable, "-c", stubborn], start_new_session=True, stdout=subprocess.PIPE
        )
        for _ in range(2)
    )
    stack = tmp_path / "stack.json"
    stack.write_text(
        json.dumps(
            {
                "pid": supervisor.pid,
                "process_groups": {"Firestore emulator": child.pid},
                "env": {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"},  # nothing answers there
            }
        )
    )
    monkeypatch.setattr("infra.common.paths.STACK_JSON", stack)
    # Both ignore SIGTERM, so each grace period runs out: short ones keep the test quick.
    monkeypatch.setattr(lifecycle, "DOWN_GRACE_SECONDS", 0.2)
    monkeypatch.setattr(lifecycle, "stop_groups", lambda pgids, timeout: stop_groups(pgids, 0.2))
    for process in (supervisor, child):
        assert process.stdout and process.stdout.readline() == b"ignoring SIGTERM\n"

    started = time.monotonic()
    try:
        assert cli.main(["down"]) == 0
        seconds = time.monotonic() - started
        supervisor.wait(timeout=5)
        assert supervisor.returncode == -signal.SIGKILL and not pid_alive(supervisor.pid)
        assert not group_alive(child.pid) and not stack.exists()
    finally:
        for process in (supervisor, child):
            process.kill()
            process.communicate()  # reaps it and closes its stdout
    err = capsys.readouterr().err
    assert "the Firestore emulator at 127.0.0.1:9 was not answering" in err
    assert seconds < 15  # the grace period, then SIGTERM + 3 s + SIGKILL for the children


def test_a_failed_start_shows_only_what_this_start_logged(tmp_path):
    from infra.local.processes import log_tail

    log = tmp_path / "supervisor.log"
    log.write_text("error: from yesterday's run\n")
    start = log.stat().st_size  # where `up --detach` starts appending
    assert log_tail(log, since=start) == "(nothing logged)"
    with log.open("a") as appended:
        appended.write("error: today's\n")
    assert log_tail(log, since=start) == "error: today's"
    assert "yesterday" in log_tail(log)  # the whole log, when asked


def test_pull_refuses_a_push_subscription_before_pulling_anything(monkeypatch, capsys):
    from infra.local import cli

    info = {
        "project": "p",
        "subscriptions": {
            "imgpipe-metadata-writer": {"key": "metadata_writer", "push_function": "wm"},
            "imgpipe-failures": {"key": "failures", "push_function": None},
        },
    }
    monkeypatch.setattr(cli, "read_stack_json", lambda: info)
    monkeypatch.setattr(cli, "emulator_subscriber", lambda *a: pytest.fail("no client is made"))
    assert cli.main(["pull", "metadata_writer"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "imgpipe-metadata-writer is a push subscription" in line
    assert line.endswith("pull one of: imgpipe-failures")
    assert cli.main(["pull", "nope"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("choose one of: failures (imgpipe-failures), "
                         "metadata_writer (imgpipe-metadata-writer)")  # fmt: skip


@pytest.mark.parametrize(
    "spelling",
    [
        "dead_letters_unrecorded",
        "dead-letters-unrecorded",
        "imgpipe-dead-letters-unrecorded",
        "projects/p/subscriptions/imgpipe-dead-letters-unrecorded",
    ],
)
def test_pull_takes_the_key_the_short_name_and_the_full_name(spelling):
    from infra.local.pull import pull_subscription

    sub = {"key": "dead_letters_unrecorded", "push_function": None}
    info = {"project": "p", "prefix": "imgpipe",
            "subscriptions": {"imgpipe-dead-letters-unrecorded": sub}}  # fmt: skip
    assert pull_subscription(info, spelling) == ("imgpipe-dead-letters-unrecorded", sub)


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """`scripts/local status | head`: the rest is not read; no BrokenPipeError traceback."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from infra.common.terminal import quiet_broken_pipe\n"
        "def loud():\n"
        "    for i in range(100_000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "sys.exit(quiet_broken_pipe(loud))\n"
    )
    run = subprocess.run(
        f"{sys.executable} -c \"{script}\" | head -1",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.stdout == "line 0\n" and run.stderr == ""
