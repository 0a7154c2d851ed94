"""Benchmark 6: HEIC input, the placeholder's cost, cover sizes, an animation's memory.

- HEIC: a 12 MP iPhone-style HEIC (landscape pixels, ``irot`` + EXIF orientation 6, Display
  P3 profile; encoded once with pillow-heif and cached) through our core, against naive
  Pillow with the same libheif plugin registered (per size: open, full decode, orient,
  LANCZOS, encode) and against one bare full decode (``Image.open(...).load()``), which is
  the floor every HEIF thumbnailer pays: HEVC has no reduced-size decode like JPEG's DCT
  scaling. Medians of interleaved runs in one fresh interpreter.
- Placeholder: ``placeholder.describe`` (BlurHash + dominant colour) on the smallest default
  thumbnail of a 12 MP photo, as the core calls it; and its share of the core's time.
- Cover: the core on a 12 MP JPEG with the default sizes as ``:cover`` (crop at the centre,
  then at the most detailed window), against the same sizes ``inside``; interleaved medians.
- Animation: with ``animated`` on and ``functions/main.py`` loaded, the absolute peak RSS of
  one cold run on the longest 480x270 GIF the memory limit lets through (each frame
  composited, resized to every box and held until the WebP encode), against the default
  function memory (1 GiB); next to the ``animation.output_bytes`` estimate.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import engines, samples
from benchmarks._common import (
    CACHE,
    Row,
    function_env,
    import_function_main,
    run_worker,
    speedup_row,
    status_kb,
)
from image_pipeline.formats import memory_bytes

MB = 1024 * 1024
FUNCTION_MEMORY = "1Gi"  # thumbnail_memory's default
PLACEHOLDER_TARGET_MS = 5.0  # "a few ms per image" at most


def heic_sample(photo: str, size: tuple[int, int]) -> Path:
    """The photo as an iPhone would store it in portrait: rotated pixels, irot, P3 profile."""
    path = CACHE / "samples" / f"{photo}-{size[0]}x{size[1]}-iphone.heic"
    if path.exists():
        return path
    import pillow_heif
    from PIL import Image

    from infra.local.sample_images import display_p3_profile

    image = samples.make_image(photo, size).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(
        buffer, format="HEIF", quality=80, exif=exif.tobytes(), icc_profile=display_p3_profile()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_bytes(buffer.getvalue())
    path.with_suffix(".tmp").replace(path)
    return path


def gif_sample(frames: int, size: tuple[int, int]) -> Path:
    """An animated GIF whose every frame differs: a bar moving over a two-tone background
    (palette frames: small on disk, so a long one stays under max_input_bytes)."""
    path = CACHE / "samples" / f"animated-{frames}x{size[0]}x{size[1]}-g3.gif"
    if path.exists():
        return path
    from PIL import Image, ImageDraw

    palette = [30, 60, 120, 200, 200, 200, 220, 40, 40] + [0] * (256 * 3 - 9)
    images = []
    for index in range(frames):
        frame = Image.new("P", size, 0)
        frame.putpalette(palette)
        draw = ImageDraw.Draw(frame)
        draw.rectangle((0, size[1] // 2, size[0], size[1]), 1)
        x = index % size[0]  # and a counter block, so no two frames are alike (Pillow's
        draw.rectangle((x, 0, x + size[0] // 10, size[1]), 2)  # GIF writer merges those)
        draw.rectangle((0, 0, index // size[0], 3), 2)
        images.append(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)
    return path


def allowed_frames(size: tuple[int, int], sizes: list[tuple[int, int]], memory: str) -> int:
    """The most frames of a ``size`` GIF that the core's memory limit lets through with
    ``animated`` on (what it holds per frame, after the decode's own cost and the input)."""
    from PIL import Image

    from image_pipeline import animation, decode_cost

    one = io.BytesIO()
    Image.new("P", size).save(one, "GIF")
    with Image.open(io.BytesIO(one.getvalue())) as im:
        decode = decode_cost.peak_bytes(im, size, frames=2)
    per_frame = animation.output_bytes(1, [engines.fit(size, box) for box in sizes])
    input_bytes = 4 * MB  # generous for the palette GIFs above
    return (decode_cost.budget(memory_bytes(memory), input_bytes) - decode) // per_frame


def _decode(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()


def _placeholder_ms(data: bytes, sizes: list[tuple[int, int]], repeat: int) -> dict[str, Any]:
    from PIL import Image

    from image_pipeline import placeholder

    smallest = min(engines.ours(data, sizes, "png", 82), key=lambda t: t[0] * t[1])
    with Image.open(io.BytesIO(smallest[2])) as im:
        rgb = im.convert("RGB")
    runs = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        placeholder.describe(rgb)
        runs.append((time.perf_counter() - t0) * 1000)
    return {"ms": statistics.median(runs[1:]), "size": list(rgb.size)}


def _cover_ms(data: bytes, sizes: list[tuple[int, int]], repeat: int) -> dict[str, float]:
    """Core medians: the sizes inside, as cover with the centre focus, with the detail one."""
    from image_pipeline import imaging
    from image_pipeline.formats import Box
    from image_pipeline.settings import Tunables

    inside = imaging.Options.from_tunables(
        Tunables(thumbnail_sizes=tuple(Box(w, h) for w, h in sizes))
    )
    cover = dataclasses.replace(inside, boxes=tuple(Box(w, h, "cover") for w, h in sizes))
    work = {
        "inside": inside,
        "centre": cover,
        "detail": dataclasses.replace(cover, cover_focus="detail"),
    }
    runs: dict[str, list[float]] = {name: [] for name in work}
    names = list(work)
    for r in range(repeat + 1):  # the first round warms up
        for name in names[r % 3 :] + names[: r % 3]:
            t0 = time.perf_counter()
            imaging.make_thumbnails(data, work[name])
            if r:
                runs[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(values) for name, values in runs.items()}


def _animation(path: str, sizes: list[tuple[int, int]]) -> dict[str, Any]:
    from PIL import Image

    main = import_function_main()  # what an instance holds: functions/main.py, its settings
    from image_pipeline import animation, imaging
    from image_pipeline.formats import Box
    from image_pipeline.settings import Tunables

    options = imaging.Options.from_tunables(
        Tunables(thumbnail_sizes=tuple(Box(w, h) for w, h in sizes))
    )
    options = dataclasses.replace(options, animated=True)
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        frames, size = getattr(im, "n_frames", 1), im.size
    gc.collect()
    before = status_kb("VmRSS") * 1024
    Path("/proc/self/clear_refs").write_text("5")  # peak mark := current RSS
    t0 = time.perf_counter()
    result = imaging.make_thumbnails(data, options)
    elapsed = (time.perf_counter() - t0) * 1000
    outputs = [(t.width, t.height) for t in result.thumbnails]
    peak = status_kb("VmHWM") * 1024
    return {
        "peak": peak,
        "added": peak - before,
        "ms": elapsed,
        "frames": frames,
        "size": list(size),
        "estimate": animation.output_bytes(frames, outputs),
        "thumb_frames": [t.frames for t in result.thumbnails],
        "main": main.__file__,
    }


def measure(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker body."""
    from image_pipeline import heif

    if payload["case"] == "animation":
        return _animation(payload["path"], payload["sizes"])
    heif.register()  # naive Pillow opens HEIF through the same plugin
    sizes, fmt, quality = [tuple(s) for s in payload["sizes"]], payload["format"], 82
    heic = Path(payload["heic"]).read_bytes()
    timings: dict[str, list[float]] = {"ours": [], "naive": [], "decode": []}
    work = {
        "ours": lambda: engines.ours(heic, sizes, fmt, quality),
        "naive": lambda: engines.pillow_naive(heic, sizes, fmt, quality),
        "decode": lambda: _decode(heic),
    }
    for fn in work.values():
        fn()  # warm-up
    names = list(work)
    for r in range(payload["repeat"]):
        for name in names[r % 3 :] + names[: r % 3]:
            t0 = time.perf_counter()
            work[name]()
            timings[name].append((time.perf_counter() - t0) * 1000)
    jpeg = Path(payload["jpeg"]).read_bytes()
    core = [0.0] * payload["repeat"]
    for r in range(payload["repeat"]):
        t0 = time.perf_counter()
        engines.ours(jpeg, sizes, fmt, quality)
        core[r] = (time.perf_counter() - t0) * 1000
    return {
        "medians": {k: statistics.median(v) for k, v in timings.items()},
        "outputs": [(w, h) for w, h, _ in engines.ours(heic, sizes, fmt, quality)],
        "placeholder": _placeholder_ms(jpeg, sizes, payload["repeat"] * 20),
        "cover": _cover_ms(jpeg, sizes, payload["repeat"]),
        "jpeg_core_ms": statistics.median(core),
    }


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    from benchmarks.core import defaults

    sizes, fmt, _ = defaults()
    photo = "coffee" if samples.have_photos() and not smoke else "synthetic"
    size = (400, 300) if smoke else samples.SIZE_12MP
    label = "12MP" if not smoke else "400x300"
    heic = heic_sample(photo, size)
    payload: dict[str, Any] = {"sizes": sizes, "format": fmt, "case": "heic"}
    payload |= {"repeat": 1 if smoke else (3 if quick else 5), "heic": str(heic)}
    payload["jpeg"] = str(samples.sample_path(photo, size))
    res = run_worker(__name__, payload)
    med = res["medians"]
    mb = heic.stat().st_size / MB
    rows = [
        speedup_row(
            "formats",
            f"HEIC {label} ({mb:.1f} MB, irot + EXIF 6, Display P3): ours vs naive Pillow",
            med["ours"],
            "naive Pillow + the same libheif plugin",
            med["naive"],
        ),
        Row(
            "formats",
            f"HEIC {label}: ours vs one bare full decode (the floor: HEVC has no reduced decode)",
            f"{med['ours']:.1f} ms",
            f"decode only {med['decode']:.1f} ms",
            f"{med['ours'] / med['decode']:.2f}x of a decode",
        ),
    ]
    place = res["placeholder"]
    share = place["ms"] / res["jpeg_core_ms"] * 100
    rows.append(
        Row(
            "formats",
            f"placeholder (BlurHash + dominant colour) of the {place['size'][0]}x"
            f"{place['size'][1]} thumbnail; share of a JPEG {label} core call "
            f"({res['jpeg_core_ms']:.0f} ms)",
            f"{place['ms']:.2f} ms",
            "",
            f"{share:.1f} %",
            f"<= {PLACEHOLDER_TARGET_MS:g} ms",
            "met" if place["ms"] <= PLACEHOLDER_TARGET_MS else "MISSED",
        )
    )
    cover = res["cover"]
    for focus in ("centre", "detail"):
        rows.append(
            speedup_row(
                "formats",
                f"JPEG {label}, the default sizes as `:cover` ({focus} focus) vs inside: core",
                cover[focus],
                "the same sizes inside",
                cover["inside"],
            )
        )
    gif_size = (64, 48) if smoke else (480, 270)
    most = allowed_frames(gif_size, sizes, FUNCTION_MEMORY)
    frames = 5 if smoke else (100 if quick else most)
    anim = run_worker(
        __name__,
        {"case": "animation", "path": str(gif_sample(frames, gif_size)), "sizes": sizes},
        function_env(),
    )
    worst = "the most the memory limit allows" if frames == most else f"of {most} allowed"
    rows.append(
        Row(
            "formats",
            f"animated GIF, {anim['frames']} frames ({worst}) of {anim['size'][0]}x"
            f"{anim['size'][1]} -> animated WebP, all boxes, main.py loaded "
            f"({anim['ms'] / 1000:.1f} s): absolute peak RSS (added {anim['added'] / MB:.0f} "
            f"MB, estimate {anim['estimate'] / MB:.0f} MB)",
            f"{anim['peak'] / MB:.0f} MiB",
            f"function memory {FUNCTION_MEMORY}",
            f"{anim['peak'] / memory_bytes(FUNCTION_MEMORY):.2f} of it",
            f"<= {FUNCTION_MEMORY}",
            "met" if anim["peak"] <= memory_bytes(FUNCTION_MEMORY) else "MISSED",
        )
    )
    return rows


def main() -> None:
    """Worker entry: payload JSON on stdin, result JSON on the last stdout line."""
    print(json.dumps(measure(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
