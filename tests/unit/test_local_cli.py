"""`scripts/local` argument handling that needs no running stack."""

from __future__ import annotations

import pytest

from infra.local import cli, demo


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
