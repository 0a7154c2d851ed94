"""The gcloud CLI and the Python client work against the stack's Cloud Storage as against
Cloud Storage: each command exits 0 and leaves the objects where it says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as api_exceptions

from infra.local.cli import client_exports


@pytest.fixture
def gcloud(harness: Any, tmp_path: Path) -> Any:
    env = {
        **os.environ,
        **client_exports(harness.info),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # the operator's own config stays untouched
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            ["gcloud", "storage", *args], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    return run


def names(harness: Any, prefix: str) -> set[str]:
    listed = harness.clients.storage.list_blobs(harness.thumbnails.name, prefix=prefix)
    return {blob.name.removeprefix(prefix) for blob in listed}


def test_gcloud_storage_commands_exit_0_and_do_what_they_say(
    harness: Any, gcloud: Any, prefix: str, tmp_path: Path
) -> None:
    # The thumbnails bucket: nothing of the pipeline reacts to what is written there.
    base = f"gs://{harness.thumbnails.name}/{prefix}"
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"small object\n")
    big.write_bytes(os.urandom(12 * 1024 * 1024))  # over gcloud's resumable threshold
    gcloud("cp", str(small), f"{base}a.txt")
    gcloud("cp", str(big), f"{base}dir/big.bin")
    assert gcloud("cat", f"{base}a.txt") == "small object\n"
    gcloud("cp", f"{base}a.txt", f"{base}b.txt")  # object to object
    gcloud("mv", f"{base}b.txt", f"{base}dir/c.txt")
    assert names(harness, prefix) == {"a.txt", "dir/big.bin", "dir/c.txt"}
    listed = gcloud("ls", "--recursive", base)
    assert f"{base}dir/c.txt" in listed and f"{base}b.txt" not in listed
    gcloud("cp", f"{base}dir/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    gcloud("rm", f"{base}a.txt")
    assert names(harness, prefix) == {"dir/big.bin", "dir/c.txt"}
    gcloud("rm", "--recursive", f"{base}dir")
    assert names(harness, prefix) == set()


def test_the_python_client_writes_reads_and_refuses_as_on_gcp(harness: Any, prefix: str) -> None:
    bucket = harness.thumbnails
    first = bucket.blob(prefix + "a.txt")
    first.upload_from_string(b"hello", if_generation_match=0)
    chunked = bucket.blob(prefix + "chunked.bin", chunk_size=256 * 1024)
    chunked.upload_from_string(b"x" * (600 * 1024))  # a resumable upload in three chunks
    assert bucket.blob(prefix + "chunked.bin").download_as_bytes() == b"x" * (600 * 1024)
    copy = bucket.copy_blob(first, bucket, prefix + "copy.txt", if_generation_match=0)
    bucket.blob(prefix + "rewritten.txt").rewrite(first)
    composed = bucket.blob(prefix + "composed.txt")
    composed.compose([first, copy])
    assert composed.download_as_bytes() == b"hellohello"
    first.metadata = {"owner": "alice"}
    first.patch(if_generation_match=first.generation)
    assert bucket.get_blob(prefix + "a.txt").metadata == {"owner": "alice"}
    with pytest.raises(api_exceptions.PreconditionFailed):
        bucket.blob(prefix + "a.txt").upload_from_string(b"again", if_generation_match=0)
    with pytest.raises(api_exceptions.PreconditionFailed):
        bucket.copy_blob(first, bucket, prefix + "copy.txt", if_generation_match=0)
    bucket.blob(prefix + "composed.txt").delete(if_generation_match=composed.generation)
    assert names(harness, prefix) == {"a.txt", "chunked.bin", "copy.txt", "rewritten.txt"}
