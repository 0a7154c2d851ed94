"""Sample inputs made at run time with Pillow: the demo and the integration tests use them.

Generated rather than committed, so the repository carries no binaries and every edge case
is written down as code (what is rotated, where the alpha is, how a file is broken).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw

RED, BLUE = (220, 20, 20), (20, 20, 220)


def jpeg(width: int = 1600, height: int = 1200, color: tuple[int, int, int] = RED) -> bytes:
    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2), BLUE)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def png_with_alpha(width: int = 600, height: int = 400) -> bytes:
    """Left half opaque green, right half fully transparent."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), (20, 200, 20, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def exif_rotated_jpeg(width: int = 800, height: int = 600) -> bytes:
    """Stored landscape, left half red / right half blue, EXIF Orientation 6 (rotate 90° CW).

    Shown upright it is portrait (height x width) with red on top and blue at the bottom.
    """
    image = Image.new("RGB", (width, height), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), RED)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "DemoCam"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def corrupt_jpeg() -> bytes:
    """A JPEG signature followed by noise: looks like a JPEG, is not one."""
    return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


def truncated_jpeg() -> bytes:
    data = jpeg(640, 480)
    return data[: len(data) // 2]


def text_named_jpg() -> bytes:
    return b"this is a text file that claims to be a JPEG\n" * 20


def decompression_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a 900 MP 'bomb')."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def oversized(size: int) -> bytes:
    """More bytes than the limit allows (content irrelevant: rejected before download)."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (size - 4)
