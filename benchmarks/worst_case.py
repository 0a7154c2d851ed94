"""The worst input each decoded mode lets through, and the memory it really takes.

For a function memory (make_thumbnail's default, 1 GiB) the largest square image of each
format and mode that passes every limit (pixels, and the decoded-bytes limit of
`image_pipeline.decode_cost`) is generated, run once through the core in a fresh
interpreter that has imported `functions/main.py` and the client libraries (what an instance
holds), and its absolute peak RSS is read (`benchmarks/peak_rss.py`). Every peak must stay
under the function's memory. `benchmarks/run memory` runs the two cases the pixel limit
alone let through at 1.3x and 1.0x the memory (16-bit gray and RGBA PNG);
`benchmarks/run worst` runs every mode (docs/benchmarks.md, "Decoded bytes").
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks._common import CACHE, Row
from benchmarks.peak_rss import case_peak

MIB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    label: str
    fmt: str  # Pillow format to write
    make: Callable[[int], Image.Image]  # a square image of the given side
    params: dict[str, object]
    max_side: int = 65_535  # the format's own limit


def _gray(side: int) -> Image.Image:
    """Smooth content: compresses to a few MB at any size, decodes like any other."""
    return Image.radial_gradient("L").resize((side, side), Image.Resampling.BILINEAR)


def _mode(mode: str) -> Callable[[int], Image.Image]:
    return lambda side: _gray(side).convert(mode)


def _colour(side: int) -> Image.Image:
    """Smooth colour content; as P, a real colour palette (a gray one decodes as L)."""
    gradient = Image.linear_gradient("L").resize((side, side), Image.Resampling.BILINEAR)
    return Image.merge(
        "RGB", (_gray(side), gradient, gradient.transpose(Image.Transpose.ROTATE_90))
    )


def _palette(side: int) -> Image.Image:
    return _colour(side).convert("P", dither=Image.Dither.NONE)


def _gray16(side: int) -> Image.Image:
    return _gray(side).convert("I").point(lambda v: v * 257).convert("I;16")


def _alpha(mode: str) -> Callable[[int], Image.Image]:
    def make(side: int) -> Image.Image:
        im = _gray(side).convert(mode[:-1])
        im.putalpha(Image.linear_gradient("L").resize((side, side)))
        return im

    return make


def _transparent_palette(side: int) -> Image.Image:
    im = _palette(side)
    im.info["transparency"] = 0
    return im


_PNG = {"compress_level": 1}
_DEFLATE = {"compression": "tiff_adobe_deflate"}
PNG_16_BIT = Case("PNG 16-bit gray (I;16)", "PNG", _gray16, _PNG)
PNG_RGBA = Case("PNG RGBA", "PNG", _alpha("RGBA"), _PNG)
EVERY_MODE = (
    PNG_16_BIT,
    PNG_RGBA,
    Case("PNG RGB", "PNG", _mode("RGB"), _PNG),
    Case("PNG L", "PNG", _gray, _PNG),
    Case("PNG LA", "PNG", _alpha("LA"), _PNG),
    Case("PNG P", "PNG", _palette, _PNG),
    Case("PNG P + transparency", "PNG", _transparent_palette, {**_PNG, "transparency": 0}),
    Case("PNG 1-bit", "PNG", _mode("1"), _PNG),
    Case("TIFF CMYK (deflate)", "TIFF", _mode("CMYK"), _DEFLATE),
    Case("TIFF I;16B (uncompressed)", "TIFF", lambda s: _gray16(s).convert("I;16B"), {}),
    Case("TIFF F (deflate)", "TIFF", _mode("F"), _DEFLATE),
    Case("TIFF I (deflate)", "TIFF", _mode("I"), _DEFLATE),
    Case("JPEG RGB progressive 4:2:0", "JPEG", _colour, {"progressive": True, "quality": 80}),
    Case(
        "JPEG RGB progressive 4:4:4",
        "JPEG",
        _colour,
        {"progressive": True, "quality": 80, "subsampling": 0},
    ),
    Case("JPEG CMYK progressive", "JPEG", _mode("CMYK"), {"progressive": True, "quality": 80}),
    Case("GIF P", "GIF", _palette, {}),
    Case("WebP RGBA", "WEBP", _alpha("RGBA"), {"quality": 50, "method": 0}, 16_383),
    Case("AVIF RGB", "AVIF", _colour, {"quality": 50, "speed": 10}, 16_384),
)


def worst_side(case: Case, memory: str) -> int:
    """The side of the largest square of ``case`` every limit lets through (the core's own
    decision, asked of the probe's header with the side changed)."""
    from image_pipeline import decode_cost
    from image_pipeline.formats import memory_bytes
    from image_pipeline.settings import Tunables

    limits = Tunables(thumbnail_memory=memory)
    # The input bytes count against the budget: allow for a file of up to the byte limit.
    budget = decode_cost.budget(memory_bytes(memory), limits.max_input_bytes)
    box = max(limits.thumbnail_sizes)
    probe = io.BytesIO()
    case.make(64).save(probe, case.fmt, **case.params)

    def fits(side: int) -> bool:
        with Image.open(probe) as im:
            im._size = (side, side)  # what a bigger file's header says
            im.draft(None, box)  # JPEG: the reduced scale the core decodes at
            return decode_cost.peak_bytes(im, (side, side)) <= budget

    low, high = 1, min(math.isqrt(limits.max_input_pixels), case.max_side)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def sample(case: Case, side: int) -> Path:
    """The case at ``side`` x ``side``, generated once into the benchmark cache."""
    slug = "".join(c if c.isalnum() else "-" for c in case.label.lower())
    path = CACHE / "worst" / f"{slug}-{side}.{case.fmt.lower()}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        image = case.make(side)
        image.save(path, case.fmt, **case.params)
    return path


def rows(cases: tuple[Case, ...], memory: str = "1Gi") -> list[Row]:
    """One row per case: its worst allowed size, file size and absolute peak RSS."""
    from image_pipeline.formats import memory_bytes
    from image_pipeline.settings import Tunables

    limit = memory_bytes(memory)
    max_bytes = Tunables().max_input_bytes
    out = []
    for case in cases:
        side = worst_side(case, memory)
        path = sample(case, side)
        while path.stat().st_size > max_bytes:  # bound by the byte limit instead
            side = int(side * math.sqrt(max_bytes / path.stat().st_size) * 0.98)
            path = sample(case, side)
        measured = case_peak("ours", path, import_main=True)
        peak = measured["peak"]
        out.append(
            Row(
                "memory",
                f"worst allowed {case.label}: {side}x{side} ({side * side / 1e6:.0f} Mpx, "
                f"{path.stat().st_size / MIB:.1f} MiB file), main.py + clients loaded: "
                f"absolute peak RSS (added {measured['added'] / MIB:.0f} MiB)",
                f"{peak / MIB:.0f} MiB",
                "",
                f"{peak / limit:.2f} of {memory}",
                f"<= {memory} function",
                "met" if peak <= limit else "MISSED",
            )
        )
    return out


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """`benchmarks/run worst`: every mode (several minutes: the files are large)."""
    if smoke:
        return []
    return rows(EVERY_MODE[:4] if quick else EVERY_MODE)
