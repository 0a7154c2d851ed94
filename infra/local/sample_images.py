"""Sample inputs made at run time with Pillow: the demo and the integration tests use them.

Generated rather than committed, so the repository carries no binaries and every edge case
is written down as code (what is rotated, where the alpha is, how a file is broken).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw

from image_pipeline import icc

RED, BLUE = (220, 20, 20), (20, 20, 220)
# A colour that Display P3 and sRGB give visibly different values (sRGB ~ (215, 93, 31)).
P3_ORANGE = (200, 100, 50)
# Display P3's red, green and blue in XYZ, adapted to D50 (as its published profiles list them).
DISPLAY_P3_XYZ = (
    (0.515102, 0.241182, -0.001049),
    (0.291965, 0.692236, 0.041882),
    (0.157153, 0.066582, 0.784378),
)


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


def off_centre_subject(width: int = 1600, height: int = 900) -> bytes:
    """A wide scene whose only detail is near its right edge: sky, a flat ground, and a
    "subject" of tiles, stripes and text in the right fifth. A centre crop misses it."""
    image = Image.new("RGB", (width, height), (150, 190, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), (110, 150, 90))
    left, top = width * 4 // 5, height // 5
    right, bottom = width - width // 40, height * 4 // 5
    draw.rectangle((left, top, right, bottom), (240, 230, 200), outline=(30, 30, 30), width=6)
    step = max(8, (right - left) // 12)
    for i, x in enumerate(range(left + step, right - step, step)):
        for j, y in enumerate(range(top + step, bottom - step, step)):
            colour = ((i * 53) % 200, (j * 97) % 200, ((i + j) * 31) % 200)
            draw.rectangle((x, y, x + step // 2, y + step // 2), colour)
    draw.text((left + 12, top + 12), "SUBJECT", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def corrupt_jpeg() -> bytes:
    """A JPEG signature followed by noise: looks like a JPEG, is not one."""
    return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


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


def display_p3_profile() -> bytes:
    """An ICC v4 matrix/TRC profile of Display P3, the colour space of iPhone photos.

    The primaries' XYZ are the published D50-adapted values of Display P3 (DCI-P3
    primaries, D65 white, Bradford), written out rather than computed, so the tests can
    check the profiles ``image_pipeline.icc`` computes from chromaticities against them.
    """
    return icc.rgb_profile("Display P3 (generated)", DISPLAY_P3_XYZ)


def iphone_heic(
    width: int = 1200, height: int = 900, color: tuple[int, int, int] = P3_ORANGE
) -> bytes:
    """A HEIC laid out as an iPhone writes a portrait photo: landscape pixels (sensor
    orientation) with the rotation in the container (``irot``) and EXIF Orientation 6, a
    Display P3 ICC profile, camera make and model.

    Shown upright it is portrait (height x width): ``color`` (in P3) with a blue block in
    the top-left quarter. Encoded by pillow-heif's x265 (a development dependency only; the
    functions decode with pi-heif).
    """
    import pillow_heif  # here, not at import: only HEIF samples need the encoder

    upright = Image.new("RGB", (height, width), color)
    ImageDraw.Draw(upright).rectangle((0, 0, height // 2 - 1, width // 2 - 1), BLUE)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what Orientation 6 turns back
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: pillow-heif also writes it as the irot property
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15 Pro"
    out = io.BytesIO()
    pillow_heif.from_pillow(stored).save(
        out,
        format="HEIF",
        quality=90,
        chroma=444,
        exif=exif.tobytes(),
        icc_profile=display_p3_profile(),
    )
    return out.getvalue()
