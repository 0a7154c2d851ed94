"""The benchmarks measure functions/main.py, never the CDKTF app of the same name at the root.

A worker runs as `python -m benchmarks...` from the repository root, so the root comes first
on its path and a plain `import main` loads the CDKTF app: the "main.py loaded" memory
numbers would then hold the wrong module's imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from benchmarks import coldstart, memory
from benchmarks._common import FUNCTIONS_MAIN, ROOT, import_function_main


def test_no_benchmark_imports_main_by_name() -> None:
    found = []
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if "main" in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "load functions/main.py with _common.import_function_main"


def test_the_peak_rss_worker_loads_the_functions_main(tmp_path: Path) -> None:
    photo = tmp_path / "small.jpg"
    Image.new("RGB", (64, 48), "teal").save(photo)
    result = memory.case_peak("ours", photo)
    assert result["main"] == str(FUNCTIONS_MAIN)
    assert result["peak"] >= result["added"] > 0


def test_the_animation_case_counts_every_frame(tmp_path: Path) -> None:
    gif = tmp_path / "small.gif"
    frames = [Image.new("L", (32, 24), 100 * i) for i in range(3)]  # alike ones would merge
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=40, loop=0)
    result = memory.case_peak("animated", gif)
    assert result["main"] == str(FUNCTIONS_MAIN)
    assert result["frames"] == 3 and result["estimate"] > 0


def test_the_import_time_is_measured_on_the_functions_main() -> None:
    # measure_import raises when the child's `import main` found another file.
    assert coldstart.measure_import(1)["inside"] > 0


def test_a_main_from_elsewhere_already_loaded_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    root_main = ModuleType("main")
    root_main.__file__ = str(ROOT / "main.py")
    monkeypatch.setitem(sys.modules, "main", root_main)
    with pytest.raises(RuntimeError, match=r"not .*functions/main\.py"):
        import_function_main()
