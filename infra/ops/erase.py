"""`scripts/erase`: remove everything the pipeline holds about a person's images, on purpose
(docs/deploy-and-operate.md, "Erase"). The doc first stops listing thumbnails; then the
thumbnails, dead-letter records and original go; last the doc becomes a `TOMBSTONE` that a late
event of its generation cannot fill again. What identifies an image goes last, so a run cut
short is finished by the next. Candidates (uploads, docs by name, dead letters) are merged in
name order, the checkpoint's.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from google.api_core.exceptions import PreconditionFailed

from image_pipeline.records import SERVER_TIME, image_doc_id
from image_pipeline.thumbnails import thumbnail_folder
from infra.common import arguments
from infra.ops import bulk, dead_letters
from infra.ops import target as targets
from infra.ops.backfill import is_output

TOOL = bulk.Tool("erase", ("erase", "erased"), "images")
# What a tombstone keeps: what ordering needs (records.decide), and when it was erased.
TOMBSTONE = ("generation", "status", "thumbnails", "erasedAt", "updatedAt")
Candidate = tuple[str, Mapping[str, Any]]  # an object name and the custom metadata seen with it


@dataclass(frozen=True)
class Selection:
    """Which images: exact names, a prefix, and custom metadata pairs (all must hold)."""

    names: tuple[str, ...] = ()
    prefix: str = ""
    metadata: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        """The flags that make it (a checkpoint's key); empty for no selection at all."""
        flags = [f"--object {name}" for name in self.names]
        flags += [f"--prefix {self.prefix}"] if self.prefix else []
        flags += [f"--metadata {key}={value}" for key, value in self.metadata]
        return " ".join(flags)

    def prefixes(self) -> tuple[str, ...]:
        """The name ranges to list: each name's, or the prefix's."""
        return tuple(sorted(self.names)) or (self.prefix,)

    def matches(self, name: str, metadata: Mapping[str, Any]) -> bool:
        exact = not self.names or name in self.names
        held = all(metadata.get(key) == value for key, value in self.metadata)
        return exact and name.startswith(self.prefix) and held


@dataclass
class Plan:
    """What is left of one image, found before anything is removed."""

    name: str
    original: Any | None  # the live object
    doc: dict[str, Any] | None
    thumbnails: list[tuple[str, str]] = field(default_factory=list)  # (bucket, name)
    letters: list[str] = field(default_factory=list)  # dead-letter record ids

    @property
    def generation(self) -> int:
        stored = int((self.doc or {}).get("generation") or 0)
        return max(stored, int(self.original.generation) if self.original else 0)

    def doc_to_erase(self) -> bool:
        """A doc holding more than a tombstone, or an original whose generation needs one."""
        if self.doc is None:
            return self.original is not None
        return bool(set(self.doc) - set(TOMBSTONE)) or self.doc.get("generation") != self.generation

    def details(self, target: targets.Target) -> list[str]:
        """One line per thing to remove (empty: nothing left)."""
        found = [f"thumbnail gs://{bucket}/{name}" for bucket, name in self.thumbnails]
        if self.original is not None:
            uri = f"gs://{target.uploads_bucket}/{self.name}#{self.original.generation}"
            found.insert(0, f"original {uri}")
        if self.doc_to_erase():
            doc_id = image_doc_id(target.uploads_bucket, self.name)
            found.append(f"doc {target.images_collection}/{doc_id} (to a tombstone)")
        return found + [f"dead letter {target.dead_letters_collection}/{i}" for i in self.letters]


def tombstone(stored: Mapping[str, Any] | None, generation: int) -> dict[str, Any] | None:
    """The doc an erased image keeps (None: it is one already)."""
    erased = {"generation": generation, "status": "deleted", "thumbnails": []}
    same = stored is not None and {k: stored.get(k) for k in erased} == erased
    if same and set(stored or {}) <= set(TOMBSTONE):
        return None
    return {**erased, "erasedAt": SERVER_TIME, "updatedAt": SERVER_TIME}


def unlisted(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """Step 1: the doc lists no thumbnails and says `deleted`; everything else stays."""
    if stored is None or (stored.get("status") == "deleted" and not stored.get("thumbnails")):
        return None
    return {**stored, "status": "deleted", "thumbnails": [], "updatedAt": SERVER_TIME}


def _docs(target: targets.Target, prefix: str, after: str) -> Iterator[Candidate]:
    for _, doc in target.documents.by_name(target.images_collection, prefix, after):
        if doc.get("bucket") == target.uploads_bucket:
            metadata = doc.get("metadata")
            yield str(doc["name"]), metadata if isinstance(metadata, dict) else {}


def candidates(
    target: targets.Target, selection: Selection, letters: Mapping[str, list[Any]], after: str
) -> Iterator[str]:
    """Names of the selected images after `after`, in name order, each once."""
    streams: list[Iterator[Candidate]] = []
    for prefix in selection.prefixes():
        objects = target.blobs(target.uploads_bucket, prefix, after)
        streams.append((b.name, b.metadata or {}) for b in objects if not is_output(b.metadata))
        streams.append(_docs(target, prefix, after))
        about = sorted(n for n in letters if n.startswith(prefix) and n > after)
        streams.append((name, meta) for name in about for _, meta in letters[name])
    merged = heapq.merge(*streams, key=lambda candidate: candidate[0])
    for name, seen in itertools.groupby(merged, key=lambda candidate: candidate[0]):
        if any(selection.matches(name, metadata) for _, metadata in seen):
            yield name


def plan(target: targets.Target, name: str, letters: Mapping[str, list[Any]]) -> Plan:
    """Everything left of the image `name`: original, doc, thumbnails, dead letters."""
    uploads = target.uploads_bucket
    original = target.blob(uploads, name)
    if original is not None and is_output(original.metadata):
        original = None
    doc = target.documents.get(target.images_collection, image_doc_id(uploads, name))
    folder = thumbnail_folder(target.settings.thumbnail_prefix, uploads, name)
    found = [
        (target.thumbnails_bucket, blob.name)
        for blob in target.blobs(target.thumbnails_bucket, folder)
        if (blob.metadata or {}).get("source-name") == name
        and (blob.metadata or {}).get("source-bucket") == uploads
    ]
    listed = [(t.get("bucket"), t.get("name")) for t in (doc or {}).get("thumbnails") or []]
    found += [(b, n) for b, n in listed if b == target.thumbnails_bucket and (b, n) not in found]
    return Plan(name, original, doc, found, [i for i, _ in letters.get(name, [])])


def erase(target: targets.Target, plan: Plan) -> str | None:
    """Removes what `plan` found, in the order of the module's docstring; why not, or None."""
    images, doc_id = target.images_collection, image_doc_id(target.uploads_bucket, plan.name)
    generation = plan.generation
    target.documents.update(images, doc_id, unlisted)
    for bucket, name in plan.thumbnails:
        target.delete(bucket, name)
    for record_id in plan.letters:
        target.documents.delete(target.dead_letters_collection, record_id)
    if plan.original is not None:
        try:
            examined = plan.original.generation  # an overwrite since then is not erased
            target.delete(target.uploads_bucket, plan.name, if_generation_match=examined)
        except PreconditionFailed:
            return "the original was overwritten since it was examined; run erase again"
    if generation:
        target.documents.update(images, doc_id, lambda stored: tombstone(stored, generation))
    return None


def run(target: targets.Target, selection: Selection, **bounds: Any) -> bulk.Pass:
    """One bounded pass over the selected images (`bulk.start`'s `bounds`)."""
    run = bulk.start(TOOL, str(selection), **bounds)
    letters = dead_letters.about_uploads(target)
    for name in run.each(candidates(target, selection, letters, run.checkpoint.last_name), str):
        found = plan(target, name, letters)
        details = found.details(target)
        if not details:
            run.count("nothing left")
            continue
        run.act(f"gs://{target.uploads_bucket}/{name}", details, lambda: erase(target, found))  # noqa: B023
    return run


def _pair(text: str) -> tuple[str, str]:
    """argparse type: KEY=VALUE."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = arguments.Parser(
        prog="scripts/erase",
        description="Remove a person's images and everything derived from them: originals, "
        "thumbnails, their docs' personal fields and dead-letter records (dry run by default).",
    )
    parser.add_argument(
        "--object",
        action="append",
        default=[],
        metavar="NAME",
        help="an image by its object name (repeatable)",
    )
    parser.add_argument("--prefix", default="", help="the images whose name starts with this")
    parser.add_argument(
        "--metadata",
        action="append",
        default=[],
        type=_pair,
        metavar="KEY=VALUE",
        help="the images whose custom metadata holds this (repeatable: all must)",
    )
    bulk.add_arguments(parser, TOOL, "erase them")
    targets.add_arguments(parser)
    args = parser.parse_args(argv)
    selection = Selection(tuple(args.object), args.prefix, tuple(args.metadata))
    if not str(selection):
        arguments.refuse("say which images: --object NAME, --prefix PREFIX or --metadata KEY=VALUE")

    def command(target: targets.Target) -> int:
        key, uploads = str(selection), target.uploads_bucket
        bounds = bulk.options(args, TOOL, target.project, uploads, key)
        return 1 if run(target, selection, out=out, **bounds).failed else 0

    return targets.run_tool(args, command)


if __name__ == "__main__":
    sys.exit(main())
