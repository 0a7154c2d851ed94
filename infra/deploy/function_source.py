"""The deployed function source: a deterministic zip of only what the functions need.

Cloud Functions builds from an archive in a bucket, named by the SHA-256 of its bytes, which
depend only on the files' paths and contents (sorted entries, a fixed timestamp and mode, no
compression): a code change gives a new object name and a redeploy, and anything else (a
checkout's mtimes, a stray `__pycache__`, a test file) does not. No cdktf.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.common.paths import ROOT

FUNCTIONS_ROOT = ROOT / "functions"
REQUIRED = ("main.py", "requirements.txt")
PACKAGE = "image_pipeline"
# 1980-01-01 is the earliest time a zip entry can carry.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16


class SourceError(ValueError):
    """The functions source tree is missing something the deployment needs."""


@dataclass(frozen=True)
class FunctionArchive:
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def object_name(self) -> str:
        """Object name in the source bucket: changes exactly when the archive does."""
        return f"function-source/{self.sha256[:32]}.zip"

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"function-source-{self.sha256[:32]}.zip"
        path.write_bytes(self.data)
        return path


def source_files(root: Path = FUNCTIONS_ROOT) -> dict[str, Path]:
    """Archive name -> file: `main.py`, `requirements.txt`, `image_pipeline/**/*.py`."""
    files: dict[str, Path] = {}
    for name in REQUIRED:
        path = root / name
        if not path.is_file():
            raise SourceError(f"{path} is missing: the functions cannot be deployed without it")
        files[name] = path
    package = root / PACKAGE
    if not package.is_dir():
        raise SourceError(f"{package} is missing: functions/main.py imports it")
    for path in package.rglob("*.py"):
        rel = path.relative_to(root)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        files[rel.as_posix()] = path
    return files


def build_archive(root: Path = FUNCTIONS_ROOT) -> FunctionArchive:
    """The zip bytes for `root`; identical input files give identical bytes."""
    files = source_files(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # unix, whatever the build machine is
            archive.writestr(info, files[name].read_bytes())
    return FunctionArchive(data=buffer.getvalue())
