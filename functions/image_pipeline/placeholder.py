"""What an app paints before a thumbnail arrives: a BlurHash (https://blurha.sh) and the
dominant colour of the smallest thumbnail (docs/architecture.md). ``blurhash-rs`` encodes it
~200x faster than ``blurhash-python``, which copies the pixels through Python lists."""

from __future__ import annotations

import dataclasses
from typing import cast

from blurhash_rs import blurhash_encode
from PIL import Image

_COMPONENTS = 4  # along the longer side; BlurHash allows 1..9 (4x3 is its usual choice)
_COLOUR_SIDE = 32  # the dominant colour is judged on at most this many pixels per side
_COLOURS = 5  # clusters of the median cut; the most populous one is "dominant"


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """``blurhash`` decodes at ``width`` x ``height`` (or any size of that aspect);
    ``color`` is ``#rrggbb``."""

    blurhash: str
    width: int
    height: int
    color: str


def components(width: int, height: int) -> tuple[int, int]:
    """BlurHash components (x, y): 4 along the longer side, in proportion on the other."""
    if width >= height:
        return _COMPONENTS, max(1, round(_COMPONENTS * height / width))
    return max(1, round(_COMPONENTS * width / height)), _COMPONENTS


def describe(rgb: Image.Image) -> Placeholder:
    """The placeholder of an upright sRGB image in mode RGB."""
    x, y = components(*rgb.size)
    return Placeholder(
        blurhash=blurhash_encode(rgb, x, y),
        width=rgb.width,
        height=rgb.height,
        color=dominant_colour(rgb),
    )


def dominant_colour(rgb: Image.Image) -> str:
    """The centre of the largest median-cut cluster of a small copy, as ``#rrggbb``."""
    small = rgb.copy()
    small.thumbnail((_COLOUR_SIDE, _COLOUR_SIDE), Image.Resampling.BOX)
    quantized = small.quantize(_COLOURS, method=Image.Quantize.MEDIANCUT)
    # A palette image counts palette indexes: (count, index) pairs.
    colours = cast(list[tuple[int, int]], quantized.getcolors() or [(1, 0)])
    _, index = max(colours)
    palette = quantized.getpalette() or [0, 0, 0]
    red, green, blue = palette[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"
