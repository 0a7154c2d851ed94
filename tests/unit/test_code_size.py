"""Size guards: no non-test Python file over 500 lines, no non-test function or method over
80 (from its first decorator to its last line), the whole non-test source within its line
budget, and no merge leftovers (`*.orig`, `*.rej`) in the tree.

The allowlists hold today's offenders, one per line. Whoever shortens one deletes its line;
a line that no longer offends fails `test_allowlists_name_only_offenders`. Never add one."""

from __future__ import annotations

import ast
from functools import cache

from tests.source_tree import ROOT, line_count, python_sources, source_files, tree_files

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
# Non-test Python, shell and JS lines (blank lines and comments included): the budget a
# reference deployment with its harness should fit in. A feature pays for its lines by removing
# what is no longer needed, never by denser code.
MAX_SOURCE_LINES = 17_500

LONG_FILES: list[str] = []

LONG_FUNCTIONS: list[str] = []


def _function_lengths(path: str) -> dict[str, int]:
    """`path::Qualified.name` -> lines, for every function and method, nested ones too."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    lengths[f"{path}::{name}"] = (child.end_lineno or first) - first + 1
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse((ROOT / path).read_text(encoding="utf-8"), path), "")
    return lengths


@cache
def _long_files() -> dict[str, int]:
    return {p: n for p in python_sources() if (n := line_count(p)) > MAX_FILE_LINES}


@cache
def _long_functions() -> dict[str, int]:
    return {
        name: n
        for p in python_sources()
        for name, n in _function_lengths(p).items()
        if n > MAX_FUNCTION_LINES
    }


def test_no_source_file_over_500_lines():
    over = {p: n for p, n in _long_files().items() if p not in LONG_FILES}
    assert over == {}, f"split these files (limit {MAX_FILE_LINES} lines): {over}"


def test_no_function_over_80_lines():
    over = {f: n for f, n in _long_functions().items() if f not in LONG_FUNCTIONS}
    assert over == {}, f"split these functions (limit {MAX_FUNCTION_LINES} lines): {over}"


def test_allowlists_name_only_offenders():
    fixed_files = sorted(set(LONG_FILES) - set(_long_files()))
    fixed_functions = sorted(set(LONG_FUNCTIONS) - set(_long_functions()))
    assert (fixed_files, fixed_functions) == ([], []), (
        "now within the limit (or gone): delete these lines from the allowlists"
    )


def test_source_lines_within_budget():
    total = sum(line_count(p) for p in source_files())
    assert total <= MAX_SOURCE_LINES, (
        f"non-test source is {total} lines, over the budget of {MAX_SOURCE_LINES}: "
        "remove what is not needed before adding"
    )


def test_no_merge_leftovers():
    leftovers = [p for p in tree_files() if p.endswith((".orig", ".rej"))]
    assert leftovers == [], f"leftovers of a merge or a patch: delete {leftovers}"
