"""Every bad argument and setting is refused the same way: one line on stderr, exit code 2,
no traceback, and nothing started or read from a dependency first."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from test_ops_target import function_env

import main as synth
from infra.local import cli as local_cli
from infra.model import config
from infra.ops import backfill, dead_letters, smoke

FAKE_STACK = {
    "project": "refusal-test",
    "prefix": "imgpipe",
    "buckets": {"uploads": "refusal-test-up", "thumbnails": "refusal-test-th"},
    "function_env": function_env("refusal-test"),
    # Nothing listens here: a refusal must come before any call.
    "env": {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
    },
    "functions": {"imgpipe-cleanup": {"url": "http://127.0.0.1:9/", "target": "cleanup"}},
    "router": {"url": "http://127.0.0.1:9"},
}

# (tool, argv, what the file at {file} holds, PIPELINE_* variables)
CASES: dict[str, tuple[str, list[str], bytes | None, dict[str, str]]] = {
    "show ../../etc": ("dead-letters", ["show", "../../etc"], None, {}),
    "show a/b": ("dead-letters", ["show", "a/b"], None, {}),
    "show empty id": ("dead-letters", ["show", ""], None, {}),
    "show __x__": ("dead-letters", ["show", "__x__"], None, {}),
    "show a/b/c": ("dead-letters", ["show", "a/b/c"], None, {}),
    "show ..": ("dead-letters", ["show", ".."], None, {}),
    "discard a//b": ("dead-letters", ["discard", "a//b"], None, {}),
    "replay a/b": ("dead-letters", ["replay", "a/b"], None, {}),
    "checkpoint corrupt": ("backfill", ["--checkpoint", "{file}"], b'{"bucket": ', {}),
    "checkpoint list": ("backfill", ["--checkpoint", "{file}"], b"[1, 2]", {}),
    "checkpoint binary": ("backfill", ["--checkpoint", "{file}"], b"\x89PNG\x00\xff\xfe", {}),
    "checkpoint mistyped": (
        "backfill",
        ["--checkpoint", "{file}"],
        b'{"bucket": "b", "prefix": "", "listed": "many"}',
        {},
    ),
    "checkpoint directory": ("backfill", ["--checkpoint", "{dir}"], None, {}),
    "checkpoint uncreatable": ("backfill", ["--checkpoint", "{file}/under/a/file.json"], b"x", {}),
    "backfill --rate nan": ("backfill", ["--rate", "nan"], None, {}),
    "backfill --rate 0": ("backfill", ["--rate", "0"], None, {}),
    "backfill --limit 0": ("backfill", ["--limit", "0"], None, {}),
    "faults --duplicate-rate nan": ("local", ["faults", "--duplicate-rate", "nan"], None, {}),
    "faults --transient-rate 2": ("local", ["faults", "--transient-rate", "2"], None, {}),
    "faults --fail nosuchfn": ("local", ["faults", "--fail", "nosuchfn"], None, {}),
    "up --backoff-factor -1": ("local", ["up", "--backoff-factor", "-1"], None, {}),
    "up --backoff-factor nan": ("local", ["up", "--backoff-factor", "nan"], None, {}),
    "up --trigger-retry-window -5": ("local", ["up", "--trigger-retry-window", "-5"], None, {}),
    "up --fail nosuchfn": ("local", ["up", "--fail", "nosuchfn"], None, {}),
    "smoke --timeout 0": ("smoke", ["--local", "--timeout", "0"], None, {}),
    "smoke --timeout -1": ("smoke", ["--local", "--timeout", "-1"], None, {}),
    "smoke --timeout inf": ("smoke", ["--local", "--timeout", "inf"], None, {}),
    "function_memory=1Mi": ("local", ["up", "--set", "function_memory=1Mi"], None, {}),
    "thumbnail_memory=64Gi": ("local", ["up", "--set", "thumbnail_memory=64Gi"], None, {}),
    "firestore_location=nowhere": (
        "local",
        ["up", "--set", "firestore_location=nowhere"],
        None,
        {},
    ),
    "cache_control with LF": ("local", ["up", "--set", "cache_control=public\nx: y"], None, {}),
    "cache_control with CR": ("local", ["up", "--set", "cache_control=public\rx"], None, {}),
    "PIPELINE_LABELS=env": ("local", ["up"], None, {"PIPELINE_LABELS": "env"}),
    "exclude_patterns [null]": (
        "synth",
        [],
        b'{"context": {"pipeline": {"project": "my-project-1", "exclude_patterns": [null]}}}',
        {},
    ),
    "cdktf.json trailing comma": (
        "synth",
        [],
        b'{"context": {"pipeline": {"project": "my-project-1",}}}',
        {},
    ),
    "cdktf.json BOM": (
        "synth",
        [],
        b'\xef\xbb\xbf{"context": {"pipeline": {"project": "my-project-1"}}}',
        {},
    ),
    "cdktf.json pipeline list": ("synth", [], b'{"context": {"pipeline": ["x"]}}', {}),
}


def _tools(stack: Path) -> dict[str, Callable[[list[str]], object]]:
    target = ["--stack", str(stack)]
    return {
        "dead-letters": lambda argv: dead_letters.main([*argv[:1], *target, *argv[1:]]),
        "backfill": lambda argv: backfill.main([*argv, *target]),
        "local": local_cli.main,
        "smoke": lambda argv: smoke.main([*argv, "--stack", str(stack)]),
        "synth": lambda argv: synth.main(),
    }


@pytest.mark.parametrize("case", CASES)
def test_a_bad_argument_or_setting_is_one_line_and_exit_code_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tool, argv, content, environ = CASES[case]
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps(FAKE_STACK))
    file = tmp_path / "file"
    if content is not None:
        file.write_bytes(content)
    argv = [a.replace("{file}", str(file)).replace("{dir}", str(tmp_path)) for a in argv]
    for key in [k for k in os.environ if k.startswith(config.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    if tool == "synth":
        monkeypatch.setattr(config, "CDKTF_JSON", file)
    monkeypatch.setattr("infra.common.paths.STACK_JSON", stack)

    try:
        code = _tools(stack)[tool](argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err

    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("error: ", "usage")) is True, err
    assert "Traceback" not in err
    if "cdktf.json" in case:
        assert str(file) in lines[0]
    if "cdktf.json" in case and "list" not in case:
        assert f"{file}:1:" in lines[0], lines[0]  # file:line:column
