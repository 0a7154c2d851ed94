"""`benchmarks/run peers`: the thumbnail core against naive Pillow, pyvips and sharp, in one run.

Every engine runs in a worker pinned to one CPU (sharp's in `peers.js`), taking turns in an
order that rotates each round. What each peer does, what is measured and why:
docs/benchmarks.md ("peers").
"""

from __future__ import annotations

import base64
import contextlib
import cProfile
import dataclasses
import io
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

from benchmarks import samples
from benchmarks._common import CACHE, Row, Worker, defaults, format_table, judged, serve, status_kb
from image_pipeline import heif, imaging
from image_pipeline.formats import OUTPUTS, WEBP_METHOD, Box
from image_pipeline.settings import Tunables

# name -> (label, worker, CPUs it may use)
ENGINES = {
    "ours": ("ours", "py", 1),
    "naive": ("naive Pillow", "py", 1),
    "vips_each": ("pyvips per box", "py", 1),
    "vips_once": ("pyvips decode-once", "py", 1),
    "firebase": ("sharp as Firebase runs it", "js", 1),
    "sharp_once": ("sharp decode-once", "js", 1),
    "ours_2cpu": ("ours on 2 CPUs", "py", 2),
}
JPEG_12MP = "JPEG 12 MP"
# (group, peer) -> the CPU-time ratio (peer / ours) to reach; the 12 MP JPEGs by geometric mean.
TARGETS = {
    (JPEG_12MP, "naive"): 4.0,
    (JPEG_12MP, "vips_each"): 1.0,
    (JPEG_12MP, "sharp_once"): 1.0,
    (JPEG_12MP, "vips_once"): 1.1,
    ("JPEG 24 MP, EXIF 6", "sharp_once"): 1.0,
    ("JPEG 24 MP, EXIF 6", "vips_once"): 1.0,
    ("PNG 12 MP", "sharp_once"): 1.0,
    ("PNG 12 MP", "vips_once"): 1.0,
}
FIREBASE_TARGET = 1.3  # on every input
RSS_TARGET_MB = 80  # a 12 MP JPEG adds at most this much


def inputs(smoke: bool) -> list[tuple[str, Path]]:
    """(group, file): the inputs, generated on first use."""
    if smoke:
        return [("JPEG 400x300", samples.sample_path("synthetic", (400, 300)))]
    size = samples.SIZE_12MP
    return [
        *((JPEG_12MP, samples.sample_path(photo, size)) for photo in samples.PHOTOS),
        ("JPEG 24 MP, EXIF 6", samples.rotated_jpeg("astronaut", (4000, 6000))),
        ("PNG 12 MP", samples.sample_path("coffee", size, "png")),
        ("JPEG 800x600", samples.sample_path("chelsea", (800, 600))),
        ("HEIC 12 MP (iPhone layout)", samples.heic_sample("coffee", size)),
        ("GIF 480x270, 24 frames", samples.gif_sample(24, (480, 270), "chelsea")),
    ]


# --- the Python engines (the worker side) -----------------------------------------------

Sizes = list[tuple[int, int]]
Outputs = list[tuple[int, int, bytes]]


def ours(data: bytes, sizes: Sizes, quality: int, exact: Sizes) -> Outputs:
    boxes = tuple(Box(w, h) for w, h in sizes)
    tunables = Tunables(
        thumbnail_sizes=boxes, thumbnail_formats=("webp",), thumbnail_quality=quality
    )
    result = imaging.make_thumbnails(data, imaging.Options.from_tunables(tunables))
    return [(t.width, t.height, t.data) for t in result.thumbnails]


def naive(data: bytes, sizes: Sizes, quality: int, exact: Sizes) -> Outputs:
    """What most code does: per box, open, decode in full, orient, LANCZOS, encode."""
    out = []
    for box in sizes:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            if im.mode not in ("RGB", "RGBA"):
                im = im.convert("RGB")  # one name: no second full image held
            small = im.resize(imaging.fit(im.size, Box(*box)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, "WEBP", **OUTPUTS["webp"].encoder_options(quality))
        out.append((small.width, small.height, buf.getvalue()))
    return out


def vips_each(data: bytes, sizes: Sizes, quality: int, exact: Sizes) -> Outputs:
    vips = _vips()
    return [
        _webp(vips.Image.thumbnail_buffer(data, w, height=h, size="down"), quality)
        for w, h in sizes
    ]


def vips_once(data: bytes, sizes: Sizes, quality: int, exact: Sizes) -> Outputs:
    """The largest box by shrink-on-load, each smaller one from the one before at ``exact``,
    the size ours makes (a cascade rounds at each step; a box is fitted to the original)."""
    vips, made, image = _vips(), {}, None
    for i in sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1], reverse=True):
        if image is None:
            w, h = sizes[i]
            image = vips.Image.thumbnail_buffer(data, w, height=h, size="down").copy_memory()
        else:
            w, h = exact[i]
            image = image.thumbnail_image(w, height=h, size="force").copy_memory()
        made[i] = _webp(image, quality)
    return [made[i] for i in range(len(sizes))]


