"""Good images: thumbnails with the right sizes and orientation, a processed doc, one event."""

from __future__ import annotations

import pytest

from infra.local import sample_images

pytestmark = pytest.mark.integration

DOC_FIELDS = {
    "bucket", "name", "generation", "contentType", "size", "status", "width", "height",
    "format", "thumbnails", "updatedAt", "timings", "placeholder",
}  # fmt: skip
THUMB_FIELDS = {"bucket", "name", "width", "height", "contentType", "size"}


def _sizes(harness, name):  # -> {box: (w, h)} from the actual files
    return {
        b.name.rsplit("/", 1)[-1].split(".")[0]: harness.thumbnail_image(b.name).size
        for b in harness.thumbnail_blobs(name)
    }


@pytest.mark.parametrize(
    ("sample", "content_type", "size", "boxes"),
    [
        (
            "photo.jpg",
            "image/jpeg",
            (1600, 1200),
            {"128x128": (128, 96), "512x512": (512, 384), "1024x1024": (1024, 768)},
        ),
        (
            "alpha.png",
            "image/png",
            (600, 400),
            {"128x128": (128, 85), "512x512": (512, 341), "1024x1024": (600, 400)},
        ),
        (
            "rotated.jpg",
            "image/jpeg",
            (600, 800),  # stored 800x600, EXIF orientation 6
            {"128x128": (96, 128), "512x512": (384, 512), "1024x1024": (600, 800)},
        ),
        (
            "iphone.heic",
            "image/heic",
            (900, 1200),  # stored 1200x900, irot + EXIF orientation 6, Display P3
            {"128x128": (96, 128), "512x512": (384, 512), "1024x1024": (768, 1024)},
        ),
    ],
)
def test_image_is_processed(harness, prefix, sample, content_type, size, boxes):
    data = {
        "photo.jpg": sample_images.jpeg,
        "alpha.png": sample_images.png_with_alpha,
        "rotated.jpg": sample_images.exif_rotated_jpeg,
        "iphone.heic": sample_images.iphone_heic,
    }[sample]()
    name = prefix + sample
    generation = harness.upload(name, data, content_type)

    doc = harness.wait_doc(name, lambda d: d.get("status") == "processed")

    assert set(doc) >= DOC_FIELDS, f"missing {DOC_FIELDS - set(doc)}"
    assert doc["generation"] == generation
    assert (doc["width"], doc["height"]) == size
    assert doc["size"] == len(data) and doc["contentType"] == content_type
    assert "error" not in doc or doc["error"] is None
    assert sorted(t["name"] for t in doc["thumbnails"]) == sorted(
        f"thumbnails/{name}/{box}.webp" for box in boxes
    )
    for thumb in doc["thumbnails"]:
        assert set(thumb) >= THUMB_FIELDS
        assert thumb["bucket"] == harness.thumbnails.name
    assert _sizes(harness, name) == boxes
    placeholder = doc["placeholder"]
    assert (placeholder["width"], placeholder["height"]) == boxes["128x128"]
    assert placeholder["blurhash"] and placeholder["color"].startswith("#")

    small = harness.thumbnail_image(f"thumbnails/{name}/512x512.webp")
    assert not small.getexif(), "EXIF must be stripped from thumbnails"
    if sample == "rotated.jpg":
        top, bottom = (
            small.convert("RGB").getpixel((192, 20)),
            small.convert("RGB").getpixel((192, 490)),
        )
        assert top[0] > 150 > top[2], f"top should be red (upright), got {top}"
        assert bottom[2] > 150 > bottom[0], f"bottom should be blue, got {bottom}"
    if sample == "iphone.heic":
        rgb = small.convert("RGB")
        assert doc["format"] == "HEIF" and doc["exif"]["make"] == "Apple"
        assert rgb.getpixel((40, 40))[2] > 200, "the blue block is top-left when upright"
        got = rgb.getpixel((300, 400))  # the P3 orange, converted to sRGB (~ 215, 93, 31)
        assert abs(got[0] - 215) <= 8 and abs(got[1] - 93) <= 8 and got[2] <= 45, got
    if sample == "alpha.png":
        assert "A" in small.getbands(), "alpha must survive into WebP thumbnails"
        assert small.getpixel((500, 200))[3] == 0 and small.getpixel((10, 200))[3] == 255

    # The result event went to the metadata writer once, and not to the failures feed.
    written = harness.settled_calls("write_metadata", name)
    assert [d.event_type for d in written] == ["image.processed"]
    assert harness.pulled("failures", name, wait=0.5) == []
    assert len(harness.settled_calls("make_thumbnail", name)) == 1
