"""Cover: fill a box exactly by scaling the image until it covers the box, then cropping.

The scale is uniform and never above 1 (docs/outputs.md, "Fit modes"). The crop sits at the
``focus``: the centre, or the window with the most edge energy (``detail``), a cheap
stand-in for "where the subject is": product shots, faces and text have edges, skies do not.
"""

from __future__ import annotations

import itertools
from typing import Literal

from PIL import Image, ImageFilter

Focus = Literal["centre", "detail"]
FOCI: tuple[Focus, ...] = ("centre", "detail")
# The edge profile is measured on a copy at most this many pixels along each side: enough to
# place a crop within 1/256 of the image, and a few milliseconds at most.
_PROFILE_SIDE = 256


def scaled_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size, same aspect ratio, that covers ``box``; never larger than ``size``."""
    width, height = size
    scale = min(max(box[0] / width, box[1] / height), 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_size(scaled: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The crop out of ``scaled``: ``box`` itself, or when the source was smaller than the
    box, the largest rectangle of the box's aspect ratio inside ``scaled``."""
    keep = min(scaled[0] / box[0], scaled[1] / box[1], 1.0)
    return (
        min(scaled[0], max(1, round(box[0] * keep))),
        min(scaled[1], max(1, round(box[1] * keep))),
    )


def crop_rectangle(
    im: Image.Image, crop: tuple[int, int], focus: Focus
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the ``crop``-sized window of ``im`` to keep."""
    spare_x, spare_y = im.width - crop[0], im.height - crop[1]
    left, top = spare_x // 2, spare_y // 2
    if focus == "detail" and spare_x > 0:
        left = _busiest(im, crop[0], horizontal=True)
    elif focus == "detail" and spare_y > 0:
        top = _busiest(im, crop[1], horizontal=False)
    return left, top, left + crop[0], top + crop[1]


def _busiest(im: Image.Image, length: int, horizontal: bool) -> int:
    """The offset of the ``length``-pixel window along one axis with the most edge energy.

    Edge energy: the absolute response of Pillow's ``FIND_EDGES`` (a 3x3 Laplacian) on a
    greyscale copy, averaged across the other axis. Ties (a flat image) go to the window
    nearest the centre, so "detail" degrades to "centre" when there is nothing to find.
    """
    along = im.width if horizontal else im.height
    across = im.height if horizontal else im.width
    n, m = min(along, _PROFILE_SIDE), min(across, _PROFILE_SIDE)
    if n < 3 or m < 3:
        return (along - length) // 2
    grey = im.convert("L").resize((n, m) if horizontal else (m, n), Image.Resampling.BOX)
    edges = grey.filter(ImageFilter.FIND_EDGES)
    # Pillow leaves the outermost pixels unfiltered: they are left out of the profile.
    inner = edges.crop((1, 1, edges.width - 1, edges.height - 1))
    line = inner.resize((n - 2, 1) if horizontal else (1, n - 2), Image.Resampling.BOX)
    profile = [0.0, *(float(v) for v in line.get_flattened_data()), 0.0]  # type: ignore[arg-type]
    window = max(1, min(n, round(length * n / along)))
    sums = [0.0, *itertools.accumulate(profile)]
    centre = (n - window) / 2
    best = max(
        range(n - window + 1),
        key=lambda start: (sums[start + window] - sums[start], -abs(start - centre)),
    )
    return min(along - length, max(0, round(best * along / n)))
