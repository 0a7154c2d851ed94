"""The commands the docs show work as shown. Every line of a shell block in README.md,
CONTRIBUTING.md and docs/ that runs one of our tools has its arguments parsed by that tool's
own parser (parsed only: nothing runs), and each tool's `--help` prints its usage. Tools that
are not ours to parse say where they are checked instead, in ELSEWHERE."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.source_tree import ROOT

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
# A tool where a shell line starts (after VAR=value prefixes) or inside `$(...)`.
INVOCATION = re.compile(r"(?:^|\$\()\s*(?:\w+=\S*\s+)*((?:scripts/[\w-]+|benchmarks/run)\b[^)]*)")
ELSEWHERE = {
    "scripts/test": "pytest's own arguments; CI runs it whole (.ci/run)",
    "scripts/cdktf": "the CDKTF CLI on Node; tests/infra synthesizes the stack as it does",
}
# `python -m PACKAGE` runs PACKAGE/__main__.py, which calls this module's main.
MAIN_OF_PACKAGE = {"benchmarks": "benchmarks.cli"}


def _tools() -> dict[str, str]:
    """Each tool -> the module its `exec python -m MODULE` runs."""
    tools = {}
    for path in [*sorted((ROOT / "scripts").glob("[!_]*")), ROOT / "benchmarks" / "run"]:
        if found := re.search(r"^exec python -m ([\w.]+)", path.read_text(), re.M):
            tools[path.relative_to(ROOT).as_posix()] = found.group(1)
    return tools


TOOLS = {tool: module for tool, module in _tools().items() if tool not in ELSEWHERE}


def _shell_lines(doc: Path) -> list[str]:
    """The lines of its ```bash, ```sh and bare ``` blocks, comments removed."""
    lines, language = [], None  # None: outside a block
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
        elif language in ("bash", "sh", ""):
            lines.append(re.sub(r"(^|\s)#.*", "", line))
    return lines


def documented() -> list[tuple[str, str, list[str]]]:
    """(where, tool, argv) for every documented invocation; placeholders such as `ID` or
    `[--note TEXT]` become sample values."""
    found = []
    for doc in DOCS:
        for line in _shell_lines(doc):
            for match in INVOCATION.finditer(line):
                tool, *words = shlex.split(match.group(1))
                argv = [w.strip("[]").removesuffix("...") for w in words]
                argv = ["x1" if re.fullmatch(r"[A-Z][A-Z_]*", w) else w for w in argv]
                found.append((f"{doc.relative_to(ROOT)}: {match.group(1).strip()}", tool, argv))
    return found


class Parsed(Exception):
    """Raised instead of running: the arguments parsed."""


def _main(tool: str) -> Any:
    module = TOOLS[tool]
    return importlib.import_module(MAIN_OF_PACKAGE.get(module, module)).main


@pytest.mark.parametrize(("where", "tool", "argv"), documented(), ids=lambda v: str(v)[:60])
def test_a_documented_command_parses(monkeypatch, where, tool, argv):
    assert tool in TOOLS or tool in ELSEWHERE, f"{where}: no such tool"
    if tool in ELSEWHERE:
        return
    parse = argparse.ArgumentParser.parse_args

    def parse_only(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise Parsed(parse(self, *args, **kwargs))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    with pytest.raises(Parsed):
        _main(tool)(argv)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_has_help(tool, capsys):
    with pytest.raises(SystemExit) as exited:
        _main(tool)(["--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {tool}")


def test_every_tool_is_documented():
    shown = {tool for _, tool, _ in documented()}
    assert sorted(set(TOOLS) - shown) == []


WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _uploads_stated(text: str) -> set[int]:
    """Counts in "uploads six generated images", "upload four files", "uploads 6 ...": what a
    help text or the README promises the tool uploads."""
    said = re.findall(r"\buploads? (\w+) (?:generated )?(?:images|files)\b", text)
    return {int(w) if w.isdigit() else WORDS.index(w) for w in said}


@pytest.mark.parametrize(
    ("tool", "uploads"),
    [
        ("scripts/demo", lambda: len(importlib.import_module("infra.local.demo").SAMPLES)),
        ("scripts/smoke", lambda: len(importlib.import_module("infra.ops.smoke").samples())),
    ],
)
def test_the_help_says_how_many_files_the_tool_uploads(tool, uploads, capsys):
    with pytest.raises(SystemExit):
        _main(tool)(["--help"])
    assert _uploads_stated(" ".join(capsys.readouterr().out.split())) == {uploads()}


def test_the_readme_says_how_many_images_the_demo_uploads():
    demo = importlib.import_module("infra.local.demo")
    assert _uploads_stated((ROOT / "README.md").read_text()) == {len(demo.SAMPLES)}
