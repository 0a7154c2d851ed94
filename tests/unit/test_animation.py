"""Animated inputs: animated WebP thumbnails when ``animated`` is on, the first frame when off."""

from __future__ import annotations

import dataclasses
import io

import pytest
from imagekit import BLUE, GREEN, RED, close, encode
from PIL import Image, ImageSequence

from image_pipeline import imaging
from image_pipeline.settings import Box, Tunables

COLOURS = (RED, GREEN, BLUE)
DURATIONS = [100, 250, 40]


def options(**overrides: object) -> imaging.Options:
    base = Tunables(thumbnail_sizes=(Box(32, 32), Box(16, 16)), thumbnail_formats=("webp", "png"))
    return dataclasses.replace(base.imaging_options(), **overrides)


def animation(fmt: str, size: tuple[int, int] = (48, 24), **params: object) -> bytes:
    frames = [Image.new("RGB", size, colour) for colour in COLOURS]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **params)


def frames_of(thumb: imaging.Thumbnail) -> tuple[list[tuple[int, ...]], list[int], object]:
    """Centre colour and duration of every frame, and the loop count."""
    im = Image.open(io.BytesIO(thumb.data))
    colours, durations = [], []
    for frame in ImageSequence.Iterator(im):
        colours.append(frame.convert("RGB").getpixel((frame.width // 2, frame.height // 2)))
        durations.append(frame.info["duration"])
    return colours, durations, im.info.get("loop")


def by_format(result: imaging.Result, fmt: str) -> list[imaging.Thumbnail]:
    return [t for t in result.thumbnails if t.format == fmt]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_input_gives_animated_webp_with_its_timing(fmt):
    data = animation(fmt, duration=DURATIONS, loop=0)
    result = imaging.make_thumbnails(data, options(animated=True))
    assert result.facts.frames == 3
    for thumb in by_format(result, "webp"):
        colours, durations, loop = frames_of(thumb)
        assert (
            thumb.frames == 3
            and (thumb.width, thumb.height) == {32: (32, 16), 16: (16, 8)}[thumb.box.width]
        )
        assert all(close(c, e, 12) for c, e in zip(colours, COLOURS, strict=True)), colours
        assert durations == DURATIONS
        assert loop == 0


def test_loop_count_is_kept():
    data = animation("GIF", duration=DURATIONS, loop=3)
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    assert frames_of(thumb)[2] == 3


def test_a_gif_that_plays_once_still_plays_once():
    data = animation("GIF", duration=DURATIONS)  # no NETSCAPE extension: shown once
    assert "loop" not in Image.open(io.BytesIO(data)).info
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    assert frames_of(thumb)[2] == 1


def test_other_formats_stay_stills_of_the_first_frame():
    result = imaging.make_thumbnails(animation("GIF", duration=DURATIONS), options(animated=True))
    for thumb in by_format(result, "png"):
        im = Image.open(io.BytesIO(thumb.data))
        assert thumb.frames == 1 and getattr(im, "n_frames", 1) == 1
        assert close(im.convert("RGB").getpixel((4, 4)), RED, 8)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_off_by_default_gives_the_first_frame(fmt):
    data = animation(fmt, duration=DURATIONS, loop=0)
    assert options().animated is False
    result = imaging.make_thumbnails(data, options())
    for thumb in by_format(result, "webp"):
        colours, _, _ = frames_of(thumb)
        assert thumb.frames == 1 and len(colours) == 1 and close(colours[0], RED, 12)


def test_transparency_is_kept_in_every_frame():
    frames = []
    for colour in COLOURS:
        frame = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
        frame.paste((*colour, 255), (0, 0, 20, 40))
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], disposal=2)
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    for frame, colour in zip(
        ImageSequence.Iterator(Image.open(io.BytesIO(thumb.data))), COLOURS, strict=True
    ):
        rgba = frame.convert("RGBA")
        assert close(rgba.getpixel((4, 16))[:3], colour, 12) and rgba.getpixel((28, 16))[3] == 0


def test_the_placeholder_is_of_the_first_frame():
    result = imaging.make_thumbnails(animation("GIF", duration=DURATIONS), options(animated=True))
    assert result.placeholder.color == "#ff0000"


def test_frames_smaller_than_every_box_are_each_kept():
    data = animation("GIF", size=(12, 10), duration=DURATIONS, loop=0)  # no resize needed
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    colours, durations, loop = frames_of(thumb)
    assert (thumb.width, thumb.height) == (12, 10) and durations == DURATIONS and loop == 0
    assert all(close(c, e, 12) for c, e in zip(colours, COLOURS, strict=True)), colours
