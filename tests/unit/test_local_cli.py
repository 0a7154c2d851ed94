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
