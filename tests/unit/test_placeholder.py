"""The placeholder: a BlurHash that decodes to the image's aspect and colours, and the
dominant colour."""

from __future__ import annotations

import pytest
from blurhash_rs import blurhash_decode
from imagekit import BLUE, RED, close, encode
from PIL import Image, ImageDraw

from image_pipeline import imaging, placeholder
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from infra.local import sample_images

OPTIONS = imaging.Options.from_tunables(
    Tunables(thumbnail_sizes=(Box(512, 512), Box(128, 128)), thumbnail_formats=("webp",))
)


def decoded(preview: placeholder.Placeholder, long_side: int = 40) -> Image.Image:
    """Decode as a client does: at the recorded aspect, any size."""
    scale = long_side / max(preview.width, preview.height)
    size = (round(preview.width * scale), round(preview.height * scale))
    return blurhash_decode(preview.blurhash, *size)


def red_top_blue_bottom(width: int, height: int) -> Image.Image:
    im = Image.new("RGB", (width, height), BLUE)
    ImageDraw.Draw(im).rectangle((0, 0, width - 1, height // 2 - 1), RED)
    return im


@pytest.mark.parametrize("size", [(800, 600), (300, 900), (640, 640)])
def test_placeholder_decodes_to_the_images_aspect_and_colours(size):
    data = encode(red_top_blue_bottom(*size), "PNG")
    result = imaging.make_thumbnails(data, OPTIONS)
    preview = result.placeholder
    smallest = min(result.thumbnails, key=lambda t: t.width)
    assert (preview.width, preview.height) == (smallest.width, smallest.height)
    out = decoded(preview)
    assert abs(out.width / out.height - size[0] / size[1]) < 0.05
    top, bottom = out.getpixel((out.width // 2, 2)), out.getpixel((out.width // 2, out.height - 3))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0], (top, bottom)


def test_components_follow_the_aspect():
    assert placeholder.components(400, 300) == (4, 3)
    assert placeholder.components(300, 400) == (3, 4)
    assert placeholder.components(500, 500) == (4, 4)
    assert placeholder.components(10000, 10) == (4, 1)


def test_placeholder_of_a_rotated_heic_is_upright():
    result = imaging.make_thumbnails(sample_images.iphone_heic(400, 300), OPTIONS)
    preview = result.placeholder
    assert preview.height > preview.width
    out = decoded(preview)
    top_left = out.getpixel((2, 2))
    assert top_left[2] > top_left[0], top_left  # the blue block, not the orange


def test_dominant_colour_is_the_largest_area():
    im = Image.new("RGB", (120, 80), (30, 140, 60))
    ImageDraw.Draw(im).rectangle((0, 0, 30, 30), (250, 250, 0))
    colour = placeholder.dominant_colour(im)
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    assert close(rgb, (30, 140, 60), 6), colour


def test_transparent_pixels_count_as_white():
    im = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # red, but fully transparent
    ImageDraw.Draw(im).rectangle((0, 0, 15, 15), (0, 0, 255, 255))
    result = imaging.make_thumbnails(encode(im, "PNG"), OPTIONS)
    assert result.placeholder.color == "#ffffff"
    out = decoded(result.placeholder)
    assert close(out.getpixel((out.width - 3, out.height - 3)), (255, 255, 255), 30)
