"""Animated inputs: animated WebP thumbnails when ``animated`` is on, the first frame when off."""

from __future__ import annotations

import dataclasses
import io

import pytest
from imagekit import BLUE, GREEN, RED, close, encode, solid_gif
from PIL import Image, ImageSequence

from image_pipeline import imaging
from image_pipeline.errors import PermanentError
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables

COLOURS = (RED, GREEN, BLUE)
DURATIONS = [100, 250, 40]


def options(**overrides: object) -> imaging.Options:
    base = Tunables(thumbnail_sizes=(Box(32, 32), Box(16, 16)), thumbnail_formats=("webp", "png"))
    return dataclasses.replace(imaging.Options.from_tunables(base), **overrides)


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


def half_opaque_gif(side: int) -> bytes:
    """A GIF whose frames are each an opaque left half in one of COLOURS, transparent right."""
    frames = []
    for colour in COLOURS:
        frame = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        frame.paste((*colour, 255), (0, 0, side // 2, side))
        frames.append(frame)
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], disposal=2)


def test_transparency_is_kept_in_every_frame():
    data = half_opaque_gif(40)
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    for frame, colour in zip(
        ImageSequence.Iterator(Image.open(io.BytesIO(thumb.data))), COLOURS, strict=True
    ):
        rgba = frame.convert("RGBA")
        assert close(rgba.getpixel((4, 16))[:3], colour, 12) and rgba.getpixel((28, 16))[3] == 0


def test_transparency_is_kept_when_every_changed_area_is_opaque():
    """Each frame: an opaque left half, a transparent right half, no resize: libwebp's crops
    are then all opaque, and without care the file would say it has no alpha."""
    data = half_opaque_gif(20)
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    out = Image.open(io.BytesIO(thumb.data))
    assert out.mode == "RGBA"
    for frame in ImageSequence.Iterator(out):
        assert frame.getpixel((15, 10))[3] == 0 and frame.getpixel((4, 10))[3] == 255


def test_the_placeholder_is_of_the_first_frame():
    result = imaging.make_thumbnails(animation("GIF", duration=DURATIONS), options(animated=True))
    assert result.placeholder.color == "#ff0000"


def test_frames_smaller_than_every_box_are_each_kept():
    data = animation("GIF", size=(12, 10), duration=DURATIONS, loop=0)  # no resize needed
    (thumb, _) = by_format(imaging.make_thumbnails(data, options(animated=True)), "webp")
    colours, durations, loop = frames_of(thumb)
    assert (thumb.width, thumb.height) == (12, 10) and durations == DURATIONS and loop == 0
    assert all(close(c, e, 12) for c, e in zip(colours, COLOURS, strict=True)), colours


# --- limits: corerel's frame cap and memory limit, counted before the first frame ---------


def long_animation(frames: int, size: tuple[int, int]) -> bytes:
    return solid_gif([COLOURS[i % 3] for i in range(frames)], size)


def test_more_frames_than_allowed_is_refused_with_its_reason():
    data = long_animation(12, (16, 16))
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, options(animated=True, max_frames=10))
    assert caught.value.reason == "too_many_frames"
    allowed = imaging.make_thumbnails(data, options(animated=True, max_frames=12))
    assert {t.frames for t in by_format(allowed, "webp")} == {12}


def test_an_animation_whose_frames_would_not_fit_the_memory_is_refused():
    """40 frames of 640x480 held at every box (~79 MiB) are more than a 256 MiB function
    leaves after its reserve (~70 MiB); the first frame alone (animated off) fits."""
    big = dataclasses.replace(
        options(), boxes=(Box(1024, 1024), Box(512, 512), Box(128, 128)), memory="256Mi"
    )
    data = long_animation(40, (640, 480))
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, dataclasses.replace(big, animated=True))
    assert caught.value.reason == "too_many_decoded_bytes"
    still = imaging.make_thumbnails(data, big)
    assert all(t.frames == 1 for t in still.thumbnails)


def test_cover_crops_every_frame_to_the_box_at_the_same_place():
    data = animation("GIF", size=(96, 24), duration=DURATIONS, loop=0)
    boxes = (Box(16, 16, "cover"),)
    result = imaging.make_thumbnails(data, options(animated=True, boxes=boxes, formats=("webp",)))
    (thumb,) = result.thumbnails
    colours, durations, _ = frames_of(thumb)
    assert (thumb.width, thumb.height, thumb.frames) == (16, 16, 3)
    assert all(
        frame.size == (16, 16)
        for frame in ImageSequence.Iterator(Image.open(io.BytesIO(thumb.data)))
    )
    assert all(close(c, e, 12) for c, e in zip(colours, COLOURS, strict=True)), colours
    assert durations == DURATIONS
