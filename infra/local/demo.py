"""`scripts/demo`: the whole flow once, on this machine, with a table of what happened.

Starts a local stack, uploads six images made on the spot (a photo, one rotated by EXIF,
an iPhone-style HEIC, a PNG with alpha, a scene under avatars/, a corrupt one), waits for
each to reach its expected state, prints the table and the dead-letter count, stops the
stack. Exit status 0 only if all went as expected (for the corrupt file, the expected state
is `failed` with reason `corrupt`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from image_pipeline import output_rules
from image_pipeline.records import image_doc_id
from infra.common import paths
from infra.common.terminal import quiet_broken_pipe, table
from infra.local import sample_images
from infra.local.local_stack import LocalStack, StackOptions
from infra.local.servers import PreflightError, StartupError
from infra.model.config import load_config
from infra.ops.documents import Documents

WAIT_SECONDS = 90.0


@dataclass(frozen=True)
class Sample:
    name: str
    make: Callable[[], bytes]
    content_type: str
    status: str  # expected doc status
    reason: str | None = None  # expected error reason when failed


SAMPLES = (
    Sample("demo/photo.jpg", sample_images.jpeg, "image/jpeg", "processed"),
    Sample("demo/rotated-by-exif.jpg", sample_images.exif_rotated_jpeg, "image/jpeg", "processed"),
    Sample("demo/iphone.heic", sample_images.iphone_heic, "image/heic", "processed"),
    Sample("demo/alpha.png", sample_images.png_with_alpha, "image/png", "processed"),
    # cdktf.json's example rule: cover squares, cropped onto the detail (docs/outputs.md).
    Sample("demo/avatars/scene.jpg", sample_images.off_centre_subject, "image/jpeg", "processed"),
    Sample("demo/corrupt.jpg", sample_images.corrupt_jpeg, "image/jpeg", "failed", "corrupt"),
)


def _wait(
    stack: LocalStack, documents: Documents, sample: Sample, deadline: float
) -> dict[str, Any] | None:
    t = stack.topology
    doc_id = image_doc_id(t.buckets["uploads"].name, sample.name)
    doc = None
    while time.monotonic() < deadline:
        doc = documents.get(t.collections["images"], doc_id)
        if doc and doc.get("status") in ("processed", "failed", "deleted"):
            return doc
        time.sleep(0.2)
    return doc


def run(stack: LocalStack) -> int:
    assert stack.clients is not None
    uploads = stack.clients.storage.bucket(stack.topology.buckets["uploads"].name)
    documents = Documents(stack.clients.firestore, stack.topology.firestore_database)
    started: dict[str, float] = {}
    for sample in SAMPLES:
        started[sample.name] = time.time()
        uploads.blob(sample.name).upload_from_string(
            sample.make(), content_type=sample.content_type
        )

    deadline = time.monotonic() + WAIT_SECONDS
    rows, ok = [], True
    for sample in SAMPLES:
        doc = _wait(stack, documents, sample, deadline) or {}
        status = doc.get("status", "(none)")
        reason = (doc.get("error") or {}).get("reason")
        thumbs = doc.get("thumbnails") or []
        config = stack.config
        outputs = output_rules.outputs_for(
            sample.name, config.output_rules, config.thumbnail_sizes, config.thumbnail_formats
        )
        expected = len(outputs.sizes) * len(outputs.formats) if sample.status == "processed" else 0
        good = status == sample.status and reason == sample.reason and len(thumbs) == expected
        ok &= good
        updated = doc.get("updatedAt")
        latency = (updated.timestamp() - started[sample.name]) * 1000 if updated else None
        sizes = " ".join(_size(t) for t in thumbs) or "-"
        source = f"{doc['format']} {doc['width']}x{doc['height']}" if doc.get("width") else "-"
        rows.append(
            (
                sample.name,
                status + (f" ({reason})" if reason else ""),
                source,
                sizes,
                _placeholder(doc.get("placeholder")),
                f"{latency:.0f}" if latency is not None else "-",
                "ok"
                if good
                else f"EXPECTED {sample.status}" + (f"/{sample.reason}" if sample.reason else ""),
            )
        )
    dead = list(documents.stream(stack.topology.collections["dead_letters"]))
    header = ("object", "status", "source", "thumbnails", "placeholder", "latency ms", "check")
    print(table(header, rows))
    print(f"\ndead letters: {len(dead)}")
    ok &= not dead
    print("demo: OK" if ok else "demo: FAILED (see the check column and .local/demo/logs/)")
    return 0 if ok else 1


def _size(thumbnail: dict[str, Any]) -> str:
    """``WxH``, marked ``(cover)`` when the size covers its box."""
    cover = str(thumbnail.get("box", "")).endswith(":cover")
    return f"{thumbnail['width']}x{thumbnail['height']}" + (" (cover)" if cover else "")


def _placeholder(placeholder: dict[str, Any] | None) -> str:
    """Dominant colour and the start of the BlurHash (the whole one is in the doc)."""
    if not placeholder:
        return "-"
    return f"{placeholder['color']} {placeholder['blurhash'][:10]}…"


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="scripts/demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    config = load_config(overrides={"project": "demo-imgpipe"})
    options = StackOptions(state_dir=paths.LOCAL_DIR / "demo", backoff_factor=0.1)
    print(
        "starting the local stack (Pub/Sub + Firestore emulators, fake-gcs-server, 4 functions)...",
        file=sys.stderr,
    )
    try:
        with LocalStack(config, options) as stack:
            print(
                f"stack up in {stack.timings['up_s']:.1f} s; uploading {len(SAMPLES)} images\n",
                file=sys.stderr,
            )
            return quiet_broken_pipe(lambda: run(stack))
    except (PreflightError, StartupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
