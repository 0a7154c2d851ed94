"""What a source's EXIF says: how to show it upright, and the subset its metadata doc keeps
(make, model, capture time and, only when configured, the GPS position)."""

from __future__ import annotations

from PIL import Image

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
_ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD, _DATETIME_ORIGINAL = 0x8769, 0x8825, 0x9003
_MAX_TEXT = 256


def upright(exif: Image.Exif) -> tuple[Image.Transpose | None, bool]:
    """The transpose that shows the image upright (None when it is, or the tag is not 2..8)
    and whether it exchanges width and height (orientations 5 to 8)."""
    orientation = exif.get(_ORIENTATION, 1)
    transpose = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return transpose, transpose is not None and orientation >= 5


def subset(exif: Image.Exif, include_gps: bool) -> dict[str, object]:
    """Camera make/model and capture time (plus the GPS position only when configured)."""
    kept: dict[str, object] = {}
    for key, tag in (("make", _MAKE), ("model", _MODEL)):
        text = _text(exif.get(tag))
        if text:
            kept[key] = text
    taken = _text(exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL))
    if taken:
        kept["dateTimeOriginal"] = taken
    if include_gps:
        gps = _gps(exif.get_ifd(_GPS_IFD))
        if gps:
            kept["gps"] = gps
    return kept


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()[:_MAX_TEXT] or None


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
