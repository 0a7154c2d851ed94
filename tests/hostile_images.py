"""Inputs the pipeline must refuse, made at run time: truncated, mislabelled, decompression
bombs, too many pages, too many bytes. Shared by the unit and integration tests."""

from __future__ import annotations

import struct
import zlib

from infra.local.sample_images import jpeg


def truncated_jpeg() -> bytes:
    data = jpeg(640, 480)
    return data[: len(data) // 2]


def text_named_jpg() -> bytes:
    return b"this is a text file that claims to be a JPEG\n" * 20


def decompression_bomb(
    width: int = 30000, height: int = 30000, depth: int = 8, colour_type: int = 0
) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a 900 MP 'bomb'); 8-bit gray
    unless told (colour type 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def many_page_tiff(pages: int) -> bytes:
    """A little-endian TIFF of ``pages`` 1x1 gray pages sharing one pixel byte: ~114 bytes a
    page, so 250k pages fit the byte limit (Pillow's own page count is quadratic)."""
    pixel_at, first_ifd = 8, 10
    # (tag, type, value): 1x1, 8 bits, uncompressed, BlackIsZero, one strip of one byte
    tags = (
        (256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1),
        (273, 4, pixel_at), (277, 3, 1), (278, 3, 1), (279, 4, 1),
    )  # fmt: skip
    ifd_size = 2 + 12 * len(tags) + 4
    entries = b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    out = [b"II*\0", struct.pack("<I", first_ifd), b"\x80\0"]
    for page in range(pages):
        following = first_ifd + (page + 1) * ifd_size if page + 1 < pages else 0
        out.append(struct.pack("<H", len(tags)) + entries + struct.pack("<I", following))
    return b"".join(out)


def oversized(size: int) -> bytes:
    """More bytes than the limit allows (content irrelevant: rejected before download)."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (size - 4)
