"""HEIF/HEIC input (iPhone photos), decoded by libheif through the ``pi-heif`` wheel.

``pi-heif`` bundles libheif and libde265 (LGPL, decode only, ~4 MB installed) and needs no
system package; ``pillow-heif`` would add the GPL x265 encoder (~27 MB) that thumbnails
never use. Its Pillow plugin is registered on the first HEIF input, not at import, so a
function that never sees one never loads it (the import of ``functions/main.py`` stays
fast, docs/benchmarks.md).

libheif applies the container's rotation and mirror properties (``irot``/``imir``) while
decoding and the plugin then reports EXIF orientation 1, so the core's EXIF transpose is a
no-op for these files: the HEIF properties, not the EXIF copy, say how to display the
image (ISO/IEC 23008-12). The plugin opens on the primary image of a multi-image file;
thumbnails, depth and auxiliary images are not decoded.
"""

from __future__ import annotations

import functools
import io
import struct

from PIL import Image, UnidentifiedImageError

from image_pipeline.errors import PermanentError

FORMAT = "HEIF"
# ftyp brands of HEVC-coded HEIF: still images, their 10-bit, multi-view and scalable
# variants, and image sequences (whose primary image is what we decode).
HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
# Structural brands that AVIF files carry too; alone, they mean "some HEIF".
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MAX_FTYP = 4096


def brands(data: bytes) -> frozenset[bytes]:
    """The major and compatible brands of an ISO-BMFF ``ftyp`` box at the start of ``data``."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return frozenset()
    (size,) = struct.unpack(">I", data[:4])
    end = min(size, len(data), _MAX_FTYP) if size >= 16 else 16
    listed = [data[8:12]] + [data[i : i + 4] for i in range(16, end - 3, 4)]
    return frozenset(listed)


def is_heif(data: bytes) -> bool:
    """True for HEVC-coded HEIF (and generic HEIF that names no AVIF brand)."""
    found = brands(data)
    if found & HEVC_BRANDS:
        return True
    return bool(found & _GENERIC_BRANDS) and not found & AVIF_BRANDS


@functools.cache
def register() -> None:
    """Load libheif and add its Pillow opener (once per process)."""
    import pi_heif  # deliberately here: libheif loads on the first HEIF input

    pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def open_image(data: bytes) -> Image.Image:
    """Open a HEIF file's primary image (header only; pixels decode on ``load``)."""
    register()
    try:
        return Image.open(io.BytesIO(data), formats=(FORMAT,))
    except UnidentifiedImageError:
        raise PermanentError(
            "corrupt", "the HEIF container cannot be read (truncated or damaged)"
        ) from None
