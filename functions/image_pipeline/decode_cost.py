"""How much memory making thumbnails of an image will take, told from its header: the limit
is on these bytes, as pixels do not bound memory (docs/architecture.md, "Failure reasons").
The costs are peak RSS measured per mode and format (docs/benchmarks.md, "Decoded bytes"),
rounded up by at least one byte a pixel."""

from __future__ import annotations

from PIL import Image

MIB = 1 << 20
# Share of the function's memory this process may count on: the rest covers allocator
# fragmentation and the measurement's own spread.
MEMORY_MARGIN = 0.9
# What an instance holds before it decodes anything: the Python runtime, functions-framework,
# Pillow and the Cloud clients (~90 MiB measured in benchmarks/memory.py), with room to spare.
INSTANCE_RESERVE = 160 * MIB
# Per decode, whatever the size: decoder state, encoders, the thumbnails themselves.
FIXED_COST = 16 * MIB

# Peak bytes per decoded pixel by decoded mode. Pillow stores "1", "L" and "P" in one byte a
# pixel, "I;16" in two, every other mode (RGB too) in four.
_MODE_COST = {
    "1": 3,  # + the L copy it is converted to
    "L": 2,
    "P": 7,  # + its RGB conversion
    "I;16": 6,  # scaled in place, then the L copy
    "RGB": 6,
    "LAB": 6,  # resized as LAB, then converted from the small result
}
_OTHER_16_BIT = 12  # I;16B and I;16L: converted to I (4 bytes), scaled (4), to L (1)
_DEFAULT_COST = 10  # LA, RGBA, CMYK, YCbCr, I, F: 4 decoded + 4 converted or premultiplied
# An image with transparency but no alpha band becomes RGBA (4 bytes) and is premultiplied
# for the resize (4 more): on top of its decoded bytes.
_TRANSPARENCY_COST = 10
# Decoders that keep buffers of their own: libwebp decodes into its canvas and Pillow copies
# it; libavif and libheif decode YUV planes first.
_FORMAT_COST = {"WEBP": 11, "AVIF": 5, "HEIF": 5}
# A progressive JPEG keeps every DCT coefficient (2 bytes a sample, at full resolution,
# whatever the reduced size it is decoded at) until its last scan.
_PROGRESSIVE_COST_PER_SAMPLE = 2.25


def budget(memory_bytes: int, input_bytes: int) -> int:
    """Bytes a decode may take in a function instance of ``memory_bytes``."""
    return int(memory_bytes * MEMORY_MARGIN) - INSTANCE_RESERVE - input_bytes


def peak_bytes(im: Image.Image, full_size: tuple[int, int], frames: int = 1) -> int:
    """Memory a decode of ``frames`` frames of ``im`` will take at its current size.

    ``im`` is opened but not loaded, after any ``draft`` (a JPEG decodes at the reduced
    size it set); ``full_size`` is its size before, which a progressive JPEG still pays for.
    """
    width, height = im.size
    per_pixel = _per_pixel(im) + _FORMAT_COST.get(im.format or "", 0)
    cost = width * height * per_pixel * frames + FIXED_COST
    if im.format == "JPEG" and im.info.get("progressive"):
        cost += int(full_size[0] * full_size[1] * _progressive_samples(im)) * frames
    return cost


def _per_pixel(im: Image.Image) -> int:
    mode = im.mode
    if mode.startswith("I;16"):
        return _MODE_COST["I;16"] if mode == "I;16" else _OTHER_16_BIT
    if im.has_transparency_data and mode not in ("LA", "RGBA"):
        decoded = 1 if mode in ("1", "L", "P") else 4
        return decoded + _TRANSPARENCY_COST
    return _MODE_COST.get(mode, _DEFAULT_COST)


def _progressive_samples(im: Image.Image) -> float:
    """Bytes of coefficients per full-resolution pixel: components weighted by sampling."""
    layers = getattr(im, "layer", None) or []
    if not layers:
        return _PROGRESSIVE_COST_PER_SAMPLE * len(im.getbands())
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    samples = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return _PROGRESSIVE_COST_PER_SAMPLE * samples
