"""HEIF/HEIC input: iPhone-style photos come out upright, in sRGB, from the primary image.

The HEICs are encoded here with pillow-heif (x265); the core decodes them with pi-heif.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import pillow_heif
import pytest
from imagekit import (
    BLUE,
    FUNCTIONS_MAIN,
    GREEN,
    RED,
    WHITE,
    close,
    encode,
    quadrant_colours,
    quadrants,
)
from PIL import Image, ImageCms

from image_pipeline import heif, icc, imaging
from image_pipeline.errors import PermanentError
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from infra.local import sample_images

OPTIONS = imaging.Options.from_tunables(
    Tunables(thumbnail_sizes=(Box(64, 64),), thumbnail_formats=("png",))
)


def heic(*images: Image.Image, primary: int = 0, **params: object) -> bytes:
    """One HEIF file holding ``images`` (top-level items), ``primary`` marked primary."""
    container = pillow_heif.from_pillow(images[0])
    for extra in images[1:]:
        container.add_from_pillow(extra)
    for index, item in enumerate(container):
        item.info["primary"] = index == primary
    out = io.BytesIO()
    container.save(out, format="HEIF", quality=95, chroma=444, **params)
    return out.getvalue()


def thumbnail(data: bytes) -> tuple[imaging.Result, Image.Image]:
    result = imaging.make_thumbnails(data, OPTIONS)
    return result, Image.open(io.BytesIO(result.thumbnails[0].data))


def test_orientation_6_comes_out_portrait_and_upright():
    upright = quadrants(60, 120)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = heic(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    assert b"irot" in data  # stored landscape, rotation in the container as iPhones do
    result, out = thumbnail(data)
    assert (result.facts.width, result.facts.height, result.facts.format) == (60, 120, "HEIF")
    assert out.size == (32, 64)
    tl, tr, bl, br = quadrant_colours(out)
    assert close(tl, RED, 40) and close(tr, GREEN, 40), (tl, tr)
    assert close(bl, BLUE, 40) and close(br, WHITE, 40), (bl, br)


def test_iphone_sample_is_portrait_with_blue_top_left():
    result, out = thumbnail(sample_images.iphone_heic(400, 300))
    assert (result.facts.width, result.facts.height) == (300, 400)
    assert result.facts.exif == {"make": "Apple", "model": "iPhone 15 Pro"}
    assert out.size == (48, 64)
    assert close(out.convert("RGB").getpixel((6, 6)), sample_images.BLUE, 20)


def test_display_p3_heic_thumbnail_is_srgb():
    p3 = sample_images.display_p3_profile()
    data = heic(Image.new("RGB", (64, 48), sample_images.P3_ORANGE), icc_profile=p3)
    _, out = thumbnail(data)
    assert "icc_profile" not in out.info
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    swatch = Image.new("RGB", (1, 1), sample_images.P3_ORANGE)
    expected = ImageCms.profileToProfile(
        swatch, ImageCms.ImageCmsProfile(io.BytesIO(p3)), srgb
    ).getpixel((0, 0))
    got = out.convert("RGB").getpixel((32, 24))
    assert not close(expected, sample_images.P3_ORANGE, 8)  # the conversion is visible...
    assert close(got, expected, 6), (got, expected)  # ...and it was made


def p3_to_srgb(colour: tuple[int, int, int]) -> tuple[int, ...]:
    """``colour`` in Display P3 converted to sRGB through the published P3 profile."""
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(sample_images.display_p3_profile()))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    swatch = Image.new("RGB", (1, 1), colour)
    return ImageCms.profileToProfile(swatch, p3, srgb).getpixel((0, 0))


def nclx(primaries: int, transfer: int = 13) -> dict[str, int]:
    """pillow-heif's encoder options for an ``nclx`` colour box (H.273 code points)."""
    return {
        "color_primaries": primaries,
        "transfer_characteristics": transfer,
        "matrix_coefficients": 6,
        "full_range_flag": 1,
    }


def test_nclx_display_p3_heic_thumbnail_is_srgb():
    data = heic(Image.new("RGB", (64, 48), sample_images.P3_ORANGE), **nclx(12))
    assert b"nclx" in data and b"prof" not in data  # colour by code points, no ICC profile
    _, out = thumbnail(data)
    assert "icc_profile" not in out.info
    expected = p3_to_srgb(sample_images.P3_ORANGE)
    got = out.convert("RGB").getpixel((32, 24))
    assert not close(expected, sample_images.P3_ORANGE, 8)  # the conversion is visible...
    assert close(got, expected, 6), (got, expected)  # ...and it was made


@pytest.mark.parametrize("primaries", [1, 2, 10], ids=["bt709", "unspecified", "xyz"])
def test_nclx_srgb_or_unknown_primaries_are_kept(primaries):
    data = heic(Image.new("RGB", (64, 48), sample_images.P3_ORANGE), **nclx(primaries))
    _, out = thumbnail(data)
    got = out.convert("RGB").getpixel((32, 24))
    assert close(got, sample_images.P3_ORANGE, 6), got


