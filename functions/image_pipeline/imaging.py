"""The image core: bytes in, thumbnails and facts out. No cloud clients, no I/O.

Every box and format comes from one decode. A JPEG is decoded at the smallest DCT scale
(1/2, 1/4, 1/8) that still covers the largest thumbnail, and each smaller thumbnail is
resized from the previous one, so a 12 MP photo never exists at full size in memory.
Orientation is applied to the small results (a transpose of a thumbnail is cheaper than
one of the photo), colours are converted to sRGB, and no metadata reaches the outputs.
Every box is a uniform scale of the same upright image; a ``cover`` box is then cropped
(``image_pipeline.cover``), so both fit modes share everything before the crop.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
from typing import cast

from PIL import Image, ImageCms, UnidentifiedImageError

from image_pipeline import animation, cover, decode_cost, frame_count, heif, placeholder
from image_pipeline.errors import PermanentError
from image_pipeline.formats import OUTPUTS, Box, memory_bytes
from image_pipeline.output_rules import Outputs
from image_pipeline.settings import OutputSettings, Tunables

# Formats we decode (HEIF through image_pipeline.heif). Others that Pillow can identify
# (PSD, EPS, TGA, ...) are refused as unsupported_format rather than handed to
# less-travelled decoders.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF")
# Leading bytes of the formats we decode: a file that starts like one of them but will
# not open is corrupt rather than "not an image".
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\0", b"MM\0*")

_DRAFT_FORMATS = ("JPEG", "MPO")  # decoded at a reduced scale (Image.draft)

# EXIF orientation -> the transpose that shows the image upright (ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS = {  # the transposes that exchange width and height
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}
_ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD, _DATETIME_ORIGINAL = 0x8769, 0x8825, 0x9003
_MAX_EXIF_TEXT = 256

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
    """The largest size with the same aspect ratio inside ``box``; never larger than ``size``."""
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
    """Pages or frames, counted no further than the limit allows (never Pillow's walk of a
    TIFF, which is quadratic in its pages)."""
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
    if im.format not in _DRAFT_FORMATS:  # first: Pillow decodes a whole PNG for its EXIF
        _check_memory(im, im.size, budget)
    exif = im.getexif()
    orientation = exif.get(_ORIENTATION, 1)
    transpose = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    swapped = transpose in _SWAPS
    upright = (im.height, im.width) if swapped else im.size
    facts = Facts(
        width=upright[0],
        height=upright[1],
        format=im.format or "",
        mode=im.mode,
        frames=frames,
        exif=_exif_subset(exif, options.include_gps),
    )
    sizes = {box: _scaled(upright, box) for box in options.boxes}
    largest_first = sorted(options.boxes, key=sizes.__getitem__, reverse=True)
    target = sizes[largest_first[0]]
    raw_target = (target[1], target[0]) if swapped else target
    full_size = im.size
    im.draft(None, raw_target)  # JPEG only: DCT-scaled decode that still covers raw_target
    animated = options.animated and animation.is_animation(im)
    # An animation decodes one frame at a time (GIF keeps the previous one to composite on)
    # and holds every frame of every box until it is encoded.
    held = animation.output_bytes(frames, sizes.values()) if animated else 0
    _check_memory(im, full_size, budget, frames=2 if animated else 1, held=held)
    resized = _downsized(_upright(im, raw_target, transpose), sizes, largest_first)
    crops = {
        box: cover.crop_rectangle(
            resized[box], cover.crop_size(resized[box].size, box[:2]), options.cover_focus
        )
        for box in options.boxes
        if box.mode == "cover"
    }
    framed = _cropped(resized, crops)
    movie = (
        _animation(im, framed, raw_target, transpose, sizes, largest_first, crops)
        if animated
        else None
    )
    thumbnails = tuple(
        _encode_animation(movie, box, options.quality)
        if movie is not None and fmt == animation.OUTPUT
        else _encode(framed[box], box, fmt, options.quality)
        for box in options.boxes
        for fmt in options.formats
    )
    smallest = resized[largest_first[-1]]
    return Result(facts, thumbnails, placeholder.describe(_as_rgb(smallest)))


def _upright(
    im: Image.Image, raw_target: tuple[int, int], transpose: Image.Transpose | None
) -> Image.Image:
    """The current frame at the largest thumbnail's size, upright, in sRGB, without metadata."""
    profile = _colour_profile(im)
    working = _to_working_mode(im, keep_for_profile=profile is not None)
    if working.size != raw_target:
        working = working.resize(raw_target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if profile is not None:
        working = _to_srgb(working, profile)
    if transpose is not None:
        working = working.transpose(transpose)
    if working is im:  # nothing to convert: copy, so the file keeps its info and frame
        working = im.copy()
    working.info = {}  # no EXIF, XMP, ICC or comment may reach an output
    return working


def _scaled(upright: tuple[int, int], box: Box) -> tuple[int, int]:
    """The whole image's size for ``box``, before any crop: it fits inside the box, or
    covers it (same aspect ratio either way, never upscaled)."""
    return cover.scaled_size(upright, box[:2]) if box.mode == "cover" else fit(upright, box)


def _cropped(
    resized: dict[Box, Image.Image], crops: dict[Box, tuple[int, int, int, int]]
) -> dict[Box, Image.Image]:
    """Each cover box's image cut to its crop rectangle; inside boxes as they are."""
    return {box: im.crop(crops[box]) if box in crops else im for box, im in resized.items()}


def _downsized(
    working: Image.Image, sizes: dict[Box, tuple[int, int]], largest_first: list[Box]
) -> dict[Box, Image.Image]:
    """Every box's image; each smaller size is resized from the one before it."""
    resized: dict[Box, Image.Image] = {}
    for box in largest_first:
        if sizes[box] != working.size:
            working = working.resize(sizes[box], Image.Resampling.LANCZOS, reducing_gap=3.0)
        resized[box] = working
    return resized


def _animation(
    im: Image.Image,
    first: dict[Box, Image.Image],
    raw_target: tuple[int, int],
    transpose: Image.Transpose | None,
    sizes: dict[Box, tuple[int, int]],
    largest_first: list[Box],
    crops: dict[Box, tuple[int, int, int, int]],
) -> animation.Animation:
    """Every frame at every box (the first one is already made), with its timing; a cover
    box crops every frame where it cropped the first, so the subject does not jump."""
    frames = {box: [first[box]] for box in largest_first}
    durations, loop = [animation.duration(im)], animation.loop(im)
    for index in range(1, getattr(im, "n_frames", 1)):
        im.seek(index)
        frame = _upright(im, raw_target, transpose)  # WebP sets the duration on load
        durations.append(animation.duration(im))
        for box, resized in _cropped(_downsized(frame, sizes, largest_first), crops).items():
            frames[box].append(resized)
    return animation.Animation(frames, tuple(durations), loop)


def _encode_animation(movie: animation.Animation, box: Box, quality: int) -> Thumbnail:
    first = movie.frames[box][0]
    output = OUTPUTS[animation.OUTPUT]
    return Thumbnail(
        box=box,
        format=animation.OUTPUT,
        width=first.width,
        height=first.height,
        content_type=output.content_type,
        data=animation.encode(movie, box, output.encoder_options(quality)),
        frames=len(movie.durations),
    )


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
    if im.has_transparency_data:
        return im.convert("RGBA") if mode not in ("LA", "RGBA") else _loaded(im)
    if mode in ("L", "RGB") or (keep_for_profile and mode in ("CMYK", "LAB")):
        return _loaded(im)
    return im.convert("L" if mode == "1" else "RGB")


def _loaded(im: Image.Image) -> Image.Image:
    im.load()
    return im


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


def _encode(im: Image.Image, box: Box, fmt: str, quality: int) -> Thumbnail:
    output = OUTPUTS[fmt]
    if not output.alpha and im.mode in ("LA", "RGBA"):
        im = _flatten_on_white(im)
    elif not output.grey and im.mode in ("L", "LA"):
        im = im.convert("RGBA" if im.mode == "LA" else "RGB")
    out = io.BytesIO()
    im.save(out, output.pillow, **output.encoder_options(quality))
    return Thumbnail(
        box=box,
        format=fmt,
        width=im.width,
        height=im.height,
        content_type=output.content_type,
        data=out.getvalue(),
    )


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


def _exif_subset(exif: Image.Exif, include_gps: bool) -> dict[str, object]:
    """Camera make/model and capture time (plus the GPS position only when configured)."""
    subset: dict[str, object] = {}
    for key, tag in (("make", _MAKE), ("model", _MODEL)):
        text = _text(exif.get(tag))
        if text:
            subset[key] = text
    taken = _text(exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL))
    if taken:
        subset["dateTimeOriginal"] = taken
    if include_gps:
        gps = _gps(exif.get_ifd(_GPS_IFD))
        if gps:
            subset["gps"] = gps
    return subset


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()[:_MAX_EXIF_TEXT] or None


def _gps(ifd: dict[int, object]) -> dict[str, float]:
    """Decimal degrees from the GPS IFD (tags 1-4); empty when absent or malformed."""
    try:
        return {"latitude": _degrees(ifd[2], ifd[1]), "longitude": _degrees(ifd[4], ifd[3])}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return {}


def _degrees(dms: object, ref: object) -> float:
    if not isinstance(dms, tuple | list):
        raise TypeError(f"{dms!r} is not degrees, minutes, seconds")
    degrees, minutes, seconds = (float(v) for v in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return round(-value if _text(ref) in ("S", "W") else value, 7)
