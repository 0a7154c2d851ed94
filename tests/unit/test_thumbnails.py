"""Where an object's thumbnails live (image_pipeline.thumbnails); how a run writes, ranks and
removes them is exercised through the stages in test_pipeline.py and test_concurrent_runs.py."""

from __future__ import annotations

import pytest

from image_pipeline import thumbnails
from image_pipeline.formats import MAX_BOX_SIDE, MAX_COVER_SIDE, Box
from image_pipeline.records import image_doc_id


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("n" * 996, "thumbnails/" + "n" * 996 + "/"),  # 11 + 996 + 1 + "99999x99999.webp"
        ("n" * 997, "thumbnails/_long/" + image_doc_id("uploads", "n" * 997) + "/"),
        ("é" * 498, "thumbnails/" + "é" * 498 + "/"),  # counted in bytes, not characters
        ("é" * 499, "thumbnails/_long/" + image_doc_id("uploads", "é" * 499) + "/"),
        # A short name aiming at another object's hashed folder gets a hashed one of its own.
        (
            "_long/" + "0" * 64,
            "thumbnails/_long/" + image_doc_id("uploads", "_long/" + "0" * 64) + "/",
        ),
    ],
)
def test_thumbnail_folder_is_hashed_only_when_a_name_could_exceed_1024_bytes(name, folder):
    assert thumbnails.thumbnail_folder("thumbnails/", "uploads", name) == folder


def test_a_cover_leaf_is_never_longer_than_the_longest_inside_leaf():
    """The hashed-folder rule counts the longest inside leaf only, whatever the sizes."""
    cover = Box(MAX_COVER_SIDE, MAX_COVER_SIDE, "cover").leaf
    assert len(cover) <= len(Box(MAX_BOX_SIDE, MAX_BOX_SIDE).leaf)


def test_names_are_deterministic_per_box_fit_mode_and_format():
    name = thumbnails.thumbnail_name(
        "thumbnails/", "uploads", "a/b.jpg", Box(64, 64, "cover"), "webp"
    )
    assert name == "thumbnails/a/b.jpg/64x64-c.webp"
