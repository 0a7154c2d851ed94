"""Deterministic inputs, generated once into .local/benchmarks/samples/ (nothing committed):
scikit-image's bundled photos (astronaut, coffee, chelsea; no download) cropped, enlarged with
LANCZOS and given seeded luma noise (sigma 6) like a camera file's; without scikit-image (the
unit tests), ``synthetic``, drawn with Pillow alone (docs/benchmarks.md)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks._common import CACHE
from infra.local.sample_images import display_p3_profile, encoded

PHOTOS = ("astronaut", "coffee", "chelsea")
SIZE_12MP = (4000, 3000)
SIZE_100MP = (11600, 8700)
NOISE_SIGMA = 6.0
_GEN = 1  # bump when generation changes, so caches are rebuilt
_SAVE = {"jpeg": ("JPEG", {"quality": 90}), "png": ("PNG", {})}


def have_photos() -> bool:
    """True when scikit-image (and so the real sample photos) is installed."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def _source(photo: str) -> Image.Image:
    if photo != "synthetic":
        import skimage.data

        return Image.fromarray(getattr(skimage.data, photo)()).convert("RGB")
    r = Image.linear_gradient("L").resize((400, 300))
    g = Image.radial_gradient("L").resize((400, 300))
    b = Image.effect_mandelbrot((400, 300), (-2.2, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (r, g, b))


def _add_noise(im: Image.Image) -> Image.Image:
    """Seeded luma noise. Without numpy there is no scikit-image either: only ``synthetic``,
    for the smoke run, left clean."""
    try:
        import numpy as np
    except ImportError:
        return im
    rng = np.random.default_rng(0)
    out = Image.new("RGB", im.size)
    for top in range(0, im.size[1], 512):
        box = (0, top, im.size[0], min(top + 512, im.size[1]))
        strip = np.asarray(im.crop(box), dtype=np.int16)
        noise = rng.normal(0.0, NOISE_SIGMA, (*strip.shape[:2], 1)).round().astype(np.int16)
        out.paste(Image.fromarray(np.clip(strip + noise, 0, 255).astype(np.uint8)), box[:2])
    return out


def make_image(photo: str, size: tuple[int, int]) -> Image.Image:
    """The photo cropped to ``size``'s aspect, LANCZOS-upscaled to ``size``, with noise."""
    im = _source(photo)
    w, h = im.size
    cw, ch = (
        (h * size[0] // size[1], h) if w * size[1] > h * size[0] else (w, w * size[1] // size[0])
    )
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))
    return _add_noise(im.resize(size, Image.Resampling.LANCZOS))


def cached(name: str, make: Callable[[], bytes]) -> Path:
    path = CACHE / "samples" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_bytes(make())
        path.with_suffix(".tmp").replace(path)
    return path


def sample_path(photo: str, size: tuple[int, int], fmt: str = "jpeg") -> Path:
    """One photo at ``size`` in ``fmt`` (JPEG at quality 90, or PNG), generated on first use."""
    name, params = _SAVE[fmt]
    return cached(
        f"{photo}-{size[0]}x{size[1]}-s0-g{_GEN}.{fmt}",
        lambda: encoded(make_image(photo, size), name, **params),
    )


def photos_12mp() -> list[Path]:
    """The photos as 12 MP JPEGs (``synthetic`` without scikit-image)."""
    return [sample_path(p, SIZE_12MP) for p in (PHOTOS if have_photos() else ("synthetic",))]


def rotated_jpeg(photo: str, size: tuple[int, int]) -> Path:
    """A camera held upright: ``size`` upright, stored turned on its side with EXIF 6."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return cached(
        f"{photo}-{size[0]}x{size[1]}-exif6-g{_GEN}.jpeg",
        lambda: encoded(_stored_turned(photo, size), "JPEG", quality=90, exif=exif.tobytes()),
    )


def _stored_turned(photo: str, size: tuple[int, int]) -> Image.Image:
    return make_image(photo, size).transpose(Image.Transpose.ROTATE_90)


def heic_sample(photo: str, size: tuple[int, int]) -> Path:
    """The photo as an iPhone stores a portrait: rotated pixels, ``irot`` and EXIF 6, Display
    P3 profile (encoded with pillow-heif's x265, quality 80)."""

    def make() -> bytes:
        import pillow_heif

        exif = Image.Exif()
        exif[0x0112] = 6
        out = io.BytesIO()
        pillow_heif.from_pillow(_stored_turned(photo, size)).save(
            out, format="HEIF", quality=80, exif=exif.tobytes(), icc_profile=display_p3_profile()
        )
        return out.getvalue()

    return cached(f"{photo}-{size[0]}x{size[1]}-iphone.heic", make)


def gif_sample(frames: int, size: tuple[int, int], photo: str | None = None) -> Path:
    """An animated GIF whose every frame differs: a window panning over ``photo`` (256-colour
    frames), or without one a bar moving over a two-tone background (palette frames, small on
    disk, so a long one stays under max_input_bytes)."""

    def make() -> bytes:
        if photo:
            wide = make_image(photo, (size[0] * 2, size[1]))
            lefts = (round(i * size[0] / max(frames - 1, 1)) for i in range(frames))
            images = [wide.crop((x, 0, x + size[0], size[1])).quantize(256) for x in lefts]
        else:
            images = [_bar_frame(index, size) for index in range(frames)]
        return encoded(
            images[0], "GIF", save_all=True, append_images=images[1:], duration=40, loop=0
        )

    return cached(f"animated-{photo or 'bar'}-{frames}x{size[0]}x{size[1]}-g3.gif", make)


def _bar_frame(index: int, size: tuple[int, int]) -> Image.Image:
    frame = Image.new("P", size, 0)
    frame.putpalette([30, 60, 120, 200, 200, 200, 220, 40, 40] + [0] * (256 * 3 - 9))
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, size[1] // 2, size[0], size[1]), 1)
    x = index % size[0]  # and a counter block, so no two frames are alike (Pillow's GIF
    draw.rectangle((x, 0, x + size[0] // 10, size[1]), 2)  # writer merges those)
    draw.rectangle((0, 0, index // size[0], 3), 2)
    return frame
