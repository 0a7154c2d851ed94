"""The image core, checked on pixels: orientation, colour modes, alpha, ICC, limits."""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import tracemalloc
from typing import Any

import pytest
from imagekit import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    close,
    encode,
    photo,
    quadrant_colours,
    quadrants,
)
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageStat

from image_pipeline import imaging
from image_pipeline.errors import PermanentError
from image_pipeline.formats import OUTPUTS, Box
from image_pipeline.settings import Tunables
from infra.local.sample_images import P3_ORANGE, display_p3_profile
from tests.hostile_images import decompression_bomb

BOXES = (Box(128, 128), Box(512, 512), Box(1024, 1024))


def options(**overrides: Any) -> imaging.Options:
    base = Tunables(thumbnail_sizes=(Box(64, 64),), thumbnail_formats=("png",))
    return dataclasses.replace(imaging.Options.from_tunables(base), **overrides)


def only(data: bytes, **overrides: object) -> Image.Image:
    """The single thumbnail of ``data``, decoded."""
    (thumb,) = imaging.make_thumbnails(data, options(**overrides)).thumbnails
    return Image.open(io.BytesIO(thumb.data))


def reason_of(data: bytes, **overrides: object) -> str:
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, options(**overrides))
    return caught.value.reason


# --- sizes and formats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((4000, 3000), Box(1024, 1024), (1024, 768)),
        ((3000, 4000), Box(1024, 1024), (768, 1024)),
        ((4000, 3000), Box(128, 64), (85, 64)),
        ((100, 50), Box(1024, 1024), (100, 50)),  # never upscaled
        ((10000, 1), Box(64, 64), (64, 1)),  # never 0 pixels
    ],
)
def test_fit_is_a_bounding_box_that_never_upscales(size, box, expected):
    assert imaging.fit(size, box) == expected


def test_default_boxes_from_a_photo():
    result = imaging.make_thumbnails(photo(1600, 1200), options(boxes=BOXES, formats=("webp",)))
    assert [(t.box, t.width, t.height) for t in result.thumbnails] == [
        (Box(128, 128), 128, 96),
        (Box(512, 512), 512, 384),
        (Box(1024, 1024), 1024, 768),
    ]
    for thumb in result.thumbnails:
        out = Image.open(io.BytesIO(thumb.data))
        assert (out.format, out.size) == ("WEBP", (thumb.width, thumb.height))
        assert thumb.content_type == "image/webp"
    facts = result.facts
    assert (facts.width, facts.height, facts.format, facts.mode, facts.frames) == (
        1600,
        1200,
        "JPEG",
        "RGB",
        1,
    )


