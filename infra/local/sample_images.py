"""Sample inputs made at run time with Pillow: the demo and the integration tests use them.

Generated rather than committed, so the repository carries no binaries and every edge case
is written down as code (what is rotated, where the alpha is, how a file is broken).
"""

from __future__ import annotations

import io

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


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    """`image` saved in `fmt` (a Pillow format name) with `params`, as bytes."""
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg(width: int = 1600, height: int = 1200, color: tuple[int, int, int] = RED) -> bytes:
    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2), BLUE)
    return encoded(image, "JPEG", quality=85)


def png_with_alpha(width: int = 600, height: int = 400) -> bytes:
    """Left half opaque green, right half fully transparent."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), (20, 200, 20, 255))
    return encoded(image, "PNG")


def exif_rotated_jpeg(width: int = 800, height: int = 600) -> bytes:
    """Stored landscape, left half red / right half blue, EXIF Orientation 6 (rotate 90° CW).

    Shown upright it is portrait (height x width) with red on top and blue at the bottom.
    """
    image = Image.new("RGB", (width, height), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), RED)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "DemoCam"  # Make
    return encoded(image, "JPEG", quality=90, exif=exif.tobytes())


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
    return encoded(image, "JPEG", quality=90)


def corrupt_jpeg() -> bytes:
    """A JPEG signature followed by noise: looks like a JPEG, is not one."""
    return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


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
