"""Speed is never bought with quality: every thumbnail against a high-quality reference.

Each input class goes through the core with WebP at the default quality; each output is
decoded and compared with the reference (the full decode, oriented and in sRGB, resized
with LANCZOS straight to the output's size, cropped like a cover box). Per class, the PSNR
of all its outputs' pixels together may be at most 0.1 dB below the figure the core gave
before the faster decode and resampling schedule (``BASELINE``, computed by this file's own
``measure``), its bytes at most 2 % above, and every size must be exact. The PSNR is pooled
because a small thumbnail's alone moves with the encoder's rounding: on the benchmark's
photos, resizing the 128 px one straight from the full decode, the reference's own path,
scores up to 0.17 dB below the cascade from the 512 px one (docs/benchmarks.md). Inputs
and boxes are a quarter of the benchmark's on each side (the same ratios of input to box,
so the same decode scales and resampling steps), so the test stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import random

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from benchmarks import peers
from image_pipeline import cover, imaging
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from infra.local.sample_images import display_p3_profile

INSIDE = (Box(32, 32), Box(128, 128), Box(256, 256))
COVER = tuple(Box(b.width, b.height, "cover") for b in INSIDE)

# name -> (pooled PSNR dB, total bytes, sizes): the core before the 3/8 JPEG decode.
BASELINE = {
    "jpeg": (29.274, 11526, ((32, 24), (128, 96), (256, 192))),
    "jpeg_cover": (30.021, 14040, ((32, 32), (128, 128), (256, 256))),
    "jpeg_orientation_6": (30.849, 7894, ((21, 32), (85, 128), (171, 256))),
    "jpeg_small": (32.623, 10720, ((32, 24), (128, 96), (200, 150))),
    "png": (28.49, 11618, ((32, 24), (128, 96), (256, 192))),
    "heic": (27.605, 12434, ((32, 24), (128, 96), (256, 192))),
    "gif": (29.783, 11254, ((32, 18), (128, 72), (240, 135))),
}


def scene(width: int, height: int) -> Image.Image:
    """Photo-like content from Pillow alone: gradients, texture, hard edges and sensor-like
    noise, drawn small and enlarged with LANCZOS as the benchmark's photos are."""
    small = (max(width // 4, 8), max(height // 4, 8))
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(small),
            Image.radial_gradient("L").resize(small),
            _noise(small, 28, seed=1),
        ),
    )
    draw = ImageDraw.Draw(base)
    for i in range(9):
        x, y = (i * 37) % small[0], (i * 53) % small[1]
        draw.ellipse((x, y, x + small[0] // 5, y + small[1] // 4), (40 * i % 256, 200, 90))
        draw.line((0, y, small[0], (y * 3) % small[1]), (250, 250, 250), 1)
    grain = _noise((width, height), 7, seed=2)
    noise = Image.merge("RGB", (grain, grain, grain))
    return ImageChops.add(base.resize((width, height), Image.Resampling.LANCZOS), noise, 1, -128)


def _noise(size: tuple[int, int], amplitude: int, seed: int) -> Image.Image:
    """Uniform noise of +-``amplitude`` around 128, the same on every run."""
    raw = random.Random(seed).randbytes(size[0] * size[1])
    return Image.frombytes("L", size, raw).point(lambda v: 128 + (v - 128) * amplitude // 128)


def _encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = scene(1000, 1500).transpose(Image.Transpose.ROTATE_90)
    return _encode(stored, "JPEG", quality=90, exif=exif.tobytes())


def _heic() -> bytes:
    import pillow_heif  # the encoder: a development dependency only

    out = io.BytesIO()
    pillow_heif.from_pillow(scene(1000, 750)).save(
        out,
        format="HEIF",
        quality=80,
        icc_profile=display_p3_profile(),
        enc_params={"preset": "ultrafast"},  # x265: seconds less, the same decode
    )
    return out.getvalue()


def _gif() -> bytes:
    frames = [scene(240, 135).rotate(angle).quantize(128) for angle in (0, 5, 10)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80)


INPUTS = {
    "jpeg": (lambda: _encode(scene(1000, 750), "JPEG", quality=90), INSIDE),
    "jpeg_cover": (lambda: _encode(scene(1000, 750), "JPEG", quality=90), COVER),
    "jpeg_orientation_6": (_rotated_jpeg, INSIDE),
    "jpeg_small": (lambda: _encode(scene(200, 150), "JPEG", quality=90), INSIDE),
    "png": (lambda: _encode(scene(1000, 750), "PNG", compress_level=1), INSIDE),
    "heic": (_heic, INSIDE),
    "gif": (_gif, INSIDE),
}


def _expected(reference: Image.Image, box: Box) -> Image.Image:
    if box.mode == "inside":
        return reference.resize(imaging.fit(reference.size, box), Image.Resampling.LANCZOS)
    scaled = reference.resize(cover.scaled_size(reference.size, box[:2]), Image.LANCZOS)
    crop = cover.crop_size(scaled.size, box[:2])
    return scaled.crop(cover.crop_rectangle(scaled, crop, "centre"))


def squared_error(a: Image.Image, b: Image.Image) -> float:
    """The sum of squared differences over every sample of two RGB images."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).sum2)


@functools.cache
def measure(name: str) -> tuple[float, int, tuple[tuple[int, int], ...]]:
    """(pooled PSNR, total bytes, sizes) of the core's WebP thumbnails of one class."""
    make, boxes = INPUTS[name]
    data = make()
    base = imaging.Options.from_tunables(Tunables(thumbnail_formats=("webp",)))
    result = imaging.make_thumbnails(data, dataclasses.replace(base, boxes=boxes))
    reference = peers.reference(data)
    error, samples, total, sizes = 0.0, 0, 0, []
    for thumb in result.thumbnails:
        with Image.open(io.BytesIO(thumb.data)) as delivered:
            error += squared_error(delivered, _expected(reference, thumb.box))
            samples += 3 * delivered.width * delivered.height
            sizes.append(delivered.size)
        total += len(thumb.data)
    return round(10 * math.log10(255 * 255 * samples / error), 3), total, tuple(sizes)


@pytest.mark.parametrize("name", BASELINE)
def test_each_class_keeps_its_quality_bytes_and_sizes(name: str) -> None:
    score, total, sizes = measure(name)
    base_score, base_total, base_sizes = BASELINE[name]
    assert sizes == base_sizes
    assert score >= base_score - 0.1, f"{name}: {score:.3f} dB, was {base_score:.3f}"
    assert total <= base_total * 1.02, f"{name}: {total} bytes, was {base_total}"