FORMATS = [name for name, output in OUTPUTS.items() if output.available()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_output_format(fmt):
    (thumb,) = imaging.make_thumbnails(photo(), options(formats=(fmt,))).thumbnails
    out = Image.open(io.BytesIO(thumb.data))
    assert out.format == OUTPUTS[fmt].pillow
    assert thumb.content_type == f"image/{fmt}"
    assert out.size == (64, 48)


def test_small_images_are_not_upscaled():
    assert only(photo(40, 20, "PNG")).size == (40, 20)


def test_all_sizes_come_from_one_jpeg_decode(monkeypatch):
    decoders = []
    real = Image._getdecoder

    def counting(mode, decoder_name, *args):
        decoders.append(decoder_name)
        return real(mode, decoder_name, *args)

    monkeypatch.setattr(Image, "_getdecoder", counting)
    data = photo(1024, 768)
    result = imaging.make_thumbnails(data, options(boxes=(Box(128, 128), Box(64, 64))))
    assert decoders == ["jpeg"]  # one decode for every box
    assert [t.width for t in result.thumbnails] == [128, 64]


@pytest.mark.parametrize(
    ("size", "target", "scale", "decoded"),
    [
        ((1000, 750), (256, 192), 3 / 8, (375, 282)),  # its last row of blocks partly empty
        ((1200, 800), (256, 171), 1 / 4, (300, 200)),
        ((1024, 768), (128, 96), 1 / 8, (128, 96)),
        ((800, 600), (512, 384), 1, (800, 600)),
        ((1000, 750), (376, 282), 1 / 2, (500, 375)),  # 3/8 would be a column short
    ],
)
def test_a_jpeg_decodes_at_the_smallest_dct_scale_that_covers_the_largest_box(
    size, target, scale, decoded
):
    data = photo(*size)
    with Image.open(io.BytesIO(data)) as im:
        area = imaging._decode_scaled(im, target)
        im.load()
        assert im.size == decoded
        assert area == (0, 0, size[0] * scale, size[1] * scale)
        whole = (int(area[2]), int(area[3]))  # the pixels the picture fills entirely
        with Image.open(io.BytesIO(data)) as full:
            expected = full.resize(whole, box=(0, 0, whole[0] / scale, whole[1] / scale))
        diff = ImageChops.difference(im.crop((0, 0, *whole)), expected)
        assert max(ImageStat.Stat(diff).rms) < 6  # the same picture, not a shifted one


# --- orientation ----------------------------------------------------------------------

# How to store an upright image so that a viewer applying EXIF orientation shows it
# upright (the inverse of each orientation's display transform).
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented(orientation: int, fmt: str, size: tuple[int, int]) -> bytes:
    upright = quadrants(*size)
    transpose = STORED_AS[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("fmt", "size"), [("JPEG", (960, 480)), ("PNG", (120, 60))])
def test_exif_orientation_comes_out_upright(orientation, fmt, size):
    data = oriented(orientation, fmt, size)
    result = imaging.make_thumbnails(data, options())
    assert (result.facts.width, result.facts.height) == size
    out = Image.open(io.BytesIO(result.thumbnails[0].data))
    assert out.size == (64, 32)
    tl, tr, bl, br = quadrant_colours(out)
    assert close(tl, RED, 40) and close(tr, GREEN, 40), (tl, tr)
    assert close(bl, BLUE, 40) and close(br, WHITE, 40), (bl, br)


# --- metadata stripped, facts kept ----------------------------------------------------


def camera_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Acme"
    exif[0x0110] = "Snap 3000\x00"
    exif.get_ifd(0x8769)[0x9003] = "2025:06:01 12:34:56"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "W", 4: (2.0, 17.0, 40.0)})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><GPSLatitude>48,51N</GPSLatitude></x:xmpmeta>'
    return photo(200, 100, exif=exif.tobytes(), xmp=xmp, comment=b"secret")


@pytest.mark.parametrize("fmt", FORMATS)
def test_outputs_carry_no_exif_gps_xmp_or_icc(fmt):
    (thumb,) = imaging.make_thumbnails(camera_jpeg(), options(formats=(fmt,))).thumbnails
    out = Image.open(io.BytesIO(thumb.data))
    assert not out.getexif()
    assert not {"exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"} & set(out.info)
    for needle in (b"Exif", b"Acme", b"xmpmeta", b"secret"):
        assert needle not in thumb.data


def test_exif_subset_without_gps_by_default():
    facts = imaging.make_thumbnails(camera_jpeg(), options()).facts
    assert facts.exif == {
        "make": "Acme",
        "model": "Snap 3000",
        "dateTimeOriginal": "2025:06:01 12:34:56",
    }


def test_exif_subset_with_gps_when_configured():
    gps = imaging.make_thumbnails(camera_jpeg(), options(include_gps=True)).facts.exif["gps"]
    assert gps == {"latitude": pytest.approx(48.858056), "longitude": pytest.approx(-2.294444)}


# --- colour modes ---------------------------------------------------------------------


