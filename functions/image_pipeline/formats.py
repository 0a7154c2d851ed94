"""What a thumbnail is made as: its output formats, the boxes it fits in, the memory it may take.

The one list of output formats: the settings validate against it, the image core encodes by
it, and the operator tools and tests read it. A new output format is a ``Format`` name and an
``OUTPUTS`` entry here (plus its test); nothing else names the formats.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Literal, NamedTuple

# The value of THUMBNAIL_FORMATS and the thumbnail's file extension; the settings parse a
# tuple of these (its type picks the parser), so it is a Literal, not plain text.
Format = Literal["webp", "jpeg", "png", "avif"]
FORMATS: tuple[Format, ...] = typing.get_args(Format)

# libwebp effort (Pillow's `method`, libvips' `effort`; 0 fastest .. 6 smallest). For
# thumbnails 2 halves the encode time of the default 4 for files ~4 % larger (measured on
# 12 MP photos, docs/benchmarks.md); the encode is otherwise half of a thumbnail's CPU time.
WEBP_METHOD = 2


@dataclasses.dataclass(frozen=True)
class OutputFormat:
    """One output format as Pillow writes it.

    ``alpha``: the encoder keeps transparency (else it is flattened on white); ``grey``: it
    takes L/LA pixels (else they become RGB/RGBA); ``feature``: what ``PIL.features.check``
    calls the library it needs, ``library`` how a user gets it.
    """

    name: Format
    pillow: str
    content_type: str
    alpha: bool
    grey: bool
    feature: str
    library: str
    quality: bool = True  # the encoder takes a quality 1..100
    extra: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def available(self) -> bool:
        """Whether this Pillow build can write the format."""
        # Pillow only when asked: the stack's synth validates settings and needs no imaging.
        from PIL import features

        return bool(features.check(self.feature))

    def encoder_options(self, quality: int) -> dict[str, int]:
        """Keyword arguments of Pillow's ``save`` (the benchmarks use them for their baselines
        too, so every engine encodes alike)."""
        return ({"quality": quality} if self.quality else {}) | dict(self.extra)


OUTPUTS: Mapping[str, OutputFormat] = {
    fmt.name: fmt
    for fmt in (
        OutputFormat(
            "webp",
            "WEBP",
            "image/webp",
            alpha=True,
            grey=False,
            feature="webp",
            library="libwebp",
            extra={"method": WEBP_METHOD},
        ),
        OutputFormat(
            "jpeg", "JPEG", "image/jpeg", alpha=False, grey=True, feature="jpg", library="libjpeg"
        ),
        OutputFormat(
            "png",
            "PNG",
            "image/png",
            alpha=True,
            grey=True,
            feature="zlib",
            library="zlib",
            quality=False,
        ),
        OutputFormat(
            "avif",
            "AVIF",
            "image/avif",
            alpha=True,
            grey=False,
            feature="avif",
            library="libavif (Pillow >= 11.2 wheels)",
        ),
    )
}


# How a thumbnail fills its box (docs/outputs.md, "Fit modes"): `inside` keeps the whole image
# within the box, `cover` fills the box exactly and crops what overflows.
FitMode = Literal["inside", "cover"]
FIT_MODES: tuple[FitMode, ...] = typing.get_args(FitMode)
MAX_BOX_SIDE = 99_999  # bounds a thumbnail's leaf name ("WxH.ext") whatever the sizes
# A cover leaf ("WxH-c.ext") must fit the same bytes as the longest inside leaf (16), so the
# hashed-folder rule of long names never depends on the sizes configured.
MAX_COVER_SIDE = 9_999
_SIZE = re.compile(r"(\d+)x(\d+)(?::([a-z]+))?")


class Box(NamedTuple):
    """A thumbnail's box and how the image fills it: written ``WxH`` (inside) or
    ``WxH:cover``."""

    width: int
    height: int
    mode: FitMode = "inside"

    def __str__(self) -> str:
        return f"{self.width}x{self.height}" + ("" if self.mode == "inside" else f":{self.mode}")

    @property
    def leaf(self) -> str:
        """The thumbnail's file name without the extension: ``WxH`` or ``WxH-c``."""
        return f"{self.width}x{self.height}" + ("-c" if self.mode == "cover" else "")