def _vips() -> Any:
    import pyvips

    pyvips.cache_set_max(0)  # a cached result would time nothing
    return pyvips


def _webp(image: Any, quality: int) -> tuple[int, int, bytes]:
    return (
        image.width,
        image.height,
        image.webpsave_buffer(Q=quality, effort=WEBP_METHOD, keep="none"),
    )


PY_ENGINES = {"ours": ours, "naive": naive, "vips_each": vips_each, "vips_once": vips_once}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """One engine call: its CPU and wall time, the RSS it added, its outputs."""
    engine = PY_ENGINES[request["engine"].removesuffix("_2cpu")]
    data, sizes = Path(request["path"]).read_bytes(), [tuple(s) for s in request["sizes"]]
    exact = [tuple(s) for s in request.get("exact") or sizes]
    before = status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := RSS now
    profile = cProfile.Profile(time.process_time) if request.get("profile") else None
    cpu, wall = time.process_time(), time.perf_counter()
    call = (engine, data, sizes, request["quality"], exact)
    outputs = profile.runcall(*call) if profile else call[0](*call[1:])
    reply = {
        "cpu_ms": (time.process_time() - cpu) * 1000,
        "wall_ms": (time.perf_counter() - wall) * 1000,
        "added": (status_kb("VmHWM") - before) * 1024,
        "outputs": [[w, h, len(d)] for w, h, d in outputs],
    }
    if profile:
        reply["steps"] = _steps(pstats.Stats(profile).stats, reply["cpu_ms"])  # type: ignore[attr-defined]
    if request.get("keep"):
        reply["largest"] = base64.b64encode(max(outputs, key=lambda o: o[0] * o[1])[2]).decode()
    return reply


# Where a call's CPU time goes, from its profile: the C calls that decode (libjpeg, zlib,
# libheif through pi-heif's load), resample and encode, the placeholder, and the rest.
_STEPS = {
    "decode": ("'decode' of 'ImagingDecoder'", "pi_heif/heif.py:load"),
    "resample": ("'resize' of 'ImagingCore'", "'reduce' of 'ImagingCore'"),
    "encode": ("WebPEncode",),
}


def _steps(stats: dict[tuple[str, int, str], tuple[Any, ...]], total_ms: float) -> dict[str, float]:
    steps = dict.fromkeys([*_STEPS, "placeholder"], 0.0)
    for (file, _, name), (_, _, own, cumulative, _) in stats.items():
        where = f"{file}:{name}"
        for step, marks in _STEPS.items():
            steps[step] += own * 1000 if any(mark in where for mark in marks) else 0.0
        if where.endswith("placeholder.py:describe"):
            steps["placeholder"] += cumulative * 1000
    return steps | {"other": total_ms - sum(steps.values())}


# --- the run (the orchestrator side) ----------------------------------------------------