def palette_image(transparent: bool) -> Image.Image:
    im = Image.new("P", (40, 40), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(0, (0, 0, 20, 40))
    if transparent:
        im.info["transparency"] = 0
    return im


def pa_image() -> Image.Image:
    im = palette_image(False).convert("PA")
    im.putalpha(Image.new("L", (40, 40), 128))
    return im


CMYK_RED = Image.new("CMYK", (40, 40), (0, 255, 255, 0))

# mode -> (40x40 stored bytes, expected RGBA of the right half of a PNG thumbnail)
MODES = {
    "1": (encode(Image.new("1", (40, 40), 1), "PNG"), (255, 255, 255, 255)),
    "L": (encode(Image.new("L", (40, 40), 100), "PNG"), (100, 100, 100, 255)),
    "LA": (encode(Image.new("LA", (40, 40), (100, 128)), "PNG"), (100, 100, 100, 128)),
    "P": (encode(palette_image(False), "PNG"), (255, 0, 0, 255)),
    "P+transparency": (encode(palette_image(True), "PNG"), (255, 0, 0, 255)),
    "PA": (encode(pa_image(), "TIFF"), (255, 0, 0, 128)),
    "RGB": (encode(Image.new("RGB", (40, 40), (10, 200, 30)), "PNG"), (10, 200, 30, 255)),
    "RGBA": (encode(Image.new("RGBA", (40, 40), (255, 0, 0, 128)), "PNG"), (255, 0, 0, 128)),
    "CMYK jpeg": (encode(CMYK_RED, "JPEG", quality=100), (255, 0, 0, 255)),
    "CMYK tiff": (encode(CMYK_RED, "TIFF"), (255, 0, 0, 255)),
    "I;16": (encode(Image.new("I;16", (40, 40), 40000), "PNG"), (156, 156, 156, 255)),
    "I 16-bit range": (encode(Image.new("I", (40, 40), 40000), "TIFF"), (156, 156, 156, 255)),
    "I 8-bit range": (encode(Image.new("I", (40, 40), 200), "TIFF"), (200, 200, 200, 255)),
    "F unit range": (encode(Image.new("F", (40, 40), 0.5), "TIFF"), (127, 127, 127, 255)),
}


@pytest.mark.parametrize("mode", MODES)
def test_colour_modes_keep_colour_and_alpha(mode):
    data, expected = MODES[mode]
    out = only(data).convert("RGBA")
    assert close(out.getpixel((30, 20)), expected, 3), out.getpixel((30, 20))


def test_palette_transparency_becomes_alpha():
    out = only(MODES["P+transparency"][0]).convert("RGBA")
    assert out.getpixel((4, 20))[3] == 0


def test_alpha_survives_webp_and_is_flattened_on_white_for_jpeg():
    data = MODES["RGBA"][0]
    webp = only(data, formats=("webp",))
    assert webp.mode == "RGBA" and abs(webp.getpixel((10, 10))[3] - 128) <= 2
    jpeg = only(data, formats=("jpeg",))
    assert jpeg.mode == "RGB" and close(jpeg.getpixel((10, 10)), (255, 127, 127), 6)
    grey = only(MODES["LA"][0], formats=("jpeg",))
    assert grey.mode == "L" and abs(grey.getpixel((10, 10)) - 177) <= 4


def test_float_outside_unit_range_is_stretched():
    im = Image.new("F", (40, 40), -10.0)
    im.paste(30.0, (20, 0, 40, 40))
    out = only(encode(im, "TIFF")).convert("L")
    assert (out.getpixel((4, 20)), out.getpixel((30, 20))) == (0, 255)


# --- ICC profiles: converted to sRGB and dropped ---------------------------------------


def test_srgb_profile_is_applied_and_dropped():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.new("RGB", (40, 40), (10, 200, 30)), "JPEG", quality=100, icc_profile=srgb)
    out = only(data)
    assert "icc_profile" not in out.info
    assert close(out.getpixel((10, 10)), (10, 200, 30), 4)


def test_lab_profile_is_converted_to_srgb():
    lab_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    lab_red = Image.new("LAB", (40, 40), (136, 208, 195))  # L*53 a*80 b*67: sRGB red
    out = only(encode(lab_red, "TIFF", icc_profile=lab_profile))
    assert out.mode == "RGB" and "icc_profile" not in out.info
    assert close(out.getpixel((10, 10)), RED, 12), out.getpixel((10, 10))


@pytest.mark.parametrize(
    "icc",
    [ImageCms.ImageCmsProfile(ImageCms.createProfile("XYZ")).tobytes(), b"not a profile"],
    ids=["profile for another colour space", "garbage"],
)
def test_unusable_profiles_leave_pixels_as_srgb(icc):
    data = encode(Image.new("RGB", (40, 40), (10, 200, 30)), "PNG", icc_profile=icc)
    out = only(data)
    assert out.getpixel((10, 10))[:3] == (10, 200, 30) and "icc_profile" not in out.info


