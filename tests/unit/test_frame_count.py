"""Counting pages and frames from the bytes: agrees with Pillow, and stops at the cap."""

from __future__ import annotations

import io

import pytest
from imagekit import BLUE, GREEN, RED, encode
from PIL import Image, TiffImagePlugin

from image_pipeline import frame_count, imaging
from image_pipeline.errors import PermanentError
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from tests import hostile_images


def options(**tunables: int) -> imaging.Options:
    return imaging.Options.from_tunables(Tunables(thumbnail_sizes=(Box(64, 64),), **tunables))


def animation(fmt: str, frames: int, **params: object) -> bytes:
    images = [Image.new("RGB", (8, 6), (RED, GREEN, BLUE)[i % 3]) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], **params)


@pytest.mark.parametrize(
    "data",
    [
        hostile_images.many_page_tiff(37),
        animation("TIFF", 5),
        animation("TIFF", 4, big_tiff=True),
        encode(Image.new("CMYK", (9, 9)), "TIFF", compression="tiff_lzw"),
        animation("GIF", 7, duration=50, comment=b"hello"),
        encode(Image.new("P", (5, 5)), "GIF"),
    ],
    ids=["pages", "frames", "bigtiff", "single-tiff", "gif", "single-gif"],
)
def test_counts_agree_with_pillow(data):
    with Image.open(io.BytesIO(data)) as im:
        expected = im.n_frames
        assert frame_count.count_frames(data, im.format, 1000) == expected


def test_counting_stops_one_past_the_cap():
    data = hostile_images.many_page_tiff(500)
    assert frame_count.tiff_pages(data, 10) == 11
    assert frame_count.gif_frames(animation("GIF", 30, duration=50), 10) == 11


@pytest.mark.parametrize(
    "data",
    [b"II*\0" + b"\xff" * 12, b"MM\0*\0\0\0\x08" + b"\0" * 8, b"GIF89a", b"GIF89a" + b"\0" * 7],
)
def test_broken_chains_end_the_count(data):
    assert frame_count.count_frames(data, "TIFF" if data[0] != 71 else "GIF", 10) <= 1


def test_a_tiff_whose_pages_loop_is_counted_once():
    data = bytearray(hostile_images.many_page_tiff(3))
    data[-4:] = (10).to_bytes(4, "little")  # the last page points back at the first
    assert frame_count.tiff_pages(bytes(data), 100) == 3


def test_formats_with_a_count_in_the_header_are_left_to_pillow():
    assert frame_count.count_frames(animation("PNG", 3), "PNG", 10) is None


def test_a_100k_page_tiff_fails_before_any_page_walk(monkeypatch):
    """Pillow's own count is quadratic in pages: it must never run on such a file."""

    def no_walk(self):
        raise AssertionError("Pillow walked the pages")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(no_walk))
    data = hostile_images.many_page_tiff(100_000)
    opts = options(max_input_frames=10_000)
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, opts)
    assert caught.value.reason == "too_many_frames"
    assert "10000" in caught.value.message


def test_pages_up_to_the_limit_are_processed_and_counted():
    opts = options(max_input_frames=40)
    assert imaging.make_thumbnails(hostile_images.many_page_tiff(40), opts).facts.frames == 40
    with pytest.raises(PermanentError, match="too_many_frames"):
        imaging.make_thumbnails(hostile_images.many_page_tiff(41), opts)
