"""Imports run one way only (docs/architecture.md, "Layout").

Each package of `infra` may import the packages listed for it and nothing else of the
repository's; the functions (`image_pipeline`, `functions/main.py`) import nothing of it.
A back-edge fails here with the file, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the repository packages it may import (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "image_pipeline": set(),
    "infra.common": set(),
    "infra.model": {"infra.common", "image_pipeline"},
    "infra.deploy": {"infra.common", "infra.model", "image_pipeline"},
    "infra.ops": {"infra.common", "infra.model", "image_pipeline"},
    "infra.local": {"infra.common", "infra.model", "infra.ops", "image_pipeline"},
}
OURS = ("infra", "image_pipeline", "main", "benchmarks", "tests")


def package_of(module: str) -> str | None:
    for package in sorted(ALLOWED, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package
    return None


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "functions":  # not any "functions" in the path: the checkout's own
        relative = relative.relative_to("functions")
    return ".".join(relative.with_suffix("").parts).removesuffix(".__init__")


def imports(source: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import of the repository's own code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from infra import model` imports infra.model; `from infra.ops import x`, infra.ops.
            names = (
                [node.module]
                if package_of(node.module)
                else [f"{node.module}.{alias.name}" for alias in node.names]
            )
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in OURS]
    return found


def back_edges(where: str, module: str, source: str) -> list[str]:
    own = package_of(module)
    if own is None:
        return []
    errors = []
    for line, imported in imports(source):
        target = package_of(imported)
        if imported.split(".")[0] in OURS and target is None and imported != "infra":
            target = imported  # main, benchmarks, tests: never imported by this code
        if target is None or target == own or target in ALLOWED[own]:
            continue
        errors.append(f"{where}:{line}: {own} must not import {imported}")
    return errors


def sources() -> list[Path]:
    return sorted((ROOT / "infra").rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    orphans = [
        str(p.relative_to(ROOT))
        for p in sources()
        if package_of(module_name(p)) is None and module_name(p) not in ("infra", "main")
    ]
    assert orphans == [], "add these to ALLOWED (and to the Layout in docs/architecture.md)"


def test_imports_run_one_way():
    errors = [
        error
        for path in sources()
        for error in back_edges(
            str(path.relative_to(ROOT)),
            # functions/main.py is the functions' entry point: it imports what they may.
            "image_pipeline" if path == ROOT / "functions" / "main.py" else module_name(path),
            path.read_text(),
        )
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("infra.ops.backfill", "from infra.local.messages import Message\n"),
        ("infra.model.topology", "import infra.deploy.pipeline_stack\n"),
        ("infra.common.paths", "from infra.model import config\n"),
        ("image_pipeline.events", "from infra.model.topology import OUTPUT_MARKER\n"),
        ("infra.ops.smoke", "from infra.local import local_stack\n"),
    ],
)
def test_a_back_edge_is_reported(module, source):
    imported = imports(source)[0][1]
    assert back_edges("probe.py", module, source) == [
        f"probe.py:1: {package_of(module)} must not import {imported}"
    ]


def test_the_documented_layout_names_every_module():
    """docs/architecture.md "Layout" is the map a newcomer reads: it must match the tree."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    layout = doc[doc.index("## Layout") :]
    layout = layout[: layout.index("\n## ", 1)]
    missing = [
        str(path.relative_to(ROOT))
        for path in sources()
        if path.name != "__init__.py" and path.stem not in layout
    ]
    assert missing == [], "name these in docs/architecture.md, Layout"


# --- no import cycles -----------------------------------------------------------------
# A cycle hides behind a deferred import (one inside a function) until someone moves it to
# the top and the import fails half-way; so every import counts here, wherever it is.


def cycle_sources() -> dict[str, Path]:
    """Every module of ours by name; functions/main.py apart (the app's `main` is another)."""
    paths = [*sources(), *sorted((ROOT / "benchmarks").rglob("*.py")), ROOT / "main.py"]
    functions_main = ROOT / "functions" / "main.py"
    return {"functions/main.py" if p == functions_main else module_name(p): p for p in paths}


def import_graph(texts: dict[str, str]) -> dict[str, dict[str, int]]:
    """module -> {module of ours it imports: line}, deferred imports included."""
    graph: dict[str, dict[str, int]] = {name: {} for name in texts}
    for name, text in texts.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in texts
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            for imported in found:
                if imported in texts and imported != name:
                    graph[name].setdefault(imported, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def described(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    edges = [
        f"{module}:{line} imports {imported}"
        for module in component
        for imported, line in sorted(graph[module].items())
        if imported in component
    ]
    return "; ".join(edges)


def test_no_import_cycles():
    """functions/, infra/, benchmarks/ and main.py import without a cycle."""
    modules = cycle_sources()
    graph = import_graph({name: path.read_text() for name, path in modules.items()})
    assert [described(graph, c) for c in cycles(graph)] == []


def test_a_cycle_through_a_deferred_import_is_reported():
    graph = import_graph(
        {
            "pkg.a": "from pkg import b\n",
            "pkg.b": "def late():\n    from pkg.c import thing\n",
            "pkg.c": "import pkg.a\n",
            "pkg.d": "import pkg.a\n",
        }
    )
    (component,) = cycles(graph)
    assert component == ["pkg.a", "pkg.b", "pkg.c"]
    assert described(graph, component) == (
        "pkg.a:1 imports pkg.b; pkg.b:2 imports pkg.c; pkg.c:1 imports pkg.a"
    )
