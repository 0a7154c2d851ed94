"""The thumbnailers compared: our core and the baselines, behind one signature.

Each engine takes the encoded source bytes, the bounding boxes, the output format and the
quality, and returns one (width, height, encoded bytes) per box, in box order. All of them
write the same format with the same quality and the same encoder effort as the core
(`formats.OutputFormat.encoder_options`; Pillow's WebP `method` and libvips' `effort` are the same
libwebp setting), and none writes metadata.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from PIL import Image, ImageOps

from image_pipeline import imaging
from image_pipeline.formats import OUTPUTS, WEBP_METHOD, Box
from image_pipeline.settings import Tunables

Sizes = Sequence[tuple[int, int]]
Output = list[tuple[int, int, bytes]]
Engine = Callable[[bytes, Sizes, str, int], Output]


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """Largest same-aspect size inside `box`, never upscaled (what every engine must produce)."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def ours(data: bytes, sizes: Sizes, fmt: str, quality: int) -> Output:
    """functions/image_pipeline/imaging.py, called as make_thumbnail calls it."""
    options = imaging.Options.from_tunables(
        Tunables(
            thumbnail_sizes=tuple(Box(w, h) for w, h in sizes),
            thumbnail_formats=(fmt,),
            thumbnail_quality=quality,
        )
    )
    result = imaging.make_thumbnails(data, options)
    return [(t.width, t.height, t.data) for t in result.thumbnails]


def pillow_naive(data: bytes, sizes: Sizes, fmt: str, quality: int) -> Output:
    """What most code does: per size, open, fully decode, orient, LANCZOS resize, encode."""
    out: Output = []
    for box in sizes:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy when upright
            if im.mode not in ("RGB", "RGBA"):
                im = im.convert("RGB")
            small = im.resize(fit(im.size, box), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        output = OUTPUTS[fmt]
        small.save(buf, output.pillow, **output.encoder_options(quality))
        out.append((small.width, small.height, buf.getvalue()))
    return out


def _vips_save(image: object, fmt: str, quality: int) -> bytes:
    kwargs: dict[str, object] = {"keep": "none"}
    if fmt != "png":
        kwargs["Q"] = quality
    if fmt == "webp":
        kwargs["effort"] = WEBP_METHOD
    return image.write_to_buffer(f".{fmt}", **kwargs)  # type: ignore[attr-defined]


def _vips() -> object:
    import pyvips

    # The operation cache would return the previous run's result for the same buffer.
    pyvips.cache_set_max(0)
    return pyvips


def pyvips_each(data: bytes, sizes: Sizes, fmt: str, quality: int) -> Output:
    """The documented pyvips way: one `thumbnail_buffer` (shrink-on-load) call per size."""
    pyvips = _vips()
    out: Output = []
    for w, h in sizes:
        thumb = pyvips.Image.thumbnail_buffer(data, w, height=h, size="down")  # type: ignore[attr-defined]
        out.append((thumb.width, thumb.height, _vips_save(thumb, fmt, quality)))
    return out


def pyvips_once(data: bytes, sizes: Sizes, fmt: str, quality: int) -> Output:
    """pyvips decoding once: `thumbnail_buffer` to the largest box (shrink-on-load), kept in
    memory, then `thumbnail_image` from it for each smaller box (like our core's cascade)."""
    pyvips = _vips()
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1], reverse=True)
    first = sizes[order[0]]
    largest = pyvips.Image.thumbnail_buffer(data, first[0], height=first[1], size="down")  # type: ignore[attr-defined]
    largest = largest.copy_memory()
    results: dict[int, tuple[int, int, bytes]] = {}
    for i in order:
        w, h = sizes[i]
        thumb = largest if i == order[0] else largest.thumbnail_image(w, height=h, size="down")
        results[i] = (thumb.width, thumb.height, _vips_save(thumb, fmt, quality))
    return [results[i] for i in range(len(sizes))]


ENGINES: dict[str, Engine] = {
    "ours": ours,
    "pillow_naive": pillow_naive,
    "pyvips_each": pyvips_each,
    "pyvips_once": pyvips_once,
}