def test_nclx_bt2020_is_converted_further_than_display_p3():
    """BT.2020's primaries are wider than P3's: the same values are more saturated in sRGB;
    its white is D65, so neutral grey stays grey."""
    image = Image.new("RGB", (64, 48), (128, 128, 128))
    image.paste(sample_images.P3_ORANGE, (0, 0, 32, 48))
    _, out = thumbnail(heic(image, **nclx(9)))
    orange, grey = out.convert("RGB").getpixel((8, 24)), out.convert("RGB").getpixel((56, 24))
    p3 = p3_to_srgb(sample_images.P3_ORANGE)
    assert orange[0] > p3[0] + 5 and orange[1] < p3[1] - 5, (orange, p3)
    assert close(grey, (128, 128, 128), 3), grey


def test_icc_colorants_from_chromaticities_match_the_published_display_p3():
    built = icc.colorants((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290))
    for ours, published in zip(built, sample_images.DISPLAY_P3_XYZ, strict=True):
        assert all(abs(a - b) < 5e-4 for a, b in zip(ours, published, strict=True)), built


def generic_brand_avif() -> bytes:
    """An AV1-coded image in a HEIF that names only the generic brands (``mif1``, ``miaf``),
    as some encoders write AVIF: told apart from HEVC by its primary item's type only."""
    data = encode(Image.new("RGB", (64, 48), RED), "AVIF")
    ftyp = int.from_bytes(data[:4], "big")
    return b"\0\0\0\x18ftypmif1\0\0\0\0mif1miaf" + data[ftyp:]


def test_heif_with_an_undecodable_codec_is_unsupported_format():
    data = generic_brand_avif()
    assert heif.is_heif(data)
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, OPTIONS)
    assert caught.value.reason == "unsupported_format"
    assert "AV1" in str(caught.value) and "'av01'" in str(caught.value)


def test_hevc_heif_cut_inside_its_boxes_stays_corrupt():
    data = heic(Image.new("RGB", (64, 48), RED))
    assert heif.undecodable_codec(data) is None  # hvc1: ours to decode
    for cut in (60, 200, len(data) - 20):
        assert heif.undecodable_codec(data[:cut]) is None
        with pytest.raises(PermanentError) as caught:
            imaging.make_thumbnails(data[:cut], OPTIONS)
        assert caught.value.reason in ("corrupt", "truncated"), cut


def test_libheif_missing_decoder_is_unsupported_format_and_other_errors_are_not():
    missing = RuntimeError("Support for this compression format has not been built in")
    failure = heif.decode_failure(missing)
    assert failure is not None and failure.reason == "unsupported_format"
    assert heif.decode_failure(RuntimeError("something else")) is None


def test_multi_image_heif_gives_the_primary_image():
    data = heic(Image.new("RGB", (64, 48), RED), Image.new("RGB", (40, 80), BLUE), primary=1)
    result, out = thumbnail(data)
    assert (result.facts.width, result.facts.height) == (40, 80)
    assert close(out.convert("RGB").getpixel((10, 10)), BLUE, 12)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_applies_before_decoding():
    data = heic(Image.new("RGB", (200, 100), RED))
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, dataclasses.replace(OPTIONS, max_pixels=19_999))
    assert caught.value.reason == "too_many_pixels"


@pytest.mark.parametrize(
    "cut", [lambda d: d[: len(d) // 2], lambda d: d[:40] + bytes(200)], ids=["truncated", "zeroed"]
)
def test_broken_heif_is_corrupt(cut):
    data = heic(Image.new("RGB", (64, 48), RED))
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(cut(data), OPTIONS)
    assert caught.value.reason == "corrupt"


@pytest.mark.parametrize(
    ("ftyp", "expected"),
    [
        (b"heic" + bytes(4) + b"mif1heic", True),
        (b"mif1" + bytes(4) + b"mif1heix", True),  # brand only among the compatible ones
        (b"msf1" + bytes(4) + b"msf1hevc", True),
        (b"mif1" + bytes(4) + b"mif1", True),  # generic HEIF
        (b"avif" + bytes(4) + b"mif1avif", False),
        (b"mif1" + bytes(4) + b"mif1avif", False),
        (b"isom" + bytes(4) + b"isommp41", False),  # an MP4
    ],
)
def test_heif_is_told_by_its_brands(ftyp, expected):
    box = (8 + len(ftyp)).to_bytes(4, "big") + b"ftyp" + ftyp
    assert heif.is_heif(box + bytes(32)) is expected


def test_importing_the_core_does_not_load_libheif():
    code = (
        "import sys; from image_pipeline import imaging; "
        "assert 'pi_heif' not in sys.modules, 'pi_heif imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=FUNCTIONS_MAIN.parent)
