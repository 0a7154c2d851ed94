"""Custom metadata copied from an original to its thumbnails and its doc (``METADATA_KEYS``).

Cloud Storage allows at most 8 KiB of custom metadata per object, keys and values together
(https://cloud.google.com/storage/quotas#objects); a thumbnail already carries the pipeline's
own keys (loop marker, source, generation, fingerprint), so a copied key that would take it
over the limit is left out and named, never a failed upload. The doc's ``metadata`` holds the
same keys: far within Firestore's 1 MiB per document (https://cloud.google.com/firestore/quotas).

A value holding a control character is left out too, whatever API delivered it: the XML API
carries custom metadata as ``x-goog-meta-*`` HTTP headers
(https://cloud.google.com/storage/docs/metadata#custom-metadata), and a header value holds
no control character but HTAB (RFC 9110, 5.5), so such a value cannot be read back or
written through every Cloud Storage API; nor is it shown to a person in the doc; nor is
text that is not UTF-8 (a lone surrogate from a JSON escape). Non-ASCII
text is copied: the JSON API, which the pipeline writes with, stores it as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from image_pipeline.events import OUTPUT_MARKER

MAX_CUSTOM_METADATA_BYTES = 8 * 1024
# A thumbnail's key for the output rules' fingerprint it was made under.
FINGERPRINT_KEY = "output-fingerprint"
# A thumbnail's key for the run that wrote it: the generation number of that run's first
# write (absent on the first write itself: its own generation): image_pipeline.thumbnails.
RUN_KEY = "outputs-generation"
# Room kept for RUN_KEY and its value: the widest generation number (int64, 19 digits).
_RUN_BYTES = len(RUN_KEY) + 19
# RFC 9110, 5.5: an HTTP field value holds no control character but HTAB.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What the pipeline writes on every thumbnail itself: never copied over from an original.
PIPELINE_KEYS = frozenset(
    {OUTPUT_MARKER, "source-bucket", "source-name", "source-generation", FINGERPRINT_KEY, RUN_KEY}
)


def metadata_bytes(metadata: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())


def copied(
    source: Mapping[str, str], keys: Sequence[str], ours: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """(the keys of ``source`` named in ``keys`` that fit beside ``ours`` and a run mark, in
    that order; the keys present but left out for want of room; those left out for holding
    a control character or a lone surrogate)."""
    kept: dict[str, str] = {}
    omitted: list[str] = []
    refused: list[str] = []
    room = MAX_CUSTOM_METADATA_BYTES - metadata_bytes(ours) - _RUN_BYTES
    for key in keys:
        if key not in source or key in ours:
            continue
        value = str(source[key])
        if not _holdable(value):
            refused.append(key)
            continue
        size = len(key.encode()) + len(value.encode())
        if size > room:
            omitted.append(key)
        else:
            kept[key] = value
            room -= size
    return kept, omitted, refused


def _holdable(value: str) -> bool:
    """Text Cloud Storage can hold in every API: UTF-8 (no lone surrogate from a JSON
    escape) without control characters."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return not CONTROL_CHARACTERS.search(value)
