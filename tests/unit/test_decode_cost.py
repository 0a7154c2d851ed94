"""The memory limit: decided from the header, on decoded bytes rather than pixels."""

from __future__ import annotations

import io
import math

import pytest
from imagekit import encode, solid_gif
from PIL import Image

from image_pipeline import decode_cost, imaging
from image_pipeline.errors import PermanentError
from image_pipeline.formats import Box
from image_pipeline.settings import Tunables
from tests.hostile_images import decompression_bomb

GIB = 1 << 30
GRAY16, RGBA, RGB, GRAY = (16, 0), (8, 6), (8, 2), (8, 0)


def header(side: int, kind: tuple[int, int]) -> bytes:
    return decompression_bomb(side, side, *kind)


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def worst_side(kind: tuple[int, int], memory: int = GIB) -> int:
    """The largest square PNG of ``kind`` the memory limit lets through."""
    probe = header(64, kind)
    im = opened(probe)
    per_pixel = (decode_cost.peak_bytes(im, im.size) - decode_cost.FIXED_COST) // 64**2
    budget = decode_cost.budget(memory, len(probe))
    return math.isqrt((budget - decode_cost.FIXED_COST) // per_pixel)


def rejection(data: bytes, memory: str = "1Gi") -> PermanentError:
    opts = imaging.Options.from_tunables(
        Tunables(
            thumbnail_sizes=(Box(1024, 1024),),
            max_input_pixels=10**9,
            thumbnail_memory=memory,
        )
    )
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(data, opts)
    return caught.value


def test_budget_leaves_a_margin_the_instance_and_the_input():
    budget = decode_cost.budget(GIB, 10 << 20)
    assert budget == int(GIB * decode_cost.MEMORY_MARGIN) - decode_cost.INSTANCE_RESERVE - (
        10 << 20
    )
    assert budget < GIB - decode_cost.INSTANCE_RESERVE


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("kind", [GRAY16, RGBA], ids=["16-bit gray", "RGBA"])
def test_worst_case_png_at_the_limit_passes_and_one_row_more_is_refused(kind):
    side = worst_side(kind)
    data = header(side, kind)
    budget = decode_cost.budget(GIB, len(data))
    assert decode_cost.peak_bytes(opened(data), (side, side)) <= budget
    taller = decompression_bomb(side, side + 1, *kind)
    error = rejection(taller)
    assert error.reason == "too_many_decoded_bytes"
    assert f"{side}x{side + 1}" in error.message


def test_at_1_gib_the_pixel_limit_binds_16_bit_gray_and_memory_binds_rgba():
    assert worst_side(GRAY16) ** 2 > 120_000_000 > worst_side(RGBA) ** 2


def test_the_pixel_limit_alone_let_these_pngs_exceed_a_1_gib_function():
    """10950x10950 passes the 120 Mpx limit; its RGBA decode measured 1003 MiB before."""
    assert 10950 * 10950 <= 120_000_000
    assert rejection(header(10950, RGBA)).reason == "too_many_decoded_bytes"
    # 16-bit gray is now scaled in place (5 bytes a pixel measured, not 11): it fits.
    data = header(10950, GRAY16)
    assert decode_cost.peak_bytes(opened(data), (10950, 10950)) <= decode_cost.budget(
        GIB, len(data)
    )


def test_decoded_bytes_not_pixels_decide():
    """Same pixels, different modes: the gray one passes where RGBA does not."""
    side = worst_side(RGBA) + 200
    assert rejection(header(side, RGBA)).reason == "too_many_decoded_bytes"
    gray = header(side, GRAY)
    assert decode_cost.peak_bytes(opened(gray), (side, side)) < decode_cost.budget(GIB, len(gray))
    assert worst_side(GRAY) > worst_side(RGB) > worst_side(RGBA)


def test_the_limit_follows_the_functions_memory():
    assert worst_side(RGBA, 2 * GIB) > worst_side(RGBA, GIB) * 1.4
    assert rejection(header(4000, RGBA), memory="256Mi").reason == "too_many_decoded_bytes"


def test_big_endian_16_bit_costs_more_than_16_bit_png():
    big_endian = encode(Image.new("I;16B", (8, 8)), "TIFF")
    with opened(big_endian) as im:
        assert im.mode == "I;16B"
        tiff = decode_cost.peak_bytes(im, im.size)
    png = decode_cost.peak_bytes(opened(header(8, GRAY16)), (8, 8))
    assert tiff > png


def test_transparency_and_decoder_buffers_are_counted():
    plain = encode(Image.new("P", (32, 32)), "PNG")
    transparent = encode(Image.new("P", (32, 32)), "PNG", transparency=0)
    webp = encode(Image.new("RGB", (32, 32)), "WEBP")
    png = encode(Image.new("RGB", (32, 32)), "PNG")
    cost = {k: decode_cost.peak_bytes(opened(v), (32, 32)) for k, v in locals().items()}
    assert cost["transparent"] > cost["plain"]
    assert cost["webp"] > cost["png"]


def test_a_progressive_jpeg_pays_for_its_full_size_coefficients():
    image = Image.new("RGB", (2048, 2048))
    baseline, progressive = encode(image, "JPEG"), encode(image, "JPEG", progressive=True)
    costs = []
    for data in (baseline, progressive):
        im = opened(data)
        im.draft(None, (256, 256))  # decoded at 1/8 scale either way
        assert im.size == (256, 256)
        costs.append(decode_cost.peak_bytes(im, (2048, 2048)))
    # 4:2:0: 1.5 samples a pixel, 2 bytes each, at the full 2048x2048
    assert costs[1] - costs[0] >= 2048 * 2048 * 3


def test_jpegs_are_judged_at_their_reduced_decode_size():
    """A 100 Mpx baseline JPEG decodes at 1/8 scale: it fits a 512 MiB function."""
    data = encode(Image.new("L", (8, 8)), "JPEG")
    im = opened(data)
    im._size = (11600, 8700)  # what the header of the big photo says
    full = im.size
    im.draft(None, (1024, 768))
    assert decode_cost.peak_bytes(im, full) < decode_cost.budget(512 << 20, 27 << 20)


def test_an_animation_is_charged_for_the_frames_it_holds():
    """Animated WebP output keeps every frame of every box until encoded: 20 frames of
    1200x1200 hold ~106 MB of thumbnails, more than a 256 MiB function leaves; the first
    frame alone (a still) is cheap."""
    gif = solid_gif([(i * 12, 0, 0) for i in range(20)], (1200, 1200))

    def options(animated: bool) -> imaging.Options:
        return imaging.Options.from_tunables(Tunables(thumbnail_memory="256Mi", animated=animated))

    still = imaging.make_thumbnails(gif, options(animated=False))
    assert still.facts.frames == 20
    with pytest.raises(PermanentError) as caught:
        imaging.make_thumbnails(gif, options(animated=True))
    assert caught.value.reason == "too_many_decoded_bytes"
