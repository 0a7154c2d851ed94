"""`scripts/smoke`: prove a deployment works end to end, then remove what the run made
(docs/deploy-and-operate.md, "Prove a deployment"). The local stack and a real project run
the same code (`infra.ops.target`); only the endpoints differ.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from PIL import Image

from image_pipeline.formats import OUTPUTS, parse_size
from image_pipeline.records import image_doc_id
from infra.common import arguments
from infra.common.terminal import table
from infra.ops import dead_letters
from infra.ops import target as targets

DEFAULT_TIMEOUT = 180.0
_PILLOW_FORMATS = {output.content_type: output.pillow for output in OUTPUTS.values()}
_ALPHA_MODES = {"RGBA", "LA", "PA"}
_METADATA_KEYS = {"exif", "xmp", "icc_profile"}  # what Pillow exposes in `info`
AVATAR = "avatars/face.jpg"  # under the example rule's `**/avatars/**`


class StageFailed(Exception):
    """A stage could not go on; the message says what was seen."""


@dataclass(frozen=True)
class Sample:
    name: str  # leaf under the run's prefix
    data: bytes
    content_type: str
    expect_status: str
    expect_reason: str = ""


def samples() -> tuple[Sample, ...]:
    """The four uploads, generated here so the smoke test needs no files."""
    photo = Image.new("RGB", (640, 480))
    photo.paste((200, 40, 40), (0, 0, 320, 480))
    photo.paste((40, 40, 200), (320, 0, 640, 480))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored landscape, shown rotated 90° clockwise: portrait
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", quality=90, exif=exif)
    clear = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    clear.paste((30, 160, 60, 255), (0, 0, 150, 200))
    png = io.BytesIO()
    clear.save(png, "PNG")
    # A JPEG start-of-image marker and then no valid header: the pipeline must reject it.
    corrupt = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    face = Image.new("RGB", (600, 800), (230, 190, 160))
    face.paste((60, 40, 30), (0, 0, 600, 200))
    portrait = io.BytesIO()
    face.save(portrait, "JPEG", quality=90)
    return (
        Sample("photo.jpg", jpeg.getvalue(), "image/jpeg", "processed"),
        Sample("alpha.png", png.getvalue(), "image/png", "processed"),
        Sample(AVATAR, portrait.getvalue(), "image/jpeg", "processed"),
        Sample("corrupt.jpg", corrupt, "image/jpeg", "failed", "corrupt"),
    )


@dataclass
class Report:
    """Checks and stage timings, printed as tables at the end; progress as it goes."""

    out: TextIO
    checks: list[tuple[str, str, bool, str]] = field(default_factory=list)  # stage first
    current: str = ""
    timings: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def progress(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=self.out, flush=True)

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append((self.current, what, ok, detail))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.progress(f"{name} ...")
        self.current = name
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings.append((name, time.monotonic() - start))

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, _, ok, _ in self.checks)

    def print_tables(self) -> None:
        checks = [(what, "ok" if ok else "FAIL", detail) for _, what, ok, detail in self.checks]
        print("\n" + table(("CHECK", "RESULT", "DETAIL"), checks), file=self.out)
        timings = [(name, f"{seconds:7.1f}") for name, seconds in self.timings]
        print("\n" + table(("STAGE", "SECONDS"), timings), file=self.out)
        if self.passed:
            print("\nsmoke test PASSED", file=self.out)
            return
        failed = ", ".join(what for _, what, ok, _ in self.checks if not ok)
        stages = ", ".join(dict.fromkeys(stage for stage, _, ok, _ in self.checks if not ok))
        print(f"\nsmoke test FAILED in stage {stages}: {failed}", file=self.out)


class Smoke:
    """One run against one target; every stage records its checks in the report."""

    def __init__(
        self, target: targets.Target, report: Report, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.target = target
        self.report = report
        self.timeout = timeout
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.prefix = f"smoke/{stamp}-{uuid.uuid4().hex[:6]}/"
        self.samples = {s.name: s for s in samples()}
        self.docs: dict[str, dict[str, Any]] = {}

    def object_name(self, sample: str) -> str:
        return f"{self.prefix}{sample}"

    def doc_id(self, sample: str) -> str:
        return image_doc_id(self.target.uploads_bucket, self.object_name(sample))

    def doc(self, sample: str) -> dict[str, Any] | None:
        return self.target.documents.get(self.target.images_collection, self.doc_id(sample))

    def wait(self, what: str, done: Callable[[], tuple[bool, str]], timeout: float) -> bool:
        """Polls `done` (-> finished?, progress text) until it holds or `timeout` passes."""
        deadline = time.monotonic() + timeout
        last_line = 0.0
        while True:
            finished, state = done()
            if finished:
                return True
            now = time.monotonic()
            if now >= deadline:
                self.report.progress(f"{what}: gave up after {timeout:.0f} s ({state})")
                return False
            if now - last_line >= 5.0:
                self.report.progress(f"{what}: {state}")
                last_line = now
            time.sleep(1.0)

    def dead_letters(self) -> list[str]:
        """Ids of the dead-letter records about this run's objects."""
        about = dead_letters.about_uploads(self.target).items()
        return sorted(i for name, found in about if name.startswith(self.prefix) for i, _ in found)

    def _upload(self, sample: Sample) -> Any:
        """The sample's object, written (a new generation when it was there already)."""
        uploads = self.target.storage.bucket(self.target.uploads_bucket)
        blob = uploads.blob(self.object_name(sample.name))
        with self.target.answering("Cloud Storage"):
            blob.upload_from_string(
                sample.data, content_type=sample.content_type, timeout=self.target.deadline_seconds
            )
        return blob

    def upload(self) -> None:
        for sample in self.samples.values():
            self._upload(sample)
        self.report.check(
            f"upload {len(self.samples)} files",
            True,
            f"gs://{self.target.uploads_bucket}/{self.prefix}",
        )

    def process(self) -> None:
        """Waits for the documents to reach a final status, then checks each."""

        def settled() -> tuple[bool, str]:
            for name in self.samples:
                if name not in self.docs:
                    doc = self.doc(name)
                    if doc is not None and doc.get("status") in ("processed", "failed"):
                        self.docs[name] = doc
            pending = [n for n in self.samples if n not in self.docs]
            return not pending, (
                f"{len(self.docs)}/{len(self.samples)} documents, waiting for {', '.join(pending)}"
            )

        self.wait("metadata documents", settled, self.timeout)
        for name, sample in self.samples.items():
            doc = self.docs.get(name)
            if doc is None:
                self.report.check(f"{name} {sample.expect_status}", False, "no final document")
                continue
            status = doc.get("status")
            reason = (doc.get("error") or {}).get("reason", "")
            detail = f"status {status}" + (f", reason {reason}" if reason else "")
            ok = status == sample.expect_status and reason == sample.expect_reason
            if ok and status == "processed":
                detail += f", {doc.get('width')}x{doc.get('height')} {doc.get('format')}"
            self.report.check(f"{name} {sample.expect_status}", ok, detail)
        if len(self.docs) < len(self.samples):
            raise StageFailed("not every upload got its metadata document")
        photo = self.docs["photo.jpg"]
        upright = (photo.get("width"), photo.get("height")) == (480, 640)
        self.report.check(
            "EXIF orientation applied", upright, f"{photo.get('width')}x{photo.get('height')}"
        )

    def thumbnails(self) -> None:
        for name in ("photo.jpg", "alpha.png", AVATAR):
            doc = self.docs.get(name, {})
            outputs = self.target.settings.outputs.outputs_for(self.object_name(name))
            entries = doc.get("thumbnails") or []
            generation = doc.get("generation")
            problems = [p for e in entries if (p := self._thumbnail_problem(name, generation, e))]
            expected = len(outputs.sizes) * len(outputs.formats)
            if len(entries) != expected:
                problems.append(f"{len(entries)} listed, {expected} configured")
            listed = sorted({str(e.get("box")) for e in entries})
            if listed != sorted({str(box) for box in outputs.sizes}):
                problems.append(f"sizes {', '.join(listed)}, configured {outputs.sizes}")
            detail = "; ".join(problems) or f"{len(entries)} exist, decode, match, no EXIF"
            self.report.check(f"{name} thumbnails", not problems, detail)
            rule = doc.get("rule")
            self.report.check(
                f"{name} output rule",
                rule == outputs.rule,
                f"rule {rule or 'none (the default sizes)'}: "
                + ", ".join(str(box) for box in outputs.sizes),
            )

    def _thumbnail_problem(self, sample: str, generation: Any, entry: Mapping[str, Any]) -> str:
        """What is wrong with one listed thumbnail ("" when nothing): it must exist AND be
        the output of the generation the doc describes."""
        leaf = str(entry.get("name", "")).rsplit("/", 1)[-1]
        blob = self.target.blob(entry["bucket"], entry["name"])
        if blob is None:
            return f"{leaf} missing"
        held = (blob.metadata or {}).get("source-generation")
        if held != str(generation):
            return f"{leaf} is the output of generation {held}, the doc is at {generation}"
        if blob.content_type != entry.get("contentType"):
            return f"{leaf} content type {blob.content_type}, listed {entry.get('contentType')}"
        if blob.size != entry.get("size"):
            return f"{leaf} is {blob.size} bytes, listed {entry.get('size')}"
        try:
            with Image.open(io.BytesIO(blob.download_as_bytes(**self.target.storage_call()))) as im:
                im.load()
                size, fmt, mode, info, exif = im.size, im.format, im.mode, im.info, im.getexif()
        except Exception as exc:  # anything Pillow raises means it does not decode
            return f"{leaf} does not decode: {exc}"
        if size != (entry.get("width"), entry.get("height")):
            return (
                f"{leaf} is {size[0]}x{size[1]}, listed {entry.get('width')}x{entry.get('height')}"
            )
        if not entry.get("box"):
            return f"{leaf} lists no box"
        box = parse_size(entry["box"])
        if box.mode == "cover" and size != (box.width, box.height):
            return f"{leaf} is {size[0]}x{size[1]}, not exactly its cover box {box}"
        if entry.get("uri") != f"gs://{entry['bucket']}/{entry['name']}":
            return f"{leaf} lists uri {entry.get('uri')!r}"
        if fmt != _PILLOW_FORMATS.get(str(entry.get("contentType"))):
            return f"{leaf} decodes as {fmt}, listed {entry.get('contentType')}"
        carried = sorted(_METADATA_KEYS & set(info)) or (["exif"] if len(exif) else [])
        if carried:
            return f"{leaf} carries {', '.join(carried)}"
        if sample == "photo.jpg" and not size[1] > size[0]:
            return f"{leaf} is landscape: EXIF orientation not applied"
        if sample == "alpha.png" and fmt != "JPEG" and mode not in _ALPHA_MODES:
            return f"{leaf} lost its alpha channel (mode {mode})"
        return ""

    def overwrite(self) -> None:
        """Uploads alpha.png again: the new generation's thumbnails replace the old one's and
        the doc moves to it (cleanup reads the upload to tell an overwrite from a delete)."""
        name = "alpha.png"
        old = str(self.docs[name].get("generation"))
        listed = [(e["bucket"], e["name"]) for e in self.docs[name].get("thumbnails") or []]
        blob = self._upload(self.samples[name])

        def replaced() -> tuple[bool, str]:
            doc = self.doc(name) or {}
            thumbs = [self.target.blob(b, n) for b, n in listed]
            stale = sum((t.metadata or {}).get("source-generation") == old for t in thumbs if t)
            moved = str(doc.get("generation")) == str(blob.generation)
            moved &= doc.get("status") == "processed"
            state = f"doc at {doc.get('generation')} ({doc.get('status')}), {stale} old thumbnails"
            return moved and not stale, state

        done = self.wait(f"overwrite {name}", replaced, self.timeout)
        self.report.check(f"{name} overwritten", done, replaced()[1])

    def delete_photo(self) -> None:
        name = "photo.jpg"
        listed = [(e["bucket"], e["name"]) for e in self.docs[name].get("thumbnails") or []]
        self.target.delete(self.target.uploads_bucket, self.object_name(name))

        def gone() -> tuple[bool, str]:
            left = [n for b, n in listed if self.target.blob(b, n) is not None]
            status = self._status(name)
            return (not left and status == "deleted"), f"{len(left)} thumbnails left, doc {status}"

        done = self.wait("delete photo.jpg", gone, self.timeout)
        _, state = gone()
        self.report.check("photo.jpg deleted", done, state)
        if not done:
            raise StageFailed("the delete did not go through")

    def check_dead_letters(self) -> None:
        ours = self.dead_letters()
        detail = f"{len(ours)} from this run" + (f": {', '.join(ours)}" if ours else "")
        self.report.check("no new dead letters", not ours, detail)

    def cleanup(self) -> None:
        """Deletes the originals and waits until the pipeline marks each doc `deleted` (the
        last event a doc waits for), then removes the docs, the thumbnails left and the dead
        letters about the run, and looks for leftovers. What can still write a doc back is
        an event of the run retried or delivered again later (docs/deploy-and-operate.md)."""
        for name in self.samples:
            self.target.delete(self.target.uploads_bucket, self.object_name(name))

        def marked() -> tuple[bool, str]:
            waiting = [n for n in self.samples if self._status(n) not in (None, "deleted")]
            return not waiting, f"waiting for {', '.join(waiting)} to be marked deleted"

        settled = self.wait("pipeline settled", marked, self.timeout)
        for name in self.samples:
            self.target.documents.delete(self.target.images_collection, self.doc_id(name))
        for bucket, name in self._objects():
            self.target.delete(bucket, name)
        for record_id in self.dead_letters():
            self.target.documents.delete(self.target.dead_letters_collection, record_id)
        left = [
            *(f"gs://{bucket}/{name}" for bucket, name in self._objects()),
            *(f"doc of {n}" for n in self.samples if self.doc(n) is not None),
            *(f"dead letter {record_id}" for record_id in self.dead_letters()),
        ]
        detail = f"left: {', '.join(left)}" if left else "nothing left"
        if not settled:
            detail += "; delete events not processed yet may write docs back"
        self.report.check("cleanup", settled and not left, detail)

    def _status(self, sample: str) -> str | None:
        return (self.doc(sample) or {}).get("status")

    def _objects(self) -> list[tuple[str, str]]:
        """The run's originals and thumbnails still in their buckets."""
        thumbnails = (
            self.target.thumbnails_bucket,
            f"{self.target.settings.thumbnail_prefix}{self.prefix}",
        )
        found = []
        for bucket, prefix in ((self.target.uploads_bucket, self.prefix), thumbnails):
            found += [(bucket, blob.name) for blob in self.target.blobs(bucket, prefix)]
        return found

    def run(self) -> bool:
        report = self.report
        where = "the local stack" if self.target.is_local else f"project {self.target.project}"
        report.progress(f"smoke test of {where}, prefix {self.prefix}")
        # Before anything is uploaded: a Firestore that does not answer stops the run here,
        # in one line (run_tool), with nothing to clean up.
        self.dead_letters()
        try:
            with report.stage("upload"):
                self.upload()
            with report.stage("process"):
                self.process()
            with report.stage("thumbnails"):
                self.thumbnails()
            with report.stage("overwrite"):
                self.overwrite()
            with report.stage("delete"):
                self.delete_photo()
            with report.stage("dead letters"):
                self.check_dead_letters()
        except StageFailed as exc:
            report.progress(f"stopped: {exc}")
        except Exception as exc:
            report.check(f"{report.current} stage ran", False, f"{type(exc).__name__}: {exc}")
        finally:
            with report.stage("cleanup"):
                try:
                    self.cleanup()
                except Exception as exc:
                    report.check("cleanup", False, f"{type(exc).__name__}: {exc}")
        report.print_tables()
        return report.passed


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = arguments.Parser(
        prog="scripts/smoke",
        description="Prove a deployment end to end: upload four files, check their documents "
        "and thumbnails, overwrite one, delete one, check for dead letters, remove what it "
        "made. Exit 0 only when every check holds.",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.number(above=0),
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait in each waiting stage (default {DEFAULT_TIMEOUT:.0f})",
    )
    targets.add_arguments(parser, local_by_default=False)
    args = parser.parse_args(argv)

    def command(target: targets.Target) -> int:
        # A waiting stage polls: no single call may take longer than the stage may wait.
        target.deadline_seconds = min(target.deadline_seconds, args.timeout / 2)
        return 0 if Smoke(target, Report(out), timeout=args.timeout).run() else 1

    return targets.run_tool(args, command)


if __name__ == "__main__":
    sys.exit(main())
