"""HEIF/HEIC input (iPhone photos), decoded by libheif through the ``pi-heif`` wheel, whose
plugin is registered on the first HEIF input (docs/architecture.md, "Inputs"). ``pi-heif``
bundles libheif and libde265 (LGPL, decode only, ~4 MB) and needs no system package;
``pillow-heif`` would add the GPL x265 encoder (~27 MB) thumbnails never use. libheif applies
``irot``/``imir`` and reports EXIF orientation 1: the HEIF properties, not the EXIF copy, say
how to show it (ISO/IEC 23008-12).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

from image_pipeline import icc
from image_pipeline.errors import PermanentError

FORMAT = "HEIF"
# ftyp brands of HEVC-coded HEIF: still images, their 10-bit, multi-view and scalable
# variants, and image sequences (whose primary image is what we decode).
HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
# Structural brands that AVIF files carry too; alone, they mean "some HEIF".
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MAX_FTYP = 4096

# Item types (ISO/IEC 23008-12 and its codec annexes; ISO/IEC 23001-17) -> codec names.
DECODED = b"hvc1"
_CODECS = {
    DECODED: "HEVC",
    b"av01": "AV1 (AVIF)",
    b"avc1": "AVC (H.264)",
    b"jpeg": "JPEG",
    b"j2k1": "JPEG 2000",
    b"vvc1": "VVC (H.266)",
    b"evc1": "EVC",
}
_DERIVED = frozenset({b"grid", b"iovl", b"iden"})  # made of other items (tiles, overlays)

# nclx colour primaries (ITU-T H.273, table 2) -> red, green, blue, white chromaticities.
# 1 (BT.709, the sRGB primaries) and unspecified/unknown codes need no conversion.
_D65 = (0.3127, 0.3290)
_P3 = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
_PRIMARIES = {
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), _D65),  # BT.2020 / BT.2100
    11: (*_P3, (0.314, 0.351)),  # SMPTE RP 431-2 (DCI-P3, theatre white)
    12: (*_P3, _D65),  # SMPTE EG 432-1 (Display P3)
}
# nclx transfer characteristics (H.273, table 3) -> ICC curve; others (sRGB, unspecified,
# and the HDR curves PQ and HLG, which are not tone-mapped) use the sRGB curve.
_TRANSFERS: dict[int, icc.Curve] = {
    1: icc.BT709_CURVE,
    6: icc.BT709_CURVE,
    14: icc.BT709_CURVE,
    15: icc.BT709_CURVE,
    4: icc.gamma_curve(2.2),
    5: icc.gamma_curve(2.8),
    8: icc.gamma_curve(1.0),
}


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
    codec = undecodable_codec(data)
    if codec is not None:
        raise PermanentError(
            "unsupported_format",
            f"this HEIF's primary image is coded as {codec}; only HEVC-coded HEIF (HEIC) "
            "is decoded",
        )
    register()
    try:
        im = Image.open(io.BytesIO(data), formats=(FORMAT,))
    except UnidentifiedImageError:
        raise PermanentError(
            "corrupt", "the HEIF container cannot be read (truncated or damaged)"
        ) from None
    nclx = im.info.get("nclx_profile")
    if not im.info.get("icc_profile") and isinstance(nclx, dict):
        profile = nclx_icc_profile(
            nclx.get("color_primaries"), nclx.get("transfer_characteristics")
        )
        if profile is not None:
            im.info["icc_profile"] = profile
    return im


@functools.cache
def nclx_icc_profile(primaries: object, transfer: object) -> bytes | None:
    """The ICC profile an ``nclx`` description stands for; None for sRGB or unknown primaries."""
    if not isinstance(primaries, int) or primaries not in _PRIMARIES:
        return None
    curve = icc.SRGB_CURVE
    if isinstance(transfer, int):
        curve = _TRANSFERS.get(transfer, curve)
    name = f"HEIF nclx primaries {primaries} transfer {transfer}"
    return icc.rgb_profile(name, icc.colorants(*_PRIMARIES[primaries]), curve)


def undecodable_codec(data: bytes) -> str | None:
    """The codec of the primary image (of a grid's tiles) when it is known and not HEVC.

    None when it is HEVC, unknown, or the boxes cannot be read (libheif then says what is
    wrong with the file).
    """
    try:
        primary, types = _item_types(data)
    except (struct.error, IndexError):
        return None
    kind = types.get(primary) if primary is not None else None
    if kind in _DERIVED:
        coded = {t for t in types.values() if t in _CODECS}
        kind = DECODED if DECODED in coded or not coded else min(coded)
    if kind is None or kind == DECODED or kind not in _CODECS:
        return None
    return f"{_CODECS[kind]} (item type '{kind.decode('ascii')}')"


def decode_failure(exc: RuntimeError) -> PermanentError | None:
    """libheif's report of a codec it lacks (a case ``undecodable_codec`` did not name)."""
    if "compression format" in str(exc):
        return PermanentError("unsupported_format", f"HEIF: {exc}")
    return None


def _item_types(data: bytes) -> tuple[int | None, dict[int, bytes]]:
    """The primary item's id (``pitm``) and every item's type (``iinf``/``infe`` v2+)."""
    meta = next((box for box in _boxes(data, 0, len(data)) if box[0] == b"meta"), None)
    if meta is None:
        return None, {}
    primary, types = None, {}
    for kind, start, end in _boxes(data, meta[1] + 4, meta[2]):  # meta is a full box
        wide = data[start] != 0  # version 0: 16-bit fields, otherwise 32-bit
        if kind == b"pitm":
            (primary,) = struct.unpack_from(">I" if wide else ">H", data, start + 4)
        elif kind == b"iinf":
            for entry, first, last in _boxes(data, start + (8 if wide else 6), end):
                version = data[first]
                if entry != b"infe" or version < 2:
                    continue
                fmt = ">I2x4s" if version >= 3 else ">H2x4s"
                if first + 4 + struct.calcsize(fmt) <= last:
                    item, item_type = struct.unpack_from(fmt, data, first + 4)
                    types[item] = item_type
    return primary, types


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, box end) of the well-formed boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size
