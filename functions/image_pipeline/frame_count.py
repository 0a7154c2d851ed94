"""Count the pages of a TIFF and the frames of a GIF from the bytes, up to a cap: Pillow's
``n_frames`` is quadratic in a TIFF's pages and parses every frame of a GIF
(docs/architecture.md, "Failure reasons"). The chains (TIFF IFD offsets, GIF blocks) are
followed, stopping after ``cap + 1``, and nothing is decoded; a chain that breaks (an offset
past the end, a loop, a truncated block) ends the count, as it ends Pillow's walk.
"""

from __future__ import annotations

import struct

_GIF_IMAGE, _GIF_EXTENSION = 0x2C, 0x21


def count_frames(data: bytes, image_format: str, cap: int) -> int | None:
    """Pages or frames, counting no further than ``cap + 1``; None when the format's
    header states its count (ask Pillow)."""
    if image_format == "TIFF":
        return tiff_pages(data, cap)
    if image_format == "GIF":
        return gif_frames(data, cap)
    return None


def tiff_pages(data: bytes, cap: int) -> int:
    """The top-level IFDs of a TIFF or BigTIFF (what Pillow calls frames)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return 0
    version = struct.unpack_from(order + "H", data, 2)[0]
    if version == 43:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        count_fmt, entry_size, offset_fmt = "Q", 20, "Q"
        offset = struct.unpack_from(order + "Q", data, 8)[0]
    else:
        count_fmt, entry_size, offset_fmt = "H", 12, "I"
        offset = struct.unpack_from(order + "I", data, 4)[0]
    count_size, offset_size = struct.calcsize(count_fmt), struct.calcsize(offset_fmt)
    seen: set[int] = set()
    pages = 0
    while offset and pages <= cap and offset not in seen:
        if offset + count_size > len(data):
            break
        seen.add(offset)
        pages += 1
        entries = struct.unpack_from(order + count_fmt, data, offset)[0]
        next_at = offset + count_size + entries * entry_size
        if next_at + offset_size > len(data):
            break
        offset = struct.unpack_from(order + offset_fmt, data, next_at)[0]
    return pages


def gif_frames(data: bytes, cap: int) -> int:
    """The image descriptors of a GIF (each one a frame, as Pillow counts them)."""
    if len(data) < 13 or not data.startswith((b"GIF87a", b"GIF89a")):
        return 0
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # global colour table
    frames = 0
    while pos < len(data) and frames <= cap:
        block = data[pos]
        if block == _GIF_IMAGE:
            if pos + 10 > len(data):
                break
            frames += 1
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
        elif block == _GIF_EXTENSION:
            pos = _skip_sub_blocks(data, pos + 2)  # after the label
        else:  # the trailer, or bytes that are not a block: the frames end here
            break
    return frames


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a chain of data sub-blocks (length byte, bytes; 0 ends it)."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return len(data)
