"""The image core: bytes in, thumbnails and facts out. No cloud clients, no I/O.

Every box and format comes from one decode: a JPEG's at the smallest DCT scale that covers
the largest thumbnail, which is resized from it with LANCZOS, each smaller one from the one
before (docs/benchmarks.md, "Resampling schedule"). Orientation is applied to the small
results, colours go to sRGB, no metadata reaches an output; a ``cover`` box is cropped last
(``image_pipeline.cover``). With more than one CPU, a thumbnail encodes on a thread (Pillow
releases the GIL) while the next one is resized.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from PIL import Image, ImageCms, UnidentifiedImageError, features

from image_pipeline import animation, cover, decode_cost, frame_count, heif, placeholder
from image_pipeline import exif as exif_tags
from image_pipeline.errors import PermanentError
from image_pipeline.formats import OUTPUTS, Box, memory_bytes
from image_pipeline.output_rules import Outputs
from image_pipeline.settings import OutputSettings, Tunables

if TYPE_CHECKING:  # imported when first needed, so the function's import stays light
    from concurrent.futures import Future, ThreadPoolExecutor

# Formats we decode (HEIF through image_pipeline.heif). Others Pillow can identify (PSD, EPS,
# TGA, ...) are refused as unsupported_format rather than handed to less-travelled decoders.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF")
# Leading bytes of the formats we decode: a file that starts like one of them but will
# not open is corrupt rather than "not an image".
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\0", b"MM\0*")

# Pillow's draft() offers 1/2, 1/4, 1/8; libjpeg-turbo, asked for 1/N (Pillow's decoder sets
# scale_denom = N), decodes at the smallest M/8 at or above it (jdmaster.c): N = 3 gives 3/8,
# 1500x1125 for a 12 MP photo and a 1024 box, not 2000x1500. Pillow's rows must be as wide as
# libjpeg's, ceil(3 * width / 8): only libjpeg-turbo's rounding is relied on.
_THREE_EIGHTHS = int((features.version_feature("libjpeg_turbo") or "0").split(".")[0]) >= 2
# LANCZOS throughout; the step from the decoded image first box-averages by an integer factor
# while LANCZOS keeps at least 1.5x (a 12 MP PNG for a 1024 box: 2x2, then 1.95x), later
# steps while it keeps 3x (docs/benchmarks.md, "Resampling schedule").
_FIRST_GAP, _LATER_GAP = 1.5, 3.0
Area = tuple[float, float, float, float]  # left, top, right, bottom
Framed = tuple[Box, Image.Image]  # a box and its image

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))


@dataclasses.dataclass(frozen=True)
class Options:
    """What to make and what to refuse (``from_tunables``: what the settings ask for)."""

    boxes: tuple[Box, ...]
    formats: tuple[str, ...]
    quality: int
    max_bytes: int
    max_pixels: int
    max_frames: int
    memory: str  # the function's memory ("1Gi"): the decoded bytes must fit it
    include_gps: bool
    animated: bool
    cover_focus: cover.Focus = "centre"

    @classmethod
    def from_tunables(
        cls,
        tunables: Tunables,
        outputs: Outputs | None = None,
        shaped_by: OutputSettings | Tunables | None = None,
    ) -> Options:
        """The options a deployment's settings ask for: the limits from ``tunables``, what
        shapes the outputs from ``shaped_by`` (make_thumbnail: ``Settings.outputs``, what the
        fingerprint digests; default: ``tunables``), and ``outputs``, an object's sizes and
        formats under the output rules (default: the deployment's own)."""
        shape = shaped_by or tunables
        return cls(
            boxes=outputs.sizes if outputs else shape.thumbnail_sizes,
            formats=outputs.formats if outputs else shape.thumbnail_formats,
            quality=shape.thumbnail_quality,
            max_bytes=tunables.max_input_bytes,
            max_pixels=tunables.max_input_pixels,
            max_frames=tunables.max_input_frames,
            memory=tunables.thumbnail_memory,
            include_gps=shape.exif_include_gps,
            animated=shape.animated,
            cover_focus=cast(cover.Focus, shape.cover_focus),
        )


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the metadata doc records about the source (size after orientation)."""

    width: int
    height: int
    format: str
    mode: str
    frames: int
    exif: dict[str, object]


@dataclasses.dataclass(frozen=True)
class Thumbnail:
    box: Box
    format: str
    width: int
    height: int
    content_type: str
    data: bytes
    frames: int = 1


@dataclasses.dataclass(frozen=True)
class Result:
    facts: Facts
    thumbnails: tuple[Thumbnail, ...]
    placeholder: placeholder.Placeholder


def check_size(size: int, max_bytes: int) -> None:
    """Reject by byte count alone, before anything is downloaded."""
    if size <= 0:
        raise PermanentError("empty", "the object has no bytes")
    if size > max_bytes:
        raise PermanentError("too_many_bytes", f"{size} bytes is more than the {max_bytes} allowed")


def fit(size: tuple[int, int], box: Box) -> tuple[int, int]:
    """The image's size for ``box`` before any crop, same aspect ratio, never upscaled: the
    largest inside the box, or for a ``cover`` box the one that covers it."""
    if box.mode == "cover":
        return cover.scaled_size(size, box[:2])
    width, height = size
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_thumbnails(data: bytes, options: Options) -> Result:
    """Decode once, check the limits from the header first, encode every box x format.

    Pixels, frames and the memory the decode will take are all known before any pixel is
    decoded (docs/architecture.md, "Failure reasons").
    """
    check_size(len(data), options.max_bytes)
    # Pillow's own bomb check (an error above twice this) then agrees with ours.
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    try:
        with _open(data) as im:
            width, height = im.size
            if width * height > options.max_pixels:
                raise PermanentError(
                    "too_many_pixels",
                    f"{width}x{height} is more than the {options.max_pixels} pixels allowed",
                )
            frames = _frames(data, im, options.max_frames)
            budget = decode_cost.budget(memory_bytes(options.memory), len(data))
            return _render(im, options, frames, budget)
    except Image.DecompressionBombError as exc:
        raise PermanentError("too_many_pixels", str(exc)) from None
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise PermanentError(reason, str(exc) or type(exc).__name__) from None
    except RuntimeError as exc:  # libheif (pi-heif) lacking a decoder for the file's codec
        failure = heif.decode_failure(exc)
        if failure is None:
            raise
        raise failure from None
    except (SyntaxError, ValueError, EOFError, struct.error) as exc:
        # Pillow's decoders report malformed data through these as well.
        raise PermanentError("corrupt", f"{type(exc).__name__}: {exc}") from None


def _open(data: bytes) -> Image.Image:
    """Read the header only; tell apart unsupported formats, broken files and non-images."""
    if heif.is_heif(data):
        return heif.open_image(data)
    try:
        return Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    except UnidentifiedImageError:
        pass
    try:
        with Image.open(io.BytesIO(data)) as other:
            raise PermanentError("unsupported_format", f"{other.format} images are not supported")
    except UnidentifiedImageError:
        pass
    avif = bool(heif.brands(data) & heif.AVIF_BRANDS)
    if data.startswith(_SIGNATURES) or data[8:12] == b"WEBP" or avif:
        raise PermanentError("corrupt", "the header of this image cannot be read")
    raise PermanentError("not_an_image", "the bytes are not an image")


def _frames(data: bytes, im: Image.Image, max_frames: int) -> int:
    """Pages or frames, counted no further than the limit allows."""
    counted = frame_count.count_frames(data, im.format or "", max_frames)
    frames = counted if counted is not None else getattr(im, "n_frames", 1)
    if frames > max_frames:
        raise PermanentError(
            "too_many_frames", f"more than the {max_frames} pages or frames allowed"
        )
    return max(frames, 1)


def _check_memory(
    im: Image.Image, full_size: tuple[int, int], budget: int, frames: int = 1, held: int = 0
) -> None:
    """Refuse, before decoding, an image whose decode would not fit the function's memory:
    ``frames`` decoded at once, plus ``held`` bytes of outputs kept meanwhile."""
    need = decode_cost.peak_bytes(im, full_size, frames) + held
    if need > budget:
        mib = decode_cost.MIB
        raise PermanentError(
            "too_many_decoded_bytes",
            f"decoding this {full_size[0]}x{full_size[1]} {im.mode} {im.format} image needs "
            f"about {need // mib} MiB, more than the {max(budget, 0) // mib} MiB this "
            "function's memory leaves for it",
        )


def _render(im: Image.Image, options: Options, frames: int, budget: int) -> Result:
    if im.format not in ("JPEG", "MPO"):  # before Pillow decodes a PNG for its EXIF
        _check_memory(im, im.size, budget)
    exif = im.getexif()
    transpose, swapped = exif_tags.upright(exif)
    upright = (im.height, im.width) if swapped else im.size
    kept = exif_tags.subset(exif, options.include_gps)
    facts = Facts(*upright, format=im.format or "", mode=im.mode, frames=frames, exif=kept)
    sizes = {box: fit(upright, box) for box in options.boxes}
    largest_first = sorted(options.boxes, key=sizes.__getitem__, reverse=True)
    target = sizes[largest_first[0]]
    raw_target = (target[1], target[0]) if swapped else target
    full_size = im.size
    area = _decode_scaled(im, raw_target)
    animated = options.animated and animation.is_animation(im)
    # A GIF keeps the previous frame to composite on; an animation holds all its outputs.
    held = animation.output_bytes(frames, sizes.values()) if animated else 0
    _check_memory(im, full_size, budget, frames=2 if animated else 1, held=held)
    stills = [fmt for fmt in options.formats if not (animated and fmt == animation.OUTPUT)]
    pool = _pool() if (os.process_cpu_count() or 1) > 1 else None  # else encode at once
    jobs: list[Future[list[Thumbnail]] | list[Thumbnail]] = []
    first: dict[Box, Image.Image] = {}  # each box's (first) frame, cropped
    crops: dict[Box, tuple[int, int, int, int]] = {}
    for box, resized in _downsized(_upright(im, raw_target, transpose, area), sizes, largest_first):
        if box.mode == "cover":
            crop = cover.crop_size(resized.size, box[:2])
            crops[box] = cover.crop_rectangle(resized, crop, options.cover_focus)
        image = resized.crop(crops[box]) if box in crops else resized
        # Boxes the image fits whole get the same object: each encode gets its own.
        first[box] = image.copy() if any(image is seen for seen in first.values()) else image
        job = (first[box], box, stills, options.quality)
        jobs.append(pool.submit(_encode, *job) if pool else _encode(*job))
    done = [job if isinstance(job, list) else job.result() for job in jobs]
    made = {(t.box, t.format): t for thumbnails in done for t in thumbnails}
    if animated:  # after the stills: an encode must not share its image with another
        # Every frame cropped where the first was, so a cover box's subject does not jump.
        def boxed() -> Iterator[Framed]:
            for box, resized in _downsized(
                _upright(im, raw_target, transpose), sizes, largest_first
            ):
                yield box, resized.crop(crops[box]) if box in crops else resized

        movie = _animation(im, first, boxed)
        webp = OUTPUTS[animation.OUTPUT]
        for box in options.boxes:
            data = animation.encode(movie, box, webp.encoder_options(options.quality))
            size, frames = first[box].size, len(movie.durations)
            made[box, webp.name] = Thumbnail(box, webp.name, *size, webp.content_type, data, frames)
    thumbnails = tuple(made[box, fmt] for box in options.boxes for fmt in options.formats)
    return Result(facts, thumbnails, placeholder.describe(_as_rgb(resized)))  # the smallest


def _decode_scaled(im: Image.Image, raw_target: tuple[int, int]) -> Area | None:
    """Set a JPEG to decode at the smallest DCT scale that covers ``raw_target`` (the largest
    thumbnail before orientation). Returns where the picture lies in the decoded pixels: a last
    row can be part-filled (750 rows at 3/8: 281.25 in 282), and resizing it whole shifts edges."""
    from PIL import JpegImagePlugin  # loaded already: Image.open found the JPEG with it

    if not isinstance(im, JpegImagePlugin.JpegImageFile):
        return None
    width, height = im.size
    drafted = im.draft(None, raw_target)  # Pillow's choice of 1/1, 1/2, 1/4 or 1/8
    size = (-(-width * 3 // 8), -(-height * 3 // 8))
    covers = size[0] >= raw_target[0] and size[1] >= raw_target[1]
    if _THREE_EIGHTHS and covers and im.decoderconfig == (2, 0):
        im.decoderconfig = (3, 0)
        im._size = size
        im.tile = [im.tile[0]._replace(extents=(0, 0, *size))]
        return (0, 0, width * 3 / 8, height * 3 / 8)
    return drafted[1] if drafted else None


def _upright(
    im: Image.Image,
    raw_target: tuple[int, int],
    transpose: Image.Transpose | None,
    area: Area | None = None,
) -> Image.Image:
    """The current frame at the largest thumbnail's size, upright, in sRGB, without metadata
    (``area``: where the picture lies in the decoded pixels)."""
    profile = _colour_profile(im)
    working = _to_working_mode(im, keep_for_profile=profile is not None)
    if working.size != raw_target or (area and area != (0, 0, *working.size)):
        working = working.resize(
            raw_target, Image.Resampling.LANCZOS, box=area, reducing_gap=_FIRST_GAP
        )
    if profile is not None:
        working = _to_srgb(working, profile)
    if transpose is not None:
        working = working.transpose(transpose)
    if working is im:  # nothing to convert: copy, so the file keeps its info and frame
        working = im.copy()
    working.info = {}  # no EXIF, XMP, ICC or comment may reach an output
    return working


def _downsized(
    working: Image.Image, sizes: dict[Box, tuple[int, int]], largest_first: list[Box]
) -> Iterator[Framed]:
    """Every box's image, largest first; each smaller one is resized from the one before."""
    for box in largest_first:
        if sizes[box] != working.size:
            working = working.resize(sizes[box], Image.Resampling.LANCZOS, reducing_gap=_LATER_GAP)
        yield box, working


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Threads that encode a thumbnail while the next one is resized, where this process
    may use more than one CPU (created on the first such image)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(os.process_cpu_count(), thread_name_prefix="encode")


def _animation(
    im: Image.Image,
    first: dict[Box, Image.Image],
    boxed: Callable[[], Iterator[Framed]],
) -> animation.Animation:
    """Every frame at every box (``first``: the first one's; ``boxed``: the current one's),
    with its timing."""
    frames = {box: [image] for box, image in first.items()}
    durations, loop = [animation.duration(im)], animation.loop(im)
    for index in range(1, getattr(im, "n_frames", 1)):
        im.seek(index)
        for box, image in boxed():  # WebP sets the duration on load
            frames[box].append(image)
        durations.append(animation.duration(im))
    return animation.Animation(frames, tuple(durations), loop)


def _colour_profile(im: Image.Image) -> ImageCms.ImageCmsProfile | None:
    """The embedded ICC profile; CIELAB pixels use the standard one when none is embedded."""
    icc = im.info.get("icc_profile")
    if icc:
        profile = _read_profile(icc)
        if profile is not None:
            return profile
    return _LAB if im.mode == "LAB" else None


# Profiles and transforms are kept per process: the photos of one camera or phone share
# their profile, an animation's frames always do, and building a transform costs ~5 ms
# (LittleCMS) against ~7 ms to apply it to a 1024 px thumbnail.
@functools.lru_cache(maxsize=8)
def _read_profile(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # unreadable: the pixels are taken as sRGB


@functools.lru_cache(maxsize=16)
def _srgb_transform(profile: ImageCms.ImageCmsProfile, mode: str) -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(profile, _SRGB, mode, "RGB")


def _to_working_mode(im: Image.Image, keep_for_profile: bool) -> Image.Image:
    """The (first) frame in L, LA, RGB or RGBA with the right values and alpha.

    CMYK and LAB stay as they are when a colour profile will take them to sRGB.
    """
    mode = im.mode
    if mode == "I;16":  # scaled in place: 2 + 2 + 1 bytes a pixel instead of 2 + 4 + 4 + 1
        return _to_l(im, 1 / 256, 0.0)
    if mode.startswith("I;16"):  # I;16B and I;16L have no point operation
        return _to_l(im.convert("I"), 1 / 256, 0.0)
    if mode in ("I", "F"):
        return _to_l(im, *_scale_for(im))
    if im.has_transparency_data and mode not in ("LA", "RGBA"):
        return im.convert("RGBA")
    as_is = mode in ("L", "RGB") or (keep_for_profile and mode in ("CMYK", "LAB"))
    if im.has_transparency_data or as_is:
        im.load()  # decoded now, as a conversion would have
        return im
    return im.convert("L" if mode == "1" else "RGB")


def _scale_for(im: Image.Image) -> tuple[float, float]:
    """(scale, offset) taking 32-bit integer or float samples to 0..255, judged by range.

    Floats within 0..1 are unit intensities; integers within 0..65535 are 16-bit samples;
    data already within 0..255 is kept; anything else is stretched over its own range.
    """
    # Modes I and F have one band, so the extrema are one (low, high) pair.
    low, high = cast(tuple[float, float], im.getextrema())
    if low >= 0 and high <= 1 and im.mode == "F":
        return 255.0, 0.0
    if low >= 0 and high <= 255:
        return 1.0, 0.0
    if low >= 0 and high <= 65535 and im.mode == "I":
        return 1 / 256, 0.0
    scale = 255 / ((high - low) or 1)
    return scale, -low * scale


def _to_l(im: Image.Image, scale: float, offset: float) -> Image.Image:
    return im.point(lambda v: v * scale + offset).convert("L")


def _to_srgb(im: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    """Convert colour through ``profile`` to sRGB (alpha untouched); if the profile does not
    fit the pixels, they are taken as sRGB already."""
    alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
    colour = im.convert(im.mode[:-1]) if alpha is not None else im
    try:
        converted = _srgb_transform(profile, colour.mode).apply(colour)
    except ImageCms.PyCMSError:
        return im if im.mode in ("L", "LA", "RGB", "RGBA") else im.convert("RGB")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _encode(im: Image.Image, box: Box, formats: list[str], quality: int) -> list[Thumbnail]:
    """``im`` in each format (one job: encoders must not share an image object, whose
    ``save`` records its options on it)."""
    thumbnails = []
    for fmt in formats:
        output, image = OUTPUTS[fmt], im
        if not output.alpha and im.mode in ("LA", "RGBA"):
            image = _flatten_on_white(im)
        elif not output.grey and im.mode in ("L", "LA"):
            image = im.convert("RGBA" if im.mode == "LA" else "RGB")
        out = io.BytesIO()
        image.save(out, output.pillow, **output.encoder_options(quality))
        thumbnails.append(
            Thumbnail(box, fmt, image.width, image.height, output.content_type, out.getvalue())
        )
    return thumbnails


def _as_rgb(im: Image.Image) -> Image.Image:
    """Colour only: alpha flattened on white, as a viewer without transparency shows it."""
    if im.mode in ("LA", "RGBA"):
        im = _flatten_on_white(im)
    return im if im.mode == "RGB" else im.convert("RGB")


def _flatten_on_white(im: Image.Image) -> Image.Image:
    base_mode = im.mode[:-1]  # LA -> L, RGBA -> RGB
    background = Image.new(base_mode, im.size, "white")
    background.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return background
