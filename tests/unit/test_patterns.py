"""Include/exclude globs."""

from __future__ import annotations

import pytest

from image_pipeline.patterns import is_selected, matches_any


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*.jpg", "a.jpg", True),
        ("*.jpg", "dir/a.jpg", False),  # * stays within a segment
        ("**/*.jpg", "a.jpg", True),  # **/ may match no segment
        ("**/*.jpg", "x/y/z/a.jpg", True),
        ("photos/**", "photos/2024/a.png", True),
        ("photos/**", "other/a.png", False),
        ("a/**/b.png", "a/b.png", True),
        ("a/**/b.png", "a/x/y/b.png", True),
        ("?.png", "a.png", True),
        ("?.png", "ab.png", False),
        ("[x].png", "[x].png", True),  # no character classes: brackets are literal
        ("a+b (1).jpg", "a+b (1).jpg", True),
        ("*.JPG", "a.jpg", False),  # case matters, as in GCS
    ],
)
def test_glob(pattern, name, expected):
    assert matches_any(name, [pattern]) is expected


def test_selection():
    assert is_selected("anything", [], [])
    assert is_selected("in/a.jpg", ["in/**"], ["**/*.tmp"])
    assert not is_selected("in/a.tmp", ["in/**"], ["**/*.tmp"])
    assert not is_selected("out/a.jpg", ["in/**"], [])
