"""Animated thumbnails (the ``animated`` setting): animated GIF/WebP in, animated WebP out.

What is kept and what it costs: docs/architecture.md ("Inputs"). Pillow composites GIF and
WebP frames (disposal, blending) on ``seek``, so every frame handed to the encoder is a whole
picture, and libwebp's animation encoder finds the changed rectangles again.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from typing import cast

from PIL import Image

from image_pipeline.formats import Box

INPUTS = ("GIF", "WEBP")
OUTPUT = "webp"
_PLAY_ONCE = 1  # WebP loop count for a GIF without a NETSCAPE loop extension


@dataclasses.dataclass(frozen=True)
class Animation:
    """Frames per box (the same count for each), frame durations in ms, loop (0: forever)."""

    frames: dict[Box, list[Image.Image]]
    durations: tuple[int, ...]
    loop: int


def is_animation(im: Image.Image) -> bool:
    return im.format in INPUTS and getattr(im, "n_frames", 1) > 1


def duration(im: Image.Image) -> int:
    """The current frame's display time in milliseconds."""
    value = im.info.get("duration", 0)
    return max(0, round(value)) if isinstance(value, int | float) else 0


def loop(im: Image.Image) -> int:
    value = im.info.get("loop")
    return value if isinstance(value, int) and value >= 0 else _PLAY_ONCE


def output_bytes(frames: int, sizes: Iterable[tuple[int, int]]) -> int:
    """Memory the frames of all boxes take while held for encoding (RGBA, 4 bytes a pixel)."""
    return frames * sum(width * height * 4 for width, height in sizes)


def encode(movie: Animation, box: Box, options: dict[str, int]) -> bytes:
    frames = movie.frames[box]
    data = _save(frames, movie, options)
    if not _alpha_flag(data) and any(_transparent(frame) for frame in frames):
        # libwebp's animation encoder crops each frame to what it must paint; when every crop
        # is opaque it leaves the alpha flag unset although the canvas around the crops is
        # transparent, and decoders then paint that area opaque (Pillow: black). With every
        # frame a key frame the flag is kept (measured; such files are somewhat larger).
        data = _save(frames, movie, {**options, "kmin": 0, "kmax": 1})
    return data


def _save(frames: list[Image.Image], movie: Animation, options: dict[str, int]) -> bytes:
    first, *rest = frames
    out = io.BytesIO()
    first.save(
        out,
        "WEBP",
        save_all=True,
        append_images=rest,
        duration=list(movie.durations),
        loop=movie.loop,
        **options,
    )
    return out.getvalue()


def _alpha_flag(data: bytes) -> bool:
    """The VP8X header's alpha bit (WebP container: flags byte after the chunk header)."""
    return data[12:16] == b"VP8X" and bool(data[20] & 0x10)


def _transparent(frame: Image.Image) -> bool:
    if frame.mode not in ("LA", "RGBA"):
        return False
    low, _ = cast(tuple[int, int], frame.getchannel("A").getextrema())  # one band: (min, max)
    return low < 255
