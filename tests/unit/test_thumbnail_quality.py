"""Speed is never bought with quality: every thumbnail against a high-quality reference.

Each input class goes through the core with WebP at the default quality; each output is
decoded and compared with the reference (the full decode, oriented and in sRGB, resized
with LANCZOS straight to the output's size, cropped like a cover box): its PSNR may be at
most 0.1 dB below the figure the core gave before the faster decode and resampling schedule
(``BASELINE``, computed by this file's own ``measure``), the class's bytes at most 2 % above,
and the sizes exact. Inputs and boxes are a quarter of the benchmark's on each side (the
same ratios of input to box, so the same decode scales and resampling steps), to stay fast.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, ImageStat

from image_pipeline import cover, heif, imaging
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from infra.local.sample_images import display_p3_profile

INSIDE = (Box(32, 32), Box(128, 128), Box(256, 256))
COVER = tuple(Box(b.width, b.height, "cover") for b in INSIDE)

# name -> ((PSNR dB per box), total bytes, sizes): the core before the 3/8 JPEG decode.
BASELINE = {
    "jpeg": ((26.398, 29.251, 29.424), 11438, ((32, 24), (128, 96), (256, 192))),
    "jpeg_cover": ((26.767, 28.885, 30.512), 13972, ((32, 32), (128, 128), (256, 256))),
    "jpeg_orientation_6": ((27.832, 31.439, 30.777), 7824, ((21, 32), (85, 128), (171, 256))),
    "jpeg_small": ((24.869, 31.216, 34.076), 10542, ((32, 24), (128, 96), (200, 150))),
    "png": ((26.359, 28.972, 28.476), 11618, ((32, 24), (128, 96), (256, 192))),
    "heic": ((24.386, 27.857, 27.619), 12424, ((32, 24), (128, 96), (256, 192))),
    "gif": ((25.101, 28.296, 30.444), 11216, ((32, 18), (128, 72), (240, 135))),
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
            Image.effect_noise(small, 16),
        ),
    )
    draw = ImageDraw.Draw(base)
    for i in range(9):
        x, y = (i * 37) % small[0], (i * 53) % small[1]
        draw.ellipse((x, y, x + small[0] // 5, y + small[1] // 4), (40 * i % 256, 200, 90))
        draw.line((0, y, small[0], (y * 3) % small[1]), (250, 250, 250), 1)
    grain = Image.effect_noise((width, height), 4)
    noise = Image.merge("RGB", (grain, grain, grain))
    return ImageChops.add(base.resize((width, height), Image.Resampling.LANCZOS), noise, 1, -128)


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


def _reference(data: bytes) -> Image.Image:
    """The full decode, upright, in sRGB."""
    im = heif.open_image(data) if heif.is_heif(data) else Image.open(io.BytesIO(data))
    icc = im.info.get("icc_profile")
    upright = ImageOps.exif_transpose(im.convert("RGB"))
    if icc:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        upright = ImageCms.profileToProfile(upright, source, ImageCms.createProfile("sRGB"))
    return upright


def _expected(reference: Image.Image, box: Box) -> Image.Image:
    if box.mode == "inside":
        return reference.resize(imaging.fit(reference.size, box), Image.Resampling.LANCZOS)
    scaled = reference.resize(cover.scaled_size(reference.size, box[:2]), Image.LANCZOS)
    crop = cover.crop_size(scaled.size, box[:2])
    return scaled.crop(cover.crop_rectangle(scaled, crop, "centre"))


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return 10 * math.log10(255 * 255 / mse) if mse else 99.0


@functools.cache
def measure(name: str) -> tuple[tuple[float, ...], int, tuple[tuple[int, int], ...]]:
    """(PSNR per box, total bytes, sizes) of the core's WebP thumbnails of one class."""
    make, boxes = INPUTS[name]
    data = make()
    base = imaging.Options.from_tunables(Tunables(thumbnail_formats=("webp",)))
    result = imaging.make_thumbnails(data, dataclasses.replace(base, boxes=boxes))
    reference = _reference(data)
    scores, total, sizes = [], 0, []
    for thumb in result.thumbnails:
        with Image.open(io.BytesIO(thumb.data)) as delivered:
            scores.append(round(psnr(delivered, _expected(reference, thumb.box)), 3))
            sizes.append(delivered.size)
        total += len(thumb.data)
    return tuple(scores), total, tuple(sizes)


@pytest.mark.parametrize("name", BASELINE)
def test_each_thumbnail_keeps_its_quality_and_size(name: str) -> None:
    scores, total, sizes = measure(name)
    base_scores, base_total, base_sizes = BASELINE[name]
    assert sizes == base_sizes
    for box, score, base in zip(INPUTS[name][1], scores, base_scores, strict=True):
        assert score >= base - 0.1, f"{name} {box}: {score:.3f} dB, was {base:.3f}"
    assert total <= base_total * 1.02, f"{name}: {total} bytes, was {base_total}"
