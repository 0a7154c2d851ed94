"""Deterministic test photos, cached under .local/benchmarks/samples/.

Real photographic content comes from scikit-image's bundled sample photos (astronaut,
coffee, chelsea: shipped inside the wheel, no download). Each is centre-cropped to the
target aspect, upscaled with LANCZOS and given seeded Gaussian luma noise (sigma 6), which
stands in for sensor noise: without it an upscaled photo is unrealistically smooth and
compresses (and decodes) faster than a camera file. At 4000x3000 a quality-90 JPEG of
this is 3-4 MB, like a phone camera's.

Without scikit-image (the unit-test environment) `synthetic` is available: gradients, a
Mandelbrot set and seeded noise drawn with Pillow alone.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageChops

from benchmarks._common import CACHE

PHOTOS = ("astronaut", "coffee", "chelsea")
SIZE_12MP = (4000, 3000)
SIZE_100MP = (11600, 8700)
NOISE_SIGMA = 6.0
_GEN = 1  # bump when generation changes, so caches are rebuilt
_SAVE = {
    "jpeg": ("JPEG", {"quality": 90}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {"quality": 90}),
}


def _source(photo: str) -> Image.Image:
    if photo == "synthetic":
        return _synthetic()
    import skimage.data

    return Image.fromarray(getattr(skimage.data, photo)()).convert("RGB")


def _synthetic() -> Image.Image:
    """A 400x300 RGB picture with edges, gradients and texture, from Pillow alone."""
    r = Image.linear_gradient("L").resize((400, 300))
    g = Image.radial_gradient("L").resize((400, 300))
    b = Image.effect_mandelbrot((400, 300), (-2.2, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (r, g, b))


def _crop_to_aspect(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    w, h = im.size
    tw, th = size
    if w * th > h * tw:  # too wide
        cw, ch = h * tw // th, h
    else:
        cw, ch = w, w * th // tw
    left, top = (w - cw) // 2, (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def _add_noise(im: Image.Image, seed: int) -> Image.Image:
    """Adds seeded luma noise; numpy when present (fast), else a Pillow-only path."""
    try:
        import numpy as np
    except ImportError:
        # Uniform noise with the same standard deviation (amplitude sigma * sqrt(3)).
        amp = NOISE_SIGMA * 3**0.5
        raw = random.Random(seed).randbytes(im.size[0] * im.size[1])
        noise = Image.frombytes("L", im.size, raw).point(
            lambda v: 128 + round((v - 127.5) / 127.5 * amp)
        )
        return Image.merge("RGB", [ImageChops.add(c, noise, 1.0, -128) for c in im.split()])
    rng = np.random.default_rng(seed)
    out = Image.new("RGB", im.size)
    step = 512
    for top in range(0, im.size[1], step):
        box = (0, top, im.size[0], min(top + step, im.size[1]))
        strip = np.asarray(im.crop(box), dtype=np.int16)
        noise = rng.normal(0.0, NOISE_SIGMA, (*strip.shape[:2], 1)).round().astype(np.int16)
        out.paste(Image.fromarray(np.clip(strip + noise, 0, 255).astype(np.uint8)), box[:2])
    return out


def make_image(photo: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """The photo cropped to `size`'s aspect, LANCZOS-upscaled to `size`, with noise."""
    im = _crop_to_aspect(_source(photo), size).resize(size, Image.Resampling.LANCZOS)
    return _add_noise(im, seed)


def _path(photo: str, size: tuple[int, int], fmt: str, seed: int) -> Path:
    return CACHE / "samples" / f"{photo}-{size[0]}x{size[1]}-s{seed}-g{_GEN}.{fmt}"


def prepare(
    photo: str, size: tuple[int, int], fmts: tuple[str, ...] = ("jpeg",), seed: int = 0
) -> dict[str, Path]:
    """Paths of the cached encoded samples, generating the missing ones from one image."""
    paths = {fmt: _path(photo, size, fmt, seed) for fmt in fmts}
    missing = [fmt for fmt, path in paths.items() if not path.exists()]
    if missing:
        image = make_image(photo, size, seed)
        for fmt in missing:
            paths[fmt].parent.mkdir(parents=True, exist_ok=True)
            name, kwargs = _SAVE[fmt]
            buf = io.BytesIO()
            image.save(buf, name, **kwargs)
            tmp = paths[fmt].with_suffix(".tmp")
            tmp.write_bytes(buf.getvalue())
            tmp.replace(paths[fmt])
    return paths


def sample_path(photo: str, size: tuple[int, int], fmt: str = "jpeg", seed: int = 0) -> Path:
    """Path of one cached encoded sample, generating it on first use."""
    return prepare(photo, size, (fmt,), seed)[fmt]


def have_photos() -> bool:
    """True when scikit-image (and so the real sample photos) is installed."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True
