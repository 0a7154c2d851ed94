"""No dead code: every function and class (and, outside tests, every method and property) is
used somewhere in the tree. vulture finds definitions whose name nothing refers to.

Names called by a framework, never by our code, are in ENTRY_POINTS with the reason.
DEAD holds today's hits, one per line: whoever removes one deletes its line; never add one."""

from __future__ import annotations

import ast
import re
from functools import cache

import vulture

from tests.source_tree import ROOT, tree_files

# name (a glob) -> what calls it
ENTRY_POINTS = {
    "pytest_*": "pytest hooks, found by name in conftest.py",
    "do_*": "http.server.BaseHTTPRequestHandler dispatches do_<METHOD> by name",
    "log_message": "a BaseHTTPRequestHandler override (it logs every request)",
    "on_*": "http_guard.GuardedHandler dispatches on_<method> by name",
}
# decorator -> why what it decorates is called
ENTRY_DECORATORS = {
    "@jsii.member": "jsii calls the method under its jsii_name from the CDKTF runtime",
}

DEAD: list[str] = []


# Autouse fixtures: pytest runs them for the tests in their scope, no test names them.
AUTOUSE = re.compile(r"^@pytest\.fixture\([^)]*autouse=True[^)]*\)\ndef (\w+)", re.M)


@cache
def _unused() -> set[str]:
    sources = {
        path: (ROOT / path).read_text(encoding="utf-8")
        for path in tree_files()
        if path.endswith(".py")
    }
    autouse = [name for source in sources.values() for name in AUTOUSE.findall(source)]
    # Fixtures a test takes as parameters: pytest passes them in by name, no code calls them.
    injected = {
        arg.arg
        for path, source in sources.items()
        if path.startswith("tests/")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        for arg in node.args.args
    }
    finder = vulture.Vulture(
        ignore_names=[*ENTRY_POINTS, *autouse], ignore_decorators=list(ENTRY_DECORATORS)
    )
    for path, source in sources.items():
        finder.scan(source, filename=ROOT / path)
    found = set()
    for item in finder.get_unused_code():
        path = item.filename.relative_to(ROOT).as_posix()
        if path.startswith("tests/") and item.name in injected:
            continue
        kinds = (
            {"function", "class"}
            if path.startswith("tests/")
            else {
                "function",
                "class",
                "method",
                "property",
            }
        )
        if item.typ in kinds:
            found.add(f"{path}::{item.name}")
    return found


def test_no_unused_functions_or_classes():
    unused = sorted(_unused() - set(DEAD))
    assert unused == [], f"nothing uses these: delete them (or name their caller): {unused}"


def test_dead_code_list_names_only_dead_code():
    assert sorted(set(DEAD) - _unused()) == [], "gone or used now: delete these lines from DEAD"