# --- animation ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_give_their_first_frame(fmt):
    frames = [Image.new("RGB", (40, 40), c) for c in (RED, BLUE, GREEN)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = imaging.make_thumbnails(data, options())
    assert result.facts.frames == 3
    out = Image.open(io.BytesIO(result.thumbnails[0].data)).convert("RGB")
    assert close(out.getpixel((20, 20)), RED, 8)


# --- rejections: each with its own reason ----------------------------------------------


def gif_header(width: int, height: int) -> bytes:
    """A GIF whose screen and only frame claim ``width`` x ``height``, with no pixel data."""
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x00"
    return b"GIF89a" + screen + frame + b";"


@pytest.mark.parametrize("data", [decompression_bomb(30000, 30000), gif_header(30000, 30000)])
def test_decompression_bomb_is_rejected_from_the_header(data):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert reason_of(data, max_pixels=120_000_000) == "too_many_pixels"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    assert time.perf_counter() - started < 1.0


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_is_ours_below_pillows_bomb_threshold():
    assert reason_of(decompression_bomb(200, 100), max_pixels=19_999) == "too_many_pixels"
    assert reason_of(decompression_bomb(200, 100), max_pixels=5_000) == "too_many_pixels"


def test_empty():
    assert reason_of(b"") == "empty"


def test_too_many_bytes():
    assert reason_of(photo(), max_bytes=100) == "too_many_bytes"
    with pytest.raises(PermanentError, match="too_many_bytes"):
        imaging.check_size(101, 100)
    with pytest.raises(PermanentError, match="empty"):
        imaging.check_size(0, 100)


def test_text_named_jpg_is_not_an_image():
    assert reason_of(b"Just some notes, saved as holiday.jpg\n") == "not_an_image"


def test_truncated_jpeg():
    data = photo(400, 300)
    assert reason_of(data[: len(data) // 2]) == "truncated"


def test_corrupt_png_data():
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    start = data.index(b"IDAT") + 4
    broken = data[:start] + bytes(b ^ 0x55 for b in data[start : start + 20]) + data[start + 20 :]
    assert reason_of(broken) == "corrupt"


@pytest.mark.parametrize(
    "data",
    [
        photo()[:20],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 30,
        b"RIFF\0\0\0\0WEBPVP8 junk",
        b"\0\0\0\x18ftypheic" + b"\0" * 40,
    ],
    ids=["jpeg", "png", "webp", "heic"],
)
def test_known_signature_with_a_broken_header_is_corrupt(data):
    assert reason_of(data) == "corrupt"


@pytest.mark.parametrize(
    "data",
    [encode(Image.new("RGB", (8, 8)), "TGA")],
    ids=["tga"],
)
def test_unsupported_formats(data):
    assert reason_of(data) == "unsupported_format"


# --- cover ----------------------------------------------------------------------------


def _disc_photo(size: tuple[int, int], orientation: int = 1) -> bytes:
    """An upright test card with a black disc of a third of the short side at its centre,
    stored as EXIF ``orientation`` asks: a stretched output shows as an oval disc."""
    upright = quadrants(*size)
    radius = min(size) // 6
    cx, cy = size[0] // 2, size[1] // 2
    ImageDraw.Draw(upright).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), "black")
    transpose = STORED_AS[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def _disc_extent(im: Image.Image) -> tuple[int, int]:
    """Width and height of the dark disc in ``im``."""
    r, g, b = (band.point(lambda v: 255 if v < 60 else 0) for band in im.convert("RGB").split())
    dark = ImageChops.darker(r, ImageChops.darker(g, b))  # dark in every channel: black
    left, top, right, bottom = dark.getbbox() or (0, 0, 0, 0)
    return right - left, bottom - top


@pytest.mark.parametrize(
    ("orientation", "box"),
    [(1, Box(300, 200, "cover")), (6, Box(300, 200, "cover")), (1, Box(256, 256, "cover"))],
)
def test_a_4000x3000_photo_under_cover_is_exactly_the_box_upright_and_unstretched(orientation, box):
    data = _disc_photo((4000, 3000), orientation)
    result = imaging.make_thumbnails(data, options(boxes=(box,), formats=("png",)))
    (thumb,) = result.thumbnails
    out = Image.open(io.BytesIO(thumb.data))
    assert out.size == (thumb.width, thumb.height) == (box.width, box.height)
    assert (result.facts.width, result.facts.height) == (4000, 3000)
    # Upright: the card's colours are where they are on the card (corners, past the disc).
    w, h = out.size
    corners = [
        out.convert("RGB").getpixel(p) for p in ((3, 3), (w - 4, 3), (3, h - 4), (w - 4, h - 4))
    ]
    assert [close(c, e, 40) for c, e in zip(corners, (RED, GREEN, BLUE, WHITE), strict=True)] == [
        True
    ] * 4, corners
    # Unstretched: the disc is round (one uniform scale, 1000 px -> 1000 * scale).
    disc_w, disc_h = _disc_extent(out)
    scale = max(box.width / 4000, box.height / 3000)
    assert abs(disc_w - disc_h) <= 2, (disc_w, disc_h)
    assert abs(disc_w - 1000 * scale) <= 3, (disc_w, scale)


def test_cover_and_inside_of_one_box_are_two_outputs_from_one_decode():
    data = _disc_photo((800, 600))
    boxes = (Box(200, 200), Box(200, 200, "cover"), Box(64, 64, "cover"))
    result = imaging.make_thumbnails(data, options(boxes=boxes, formats=("png",)))
    sizes = {t.box: (t.width, t.height) for t in result.thumbnails}
    assert sizes == {boxes[0]: (200, 150), boxes[1]: (200, 200), boxes[2]: (64, 64)}
    # The placeholder describes the whole image, not a crop.
    assert result.placeholder.width / result.placeholder.height == pytest.approx(4 / 3, abs=0.05)


def test_cover_of_a_source_smaller_than_the_box_is_not_upscaled():
    out = only(_disc_photo((120, 90)), boxes=(Box(256, 128, "cover"),))
    assert out.size == (120, 60)  # the box's 2:1 at the source's width


def test_cover_keeps_alpha():
    im = Image.new("RGBA", (400, 200), (0, 0, 255, 0))
    im.paste((255, 0, 0, 255), (150, 50, 250, 150))
    out = only(encode(im, "PNG"), boxes=(Box(100, 100, "cover"),), formats=("png",))
    assert out.mode == "RGBA" and out.size == (100, 100)
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((50, 50)) == (255, 0, 0, 255)


def test_cover_detail_focus_crops_onto_the_subject():
    im = Image.new("RGB", (800, 200), (120, 170, 220))
    draw = ImageDraw.Draw(im)
    for x in range(620, 780, 6):  # stripes near the right end: the only edges
        draw.line((x, 20, x, 180), fill="black", width=2)
    data = encode(im, "PNG")
    centre = only(data, boxes=(Box(100, 100, "cover"),), formats=("png",))
    detail = only(data, boxes=(Box(100, 100, "cover"),), formats=("png",), cover_focus="detail")
    assert centre.convert("L").getextrema()[0] > 100  # the middle of the sky: no stripes
    assert detail.convert("L").getextrema()[0] < 50  # the stripes


def test_cover_decode_is_refused_by_the_memory_limit_like_inside():
    data = photo(4000, 3000)
    inside = reason_of(data, memory="256Mi", boxes=(Box(4000, 3000),))
    covered = reason_of(data, memory="256Mi", boxes=(Box(4000, 3000, "cover"),))
    assert inside == covered == "too_many_decoded_bytes"


def test_cover_converts_colour_through_the_profile_like_inside():
    data = encode(Image.new("RGB", (300, 200), P3_ORANGE), "PNG", icc_profile=display_p3_profile())
    inside = only(data, boxes=(Box(60, 60),))
    covered = only(data, boxes=(Box(60, 60, "cover"),))
    assert covered.size == (60, 60) and "icc_profile" not in covered.info
    assert covered.getpixel((30, 30)) == inside.getpixel((30, 20)) != P3_ORANGE


def test_encodes_on_threads_and_at_once_give_the_same_bytes(monkeypatch):
    data = photo(800, 600)
    opts = options(boxes=BOXES, formats=("webp", "jpeg"))
    monkeypatch.setattr(imaging.os, "process_cpu_count", lambda: 4)
    threaded = imaging.make_thumbnails(data, opts)
    monkeypatch.setattr(imaging.os, "process_cpu_count", lambda: 1)
    assert imaging.make_thumbnails(data, opts) == threaded
    assert len(threaded.thumbnails) == 6
