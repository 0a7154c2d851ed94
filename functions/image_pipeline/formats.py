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


class Box(NamedTuple):
    """A bounding box a thumbnail must fit in."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


# A function's memory as the deployment states it (Cloud Functions' `available_memory`).
MEMORY = re.compile(r"([1-9][0-9]*)(Mi|Gi)")
_MEMORY_UNITS = {"Mi": 1 << 20, "Gi": 1 << 30}


def memory_bytes(text: str) -> int:
    """Bytes of a memory size written like ``512Mi`` or ``2Gi``."""
    match = MEMORY.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 512Mi or 2Gi")
    return int(match[1]) * _MEMORY_UNITS[match[2]]