def _worker(kind: str, cpus: set[int]) -> Worker:
    """A ``kind`` worker (py: this module, js: peers.js) pinned to ``cpus``, with one libvips
    thread and one libuv thread."""
    argv = [sys.executable, "-m", __name__] if kind == "py" else ["node", "benchmarks/peers.js"]
    return Worker(argv, {"VIPS_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}, cpus)


def available() -> tuple[list[str], list[str]]:
    """The engines this machine can run, and why any other cannot."""
    names, missing = ["ours", "naive"], []
    try:
        import pyvips  # noqa: F401

        names += ["vips_each", "vips_once"]
    except (ImportError, OSError):
        missing.append("pyvips: not installed (benchmarks/run installs it)")
    try:
        subprocess.run(["node", "-e", "require('sharp')"], capture_output=True, check=True)
        names += ["firebase", "sharp_once"]
    except (OSError, subprocess.CalledProcessError):
        missing.append("sharp: no node or no sharp module (benchmarks/run installs it)")
    if len(os.sched_getaffinity(0)) > 1:
        names.append("ours_2cpu")
    return names, missing


def measure(names: list[str], files: list[tuple[str, Path]], rounds: int) -> dict[str, Any]:
    """Cold calls (outputs, RSS, largest thumbnail) in fresh workers, then the timed rounds."""
    cpus = sorted(os.sched_getaffinity(0))
    pins = {1: {cpus[-1]}, 2: set(cpus[:2])}
    sizes, quality = defaults()
    base = {"sizes": sizes, "quality": quality, "effort": WEBP_METHOD}
    cold: dict[tuple[str, str], dict[str, Any]] = {}
    for name in names:  # ours first: its sizes are the ones the cascades resize to
        _, kind, n = ENGINES[name]
        for _, path in files:
            exact = [o[:2] for o in cold.get(("ours", str(path)), {}).get("outputs", [])]
            request = base | {"engine": name, "path": str(path), "keep": True, "exact": exact}
            with _worker(kind, pins[n]) as worker:
                cold[name, str(path)] = worker.call(request)
    times: defaultdict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with contextlib.ExitStack() as running:  # one worker for the engines of a kind and pin
        kinds = {ENGINES[name][1:] for name in names}
        workers = {(k, n): running.enter_context(_worker(k, pins[n])) for k, n in kinds}
        for r in range(rounds + 1):  # round 0 warms the workers up
            for _, path in files:
                exact = [o[:2] for o in cold["ours", str(path)].get("outputs", [])]
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    if "error" in cold[name, str(path)]:
                        continue
                    _, kind, n = ENGINES[name]
                    request = base | {"engine": name, "path": str(path), "exact": exact}
                    reply = workers[kind, n].call(request)
                    if r:
                        times[name, str(path)].append((reply["cpu_ms"], reply["wall_ms"]))
        profile = base | {"engine": "ours", "profile": True}
        steps = {
            str(p): workers["py", 1].call(profile | {"path": str(p)})["steps"] for _, p in files
        }
    return {"cold": cold, "times": times, "steps": steps}


def reference(data: bytes) -> Image.Image:
    """The full decode, upright, in sRGB: what thumbnails are measured against (here and by
    the quality gate, tests/unit/test_thumbnail_quality.py)."""
    im = heif.open_image(data) if heif.is_heif(data) else Image.open(io.BytesIO(data))
    icc = im.info.get("icc_profile")
    full = ImageOps.exif_transpose(im.convert("RGB"))
    if icc:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        full = ImageCms.profileToProfile(full, source, ImageCms.createProfile("sRGB"))
    return full


def quality(path: Path, largest_webp: bytes) -> tuple[float, float | None]:
    """PSNR and SSIM (None without scikit-image) of a thumbnail against the resized reference."""
    full = reference(path.read_bytes())
    with Image.open(io.BytesIO(largest_webp)) as delivered:
        got = delivered.convert("RGB")
    want = full.resize(got.size, Image.Resampling.LANCZOS)
    mse = sum(ImageStat.Stat(ImageChops.difference(got, want)).sum2) / (3 * got.width * got.height)
    try:
        import numpy as np
        from skimage.metrics import structural_similarity
    except ImportError:
        return 10 * math.log10(255**2 / mse), None
    ssim = structural_similarity(np.asarray(want), np.asarray(got), channel_axis=2, data_range=255)
    return 10 * math.log10(255**2 / mse), float(ssim)


def run(quick: bool = False, smoke: bool = False) -> list[Row]:
    """Measure every engine this machine has; print the comparison, return the targets."""
    names, missing = (["ours", "naive"], []) if smoke else available()  # smoke: the fast pair
    files = inputs(smoke)
    measured = measure(names, files, 1 if smoke else (2 if quick else 5))
    groups = {group: [p for g, p in files if g == group] for group, _ in files}
    found = {(g, n): summary(measured, n, paths) for g, paths in groups.items() for n in names}
    header = ("input", "engine", "CPU ms", "wall ms", "CPU / ours", "wall / ours")
    header += ("RSS added MiB", "kB", "PSNR dB", "SSIM")
    cells = [_cells(group, name, found[group, name]) for group, name in found]
    print(format_table(header, cells))
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "peers.md").write_text(format_table(header, cells, markdown=True) + "\n")
    rows = [
        row for (group, name), figures in found.items() for row in _targets(group, name, figures)
    ]
    for group, paths in groups.items():
        steps = [measured["steps"][str(p)] for p in paths]
        where = ", ".join(f"{k} {statistics.mean(s[k] for s in steps):.0f}" for k in steps[0])
        case = f"{group}: where ours spends its CPU time (ms, cProfile of one call)"
        rows.append(Row("peers", case, where))
    odd = [
        f"{g}: {n}" for (g, n), f in found.items() if isinstance(f, Figures) and not f.same_sizes
    ]
    sizes = Row("peers", "engines whose sizes differ from ours", ", ".join(odd) or "none")
    rows.append(dataclasses.replace(sizes, status="FAILED" if odd else "met"))
    return rows + [Row("peers", why, "not measured", status="skipped") for why in missing]


@dataclasses.dataclass(frozen=True)
class Figures:
    """An engine on an input group: means over its files, ratios to ours by geometric mean."""

    cpu: float
    wall: float
    cpu_ratio: float
    wall_ratio: float
    rss: float  # MiB, the largest
    kb: float
    psnr: float
    ssim: float | None
    same_sizes: bool


def summary(measured: dict[str, Any], name: str, paths: list[Path]) -> Figures | str:
    """An engine's figures on the files of one input group, or why it has none."""
    for engine in (name, "ours"):
        if any("error" in measured["cold"][engine, str(p)] for p in paths):
            return "cannot read it" if engine == name else "ours failed"
    cold = [measured["cold"][name, str(p)] for p in paths]
    times = [_medians(measured["times"][name, str(p)]) for p in paths]
    ours = [_medians(measured["times"]["ours", str(p)]) for p in paths]
    scores = [quality(p, base64.b64decode(c["largest"])) for p, c in zip(paths, cold, strict=True)]
    ssims = [s for _, s in scores if s is not None]
    sizes = [[o[:2] for o in c["outputs"]] for c in cold]
    ours_sizes = [[o[:2] for o in measured["cold"]["ours", str(p)]["outputs"]] for p in paths]
    return Figures(
        cpu=statistics.mean(c for c, _ in times),
        wall=statistics.mean(w for _, w in times),
        cpu_ratio=_geomean([c / o for (c, _), (o, _) in zip(times, ours, strict=True)]),
        wall_ratio=_geomean([w / o for (_, w), (_, o) in zip(times, ours, strict=True)]),
        rss=max(c["added"] for c in cold) / 2**20,
        kb=statistics.mean(sum(o[2] for o in c["outputs"]) for c in cold) / 1000,
        psnr=statistics.mean(p for p, _ in scores),
        ssim=statistics.mean(ssims) if ssims else None,
        same_sizes=sizes == ours_sizes,
    )


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


def _cells(group: str, name: str, f: Figures | str) -> tuple[str, ...]:
    label = ENGINES[name][0]
    if isinstance(f, str):
        return (group, label, f, *[""] * 7)
    ratios = ("", "") if name == "ours" else (f"{f.cpu_ratio:.2f}", f"{f.wall_ratio:.2f}")
    ssim = "-" if f.ssim is None else f"{f.ssim:.4f}"
    times = (f"{f.cpu:.0f}", f"{f.wall:.0f}")
    return (group, label, *times, *ratios, f"{f.rss:.0f}", f"{f.kb:.1f}", f"{f.psnr:.2f}", ssim)


def _targets(group: str, name: str, f: Figures | str) -> list[Row]:
    """The rows of the targets this engine and group have (peer CPU time / ours)."""
    target = FIREBASE_TARGET if name == "firebase" else TARGETS.get((group, name))
    case = f"{group}: CPU time, {ENGINES[name][0]} / ours"
    if isinstance(f, str):
        return [Row("peers", case, f, status="info")] if target else []
    rows = []
    if target:
        value, ok = f"{f.cpu_ratio:.2f}x", f.cpu_ratio >= target
        rows.append(judged("peers", case, value, ok, f">= {target:g}x"))
    if name == "ours" and group == JPEG_12MP:
        case, ok = f"{group}: peak RSS added, ours", f.rss * 2**20 <= RSS_TARGET_MB * 1e6
        rows.append(judged("peers", case, f"{f.rss:.0f} MiB", ok, f"<= {RSS_TARGET_MB} MB"))
    return rows


if __name__ == "__main__":  # a worker (`_worker`)
    heif.register()  # naive Pillow opens HEIC through the plugin ours uses
    serve(answer)
