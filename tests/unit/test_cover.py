"""The cover geometry: uniform scale, exact crop, and where the detail focus puts it."""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw

from image_pipeline import cover


@pytest.mark.parametrize(
    ("size", "box", "scaled", "crop"),
    [
        ((4000, 3000), (256, 256), (341, 256), (256, 256)),  # landscape: width overflows
        ((3000, 4000), (256, 256), (256, 341), (256, 256)),  # portrait: height overflows
        ((4000, 3000), (300, 100), (300, 225), (300, 100)),
        ((100, 100), (256, 128), (100, 100), (100, 50)),  # smaller than the box: no upscale
        ((256, 256), (256, 256), (256, 256), (256, 256)),
    ],
)
def test_scale_covers_the_box_and_the_crop_is_the_box(
    size: tuple[int, int], box: tuple[int, int], scaled: tuple[int, int], crop: tuple[int, int]
) -> None:
    assert cover.scaled_size(size, box) == scaled
    assert cover.crop_size(scaled, box) == crop
    # Uniform: the scaled image keeps the source's aspect ratio (nothing is stretched).
    assert abs(scaled[0] / scaled[1] - size[0] / size[1]) < 0.01


def _busy_on(side: str, size: tuple[int, int] = (400, 200)) -> Image.Image:
    """A flat sky with a scribbled subject near one end of the long axis."""
    im = Image.new("RGB", size, (120, 170, 220))
    draw = ImageDraw.Draw(im)
    rng = random.Random(7)
    long_side = max(size)
    lo, hi = (int(long_side * 0.75), long_side - 5) if side == "end" else (5, long_side // 4)
    for _ in range(600):
        a, b = rng.randint(lo, hi), rng.randint(10, min(size) - 10)
        xy = (a, b) if size[0] >= size[1] else (b, a)
        end = (xy[0] + rng.randint(-8, 8), xy[1] + rng.randint(-8, 8))
        draw.line((xy, end), fill=(rng.randint(0, 255),) * 3, width=2)
    return im


def test_centre_focus_crops_the_middle() -> None:
    assert cover.crop_rectangle(_busy_on("end"), (200, 200), "centre") == (100, 0, 300, 200)


@pytest.mark.parametrize("side", ["start", "end"])
def test_detail_focus_moves_the_crop_onto_the_edges(side: str) -> None:
    left, top, right, bottom = cover.crop_rectangle(_busy_on(side), (200, 200), "detail")
    assert (right - left, bottom - top, top) == (200, 200, 0)
    assert left >= 150 if side == "end" else left <= 50


def test_detail_focus_works_along_the_height_too() -> None:
    tall = _busy_on("end", (200, 400))
    left, top, right, bottom = cover.crop_rectangle(tall, (200, 200), "detail")
    assert (left, right - left, bottom - top) == (0, 200, 200)
    assert top >= 150


def test_detail_focus_on_a_flat_image_is_the_centre() -> None:
    flat = Image.new("RGB", (400, 200), "white")
    assert cover.crop_rectangle(flat, (200, 200), "detail") == (100, 0, 300, 200)
