"""`benchmarks/run memory` and `worst`: the absolute peak RSS of one thumbnail run, cold, in a
fresh interpreter holding what an instance holds, against the function's memory: a 100 MP
JPEG, the worst allowed inputs of two decoded modes (`worst`: of every one) and the longest
GIF (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import gc
import io
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import _common as common
from benchmarks import peers, samples
from benchmarks._common import Row, defaults, judged
from image_pipeline import animation, decode_cost, imaging
from image_pipeline.formats import Box, memory_bytes
from image_pipeline.settings import Tunables

MIB = 1 << 20
FUNCTION_MEMORY = "1Gi"  # thumbnail_memory's default
LIMIT_100MP = 512 * MIB


def measure(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker body: one cold run on one file, after what an instance holds is loaded."""
    main = common.import_function_main()  # what an instance holds: functions/main.py
    for module in ("google.cloud.storage", "google.cloud.pubsub_v1", "google.cloud.firestore"):
        __import__(module)
    Image.init()  # every plugin registered before the baseline, like a warm instance
    sizes, quality = [tuple(s) for s in payload["sizes"]], payload["quality"]
    data = Path(payload["path"]).read_bytes()
    tunables = Tunables(thumbnail_sizes=tuple(Box(w, h) for w, h in sizes))
    options = dataclasses.replace(imaging.Options.from_tunables(tunables), animated=True)
    gc.collect()
    before = common.status_kb("VmRSS") * 1024
    Path("/proc/self/clear_refs").write_text("5")  # peak mark := current RSS
    if payload["engine"] == "animated":
        result = imaging.make_thumbnails(data, options)
        sizes = [(t.width, t.height) for t in result.thumbnails]
        frames = result.facts.frames
    else:
        sizes = [o[:2] for o in peers.PY_ENGINES[payload["engine"]](data, sizes, quality, sizes)]
        frames = 1
    peak = common.status_kb("VmHWM") * 1024
    estimate = animation.output_bytes(frames, sizes)
    result = {"peak": peak, "added": peak - before, "frames": frames, "estimate": estimate}
    return result | {"main": main.__file__}


def case_peak(engine: str, path: Path) -> dict[str, Any]:
    """One cold run of ``engine`` (ours, naive, or animated: ours with ``animated`` on)."""
    sizes, quality = defaults()
    payload = {"engine": engine, "path": str(path), "sizes": sizes, "quality": quality}
    with common.Worker([sys.executable, "-m", __name__], common.function_env()) as worker:
        result = worker.call(payload)
    if "error" in result:
        raise RuntimeError(f"the memory worker failed: {result['error']}")
    return result


def _peak_row(what: str, peak: dict[str, Any], limit: int, label: str, baseline: str = "") -> Row:
    """A case's absolute peak RSS against ``limit`` bytes (``label``: how the docs write it)."""
    case = f"{what}: absolute peak RSS (added {peak['added'] / MIB:.0f} MiB)"
    value, ratio = f"{peak['peak'] / MIB:.0f} MiB", f"{peak['peak'] / limit:.2f} of {label}"
    return judged("memory", case, value, peak["peak"] <= limit, f"<= {label}", baseline, ratio)


@dataclasses.dataclass(frozen=True)
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


def _palette(side: int, transparent: bool = False) -> Image.Image:
    im = _colour(side).convert("P", dither=Image.Dither.NONE)
    if transparent:
        im.info["transparency"] = 0
    return im


def _gray16(side: int) -> Image.Image:
    return _gray(side).convert("I").point(lambda v: v * 257).convert("I;16")


def _alpha(mode: str) -> Callable[[int], Image.Image]:
    def make(side: int) -> Image.Image:
        im = _gray(side).convert(mode[:-1])
        im.putalpha(Image.linear_gradient("L").resize((side, side)))
        return im

    return make


