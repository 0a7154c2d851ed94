"""The function source archive is deterministic: code changes, and only they, change it."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from infra.deploy.function_source import SourceError, build_archive


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text("import image_pipeline\n")
    (tmp_path / "requirements.txt").write_text("functions-framework==3.10.2\n")
    pkg = tmp_path / "image_pipeline"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("X = 1\n")
    (pkg / "sub" / "deep.py").write_text("Y = 2\n")
    return tmp_path


def test_archive_holds_only_what_the_functions_need(tree: Path):
    (tree / "image_pipeline" / "__pycache__").mkdir()
    (tree / "image_pipeline" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    (tree / "image_pipeline" / "notes.txt").write_text("not code")
    (tree / "tests").mkdir()
    (tree / "tests" / "test_x.py").write_text("")
    (tree / ".env").write_text("SECRET=1")
    archive = build_archive(tree)
    with zipfile.ZipFile(io.BytesIO(archive.data)) as z:
        assert z.namelist() == [
            "image_pipeline/__init__.py",
            "image_pipeline/core.py",
            "image_pipeline/sub/deep.py",
            "main.py",
            "requirements.txt",
        ]
        assert z.read("image_pipeline/core.py") == b"X = 1\n"


def test_hash_is_stable_across_builds_mtimes_and_modes(tree: Path):
    first = build_archive(tree)
    core = tree / "image_pipeline" / "core.py"
    os.utime(core, (1_000_000_000, 1_000_000_000))
    core.chmod(0o755)
    (tree / "image_pipeline" / "__pycache__").mkdir()
    (tree / "image_pipeline" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    second = build_archive(tree)
    assert second.data == first.data
    assert second.object_name == first.object_name
    assert first.object_name == f"function-source/{first.sha256[:32]}.zip"


def test_hash_changes_when_code_changes(tree: Path):
    before = build_archive(tree)
    (tree / "image_pipeline" / "sub" / "deep.py").write_text("Y = 3\n")
    assert build_archive(tree).object_name != before.object_name
    (tree / "image_pipeline" / "new.py").write_text("")
    assert len({before.object_name, build_archive(tree).object_name}) == 2


def test_hash_changes_when_requirements_change(tree: Path):
    before = build_archive(tree)
    (tree / "requirements.txt").write_text("functions-framework==3.10.3\n")
    assert build_archive(tree).sha256 != before.sha256


@pytest.mark.parametrize("missing", ["main.py", "requirements.txt"])
def test_missing_entry_files_are_errors(tree: Path, missing: str):
    (tree / missing).unlink()
    with pytest.raises(SourceError, match=missing):
        build_archive(tree)


def test_write_names_the_file_by_hash(tree: Path, tmp_path_factory):
    archive = build_archive(tree)
    path = archive.write(tmp_path_factory.mktemp("out"))
    assert path.read_bytes() == archive.data
    assert archive.sha256[:32] in path.name
