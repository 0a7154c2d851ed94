"""The output formats, checked against the Pillow that writes them; boxes and memory sizes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from image_pipeline.formats import FORMATS, OUTPUTS, Box, memory_bytes


def test_every_format_name_has_one_output():
    """The settings parse ``Format`` names, the core encodes ``OUTPUTS``: they must agree."""
    assert tuple(OUTPUTS) == FORMATS
    assert all(name == output.name for name, output in OUTPUTS.items())


def params(writable_only: bool = False) -> list[object]:
    return [
        pytest.param(o, id=o.name) for o in OUTPUTS.values() if o.available() or not writable_only
    ]


@pytest.mark.parametrize("output", params())
def test_pillow_knows_the_format_by_its_name_and_content_type(output):
    Image.init()
    assert output.pillow in Image.SAVE
    assert Image.MIME[output.pillow] == output.content_type


@pytest.mark.parametrize("output", params(writable_only=True))
def test_alpha_is_declared_as_pillow_writes_it(output):
    """An alpha format keeps transparency; the others refuse it (the core flattens first)."""
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    out = io.BytesIO()
    try:
        rgba.save(out, output.pillow, **output.encoder_options(80))
    except OSError:
        assert not output.alpha
    else:
        assert output.alpha
        assert "A" in Image.open(out).getbands()


@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS.values() if o.grey and o.available()], ids=lambda o: o.name
)
def test_grey_formats_store_grey_pixels(output):
    out = io.BytesIO()
    Image.new("L", (8, 8), 77).save(out, output.pillow, **output.encoder_options(80))
    assert Image.open(out).mode == "L"


def test_encoder_options():
    assert OUTPUTS["png"].encoder_options(80) == {}
    assert OUTPUTS["jpeg"].encoder_options(80) == {"quality": 80}
    assert OUTPUTS["webp"].encoder_options(80)["quality"] == 80


def test_a_box_reads_as_width_x_height():
    assert str(Box(512, 384)) == "512x384"


def test_memory_sizes_in_bytes():
    assert memory_bytes("512Mi") == 512 * 1024 * 1024
    assert memory_bytes("2Gi") == 2 * 1024**3
    for bad in ("0Gi", "1GB", "1024", "1.5Gi"):
        with pytest.raises(ValueError, match="is not a size like"):
            memory_bytes(bad)