_PNG = {"compress_level": 1}
_DEFLATE = {"compression": "tiff_adobe_deflate"}
_PROGRESSIVE = {"progressive": True, "quality": 80}
EVERY_MODE = (
    Case("PNG 16-bit gray (I;16)", "PNG", _gray16, _PNG),
    Case("PNG RGBA", "PNG", _alpha("RGBA"), _PNG),
    Case("PNG RGB", "PNG", _mode("RGB"), _PNG),
    Case("PNG L", "PNG", _gray, _PNG),
    Case("PNG LA", "PNG", _alpha("LA"), _PNG),
    Case("PNG P", "PNG", _palette, _PNG),
    Case("PNG P + transparency", "PNG", lambda s: _palette(s, True), {**_PNG, "transparency": 0}),
    Case("PNG 1-bit", "PNG", _mode("1"), _PNG),
    Case("TIFF CMYK (deflate)", "TIFF", _mode("CMYK"), _DEFLATE),
    Case("TIFF I;16B (uncompressed)", "TIFF", lambda s: _gray16(s).convert("I;16B"), {}),
    Case("TIFF F (deflate)", "TIFF", _mode("F"), _DEFLATE),
    Case("TIFF I (deflate)", "TIFF", _mode("I"), _DEFLATE),
    Case("JPEG RGB progressive 4:2:0", "JPEG", _colour, _PROGRESSIVE),
    Case("JPEG RGB progressive 4:4:4", "JPEG", _colour, {**_PROGRESSIVE, "subsampling": 0}),
    Case("JPEG CMYK progressive", "JPEG", _mode("CMYK"), _PROGRESSIVE),
    Case("GIF P", "GIF", _palette, {}),
    Case("WebP RGBA", "WEBP", _alpha("RGBA"), {"quality": 50, "method": 0}, 16_383),
    Case("AVIF RGB", "AVIF", _colour, {"quality": 50, "speed": 10}, 16_384),
)


def worst_side(case: Case, memory: str) -> int:
    """The side of the largest square of ``case`` every limit lets through."""
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


def _worst_sample(case: Case, side: int) -> Path:
    slug = "".join(c if c.isalnum() else "-" for c in case.label.lower())
    name = f"worst-{slug}-{side}.{case.fmt.lower()}"
    return samples.cached(name, lambda: samples.encoded(case.make(side), case.fmt, **case.params))


def worst_rows(cases: tuple[Case, ...], memory: str = FUNCTION_MEMORY) -> list[Row]:
    """One row per case: its worst allowed size, file size and absolute peak RSS."""
    limit, max_bytes, out = memory_bytes(memory), Tunables().max_input_bytes, []
    for case in cases:
        side = worst_side(case, memory)
        path = _worst_sample(case, side)
        while path.stat().st_size > max_bytes:  # bound by the byte limit instead
            side = int(side * math.sqrt(max_bytes / path.stat().st_size) * 0.98)
            path = _worst_sample(case, side)
        mpx, mib = side * side / 1e6, path.stat().st_size / MIB
        what = f"worst allowed {case.label}: {side}x{side} ({mpx:.0f} Mpx, {mib:.1f} MiB file)"
        out.append(_peak_row(what, case_peak("ours", path), limit, memory))
    return out


def allowed_frames(size: tuple[int, int], memory: str) -> int:
    """The most frames of a ``size`` GIF the memory limit lets through with ``animated`` on."""
    one = io.BytesIO()
    Image.new("P", size).save(one, "GIF")
    with Image.open(io.BytesIO(one.getvalue())) as im:
        decode = decode_cost.peak_bytes(im, size, frames=2)
    per_frame = animation.output_bytes(1, [imaging.fit(size, Box(w, h)) for w, h in defaults()[0]])
    return (decode_cost.budget(memory_bytes(memory), 4 * MIB) - decode) // per_frame  # GIF < 4 MiB


def run(quick: bool = False, smoke: bool = False, every_mode: bool = False) -> list[Row]:
    """The 100 MP JPEG, the worst PNGs, the longest animation (`worst`: every mode)."""
    if every_mode:
        return worst_rows(EVERY_MODE[:4] if quick else EVERY_MODE)
    photo = "coffee" if samples.have_photos() and not smoke else "synthetic"
    big = (800, 600) if smoke else samples.SIZE_100MP
    path = samples.sample_path(photo, big)
    ours, naive = case_peak("ours", path), case_peak("naive", path)
    what = f"JPEG {big[0] * big[1] / 1e6:.0f} MP ({path.stat().st_size / MIB:.1f} MiB file)"
    rows = [
        _peak_row(what, ours, LIMIT_100MP, "512 MiB", f"naive Pillow {naive['peak'] / MIB:.0f} MiB")
    ]
    if not smoke:
        rows += worst_rows(EVERY_MODE[:2])
    most = allowed_frames((480, 270), FUNCTION_MEMORY)
    frames = 5 if smoke else (100 if quick else most)
    anim = case_peak("animated", samples.gif_sample(frames, (64, 48) if smoke else (480, 270)))
    worst = "the most the memory limit allows" if frames == most else f"of {most} allowed"
    estimate = f"the core's estimate {anim['estimate'] / MIB:.0f} MiB"
    what = f"animated GIF, {anim['frames']} frames ({worst}) -> animated WebP, {estimate}"
    return [*rows, _peak_row(what, anim, memory_bytes(FUNCTION_MEMORY), FUNCTION_MEMORY)]


if __name__ == "__main__":  # the worker of `case_peak`
    common.serve(measure)