def parse_size(item: object) -> Box:
    """One size: ``"512x512"``, ``"256x256:cover"``, a Box, or a ``[w, h(, mode)]`` list."""
    if isinstance(item, list | tuple) and len(item) in (2, 3):
        item = "x".join(map(str, item[:2])) + (f":{item[2]}" if len(item) == 3 else "")
    match = _SIZE.fullmatch(str(item).strip().lower())
    if not match:
        raise ValueError(f"{item!r} is not WIDTHxHEIGHT or WIDTHxHEIGHT:cover (e.g. 512x512)")
    mode = match[3] or "inside"
    if mode not in FIT_MODES:
        raise ValueError(f"{item!r}: unknown fit mode {mode!r}; choose from {', '.join(FIT_MODES)}")
    box = Box(int(match[1]), int(match[2]), typing.cast(FitMode, mode))
    limit = MAX_COVER_SIDE if box.mode == "cover" else MAX_BOX_SIDE
    if not (1 <= box.width <= limit and 1 <= box.height <= limit):
        raise ValueError(f"{item!r}: each side of a {box.mode} size must be 1..{limit}")
    return box


def parse_sizes(raw: object) -> tuple[Box, ...]:
    """A comma-separated text or a list of sizes; a size listed twice is refused."""
    items = list_items(raw)
    sizes = tuple(parse_size(item) for item in items)
    for index, box in enumerate(sizes):
        if box in sizes[:index]:
            raise ValueError(f"lists the size {box} twice")
    return sizes


def parse_formats(raw: object) -> tuple[Format, ...]:
    """Known output formats, each once, that this Pillow can write."""
    fmts = tuple(str(item).lower() for item in list_items(raw))
    for index, fmt in enumerate(fmts):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        if fmt in fmts[:index]:
            raise ValueError(f"lists the format {fmt} twice")
        if not OUTPUTS[fmt].available():
            raise ValueError(f"{fmt} needs a Pillow built with {OUTPUTS[fmt].library}")
    return typing.cast(tuple[Format, ...], fmts)


def list_items(raw: object) -> list[object]:
    """The items of a comma-separated text (none when blank) or of a list (from JSON)."""
    if isinstance(raw, str):
        return [item.strip() for item in raw.split(",")] if raw.strip() else []
    if isinstance(raw, list | tuple):
        return list(raw)
    raise ValueError(f"{raw!r} is not a comma-separated list")


# A function's memory as the deployment states it (Cloud Functions' `available_memory`).
MEMORY = re.compile(r"([1-9][0-9]*)(Mi|Gi)")
_MEMORY_UNITS = {"Mi": 1 << 20, "Gi": 1 << 30}


# What Cloud Run (and so Cloud Functions 2nd gen) accepts: 128 MiB to 32 GiB per instance
# (https://cloud.google.com/run/docs/configuring/services/memory-limits).
MIN_MEMORY, MAX_MEMORY = "128Mi", "32Gi"


def memory_problem(text: str) -> str | None:
    """Why ``text`` is not a memory size the platform accepts (None when it is)."""
    if not MEMORY.fullmatch(text):
        return f"{text!r} is not a size like 512Mi or 2Gi"
    if not memory_bytes(MIN_MEMORY) <= memory_bytes(text) <= memory_bytes(MAX_MEMORY):
        return f"{text!r} is outside {MIN_MEMORY}..{MAX_MEMORY}, what Cloud Run accepts"
    return None


def memory_bytes(text: str) -> int:
    """Bytes of a memory size written like ``512Mi`` or ``2Gi``."""
    match = MEMORY.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 512Mi or 2Gi")
    return int(match[1]) * _MEMORY_UNITS[match[2]]
