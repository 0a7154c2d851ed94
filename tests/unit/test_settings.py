"""The environment contract: parsing, defaults, round trip, errors naming the variable."""

from __future__ import annotations

import pytest

from image_pipeline.formats import Box, OutputFormat, memory_bytes
from image_pipeline.settings import Settings, SettingsError

REQUIRED = {
    "GOOGLE_CLOUD_PROJECT": "p",
    "UPLOADS_BUCKET": "uploads",
    "THUMBNAILS_BUCKET": "thumbs",
    "IMAGE_EVENTS_TOPIC": "image-events",
}


def test_defaults_match_the_contract():
    s = Settings.from_env(REQUIRED)
    assert s.thumbnail_sizes == (Box(128, 128), Box(512, 512), Box(1024, 1024))
    assert s.thumbnail_formats == ("webp",)
    assert (s.thumbnail_quality, s.thumbnail_prefix) == (82, "thumbnails/")
    assert (s.max_input_bytes, s.max_input_pixels) == (52428800, 120000000)
    assert (s.images_collection, s.dead_letters_collection) == ("images", "dead_letters")
    assert (s.firestore_database, s.retry_window_seconds) == ("(default)", 82800)
    assert (s.include_patterns, s.exclude_patterns, s.exif_include_gps) == ((), (), False)
    assert s.cache_control == "public, max-age=3600"


def test_parses_every_variable_and_round_trips():
    env = REQUIRED | {
        "IMAGES_COLLECTION": "imgs",
        "DEAD_LETTERS_COLLECTION": "dl",
        "FIRESTORE_DATABASE": "db",
        "THUMBNAIL_SIZES": " 200x100, 64x64 ",
        "THUMBNAIL_FORMATS": "JPEG,png",
        "THUMBNAIL_QUALITY": "90",
        "THUMBNAIL_PREFIX": "",
        "CACHE_CONTROL": "no-store",
        "MAX_INPUT_BYTES": "1000",
        "MAX_INPUT_PIXELS": "2000",
        "INCLUDE_PATTERNS": "photos/**,*.jpg",
        "EXCLUDE_PATTERNS": "**/private/**",
        "RETRY_WINDOW_SECONDS": "60",
        "EXIF_INCLUDE_GPS": "true",
    }
    s = Settings.from_env(env)
    assert s.thumbnail_sizes == (Box(200, 100), Box(64, 64))
    assert s.thumbnail_formats == ("jpeg", "png")
    assert s.thumbnail_prefix == ""
    assert s.include_patterns == ("photos/**", "*.jpg")
    assert s.exif_include_gps is True
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(Settings.from_env(REQUIRED).to_env()) == Settings.from_env(REQUIRED)


def test_constructed_settings_write_the_environment():
    s = Settings(project="p", uploads_bucket="u", thumbnails_bucket="t", image_events_topic="x")
    env = s.to_env()
    assert env["GOOGLE_CLOUD_PROJECT"] == "p"
    assert env["THUMBNAIL_SIZES"] == "128x128,512x512,1024x1024"
    assert env["EXIF_INCLUDE_GPS"] == "false"
    assert set(env) >= set(REQUIRED)


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_missing_required_variable_is_named(variable):
    env = {k: v for k, v in REQUIRED.items() if k != variable}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert variable in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("THUMBNAIL_SIZES", "128"),
        ("THUMBNAIL_SIZES", "0x10"),
        ("THUMBNAIL_SIZES", ""),
        ("THUMBNAIL_SIZES", "64x64,64x64"),
        ("THUMBNAIL_SIZES", "100000x64"),
        ("THUMBNAIL_FORMATS", "gif"),
        ("THUMBNAIL_FORMATS", "webp,webp"),
        ("THUMBNAIL_FORMATS", ""),
        ("THUMBNAIL_QUALITY", "0"),
        ("THUMBNAIL_QUALITY", "high"),
        ("MAX_INPUT_BYTES", "-1"),
        ("MAX_INPUT_PIXELS", "lots"),
        ("MAX_INPUT_FRAMES", "0"),
        ("THUMBNAIL_MEMORY", "1GB"),
        ("THUMBNAIL_MEMORY", "1024"),
        ("THUMBNAIL_MEMORY", "128Mi"),
        ("RETRY_WINDOW_SECONDS", "0"),
        ("RETRY_WINDOW_SECONDS", "85801"),
        ("EXIF_INCLUDE_GPS", "maybe"),
        ("IMAGES_COLLECTION", "a/b"),
        ("THUMBNAILS_BUCKET", "uploads"),
        ("THUMBNAIL_PREFIX", "ü" * 257),
    ],
)
def test_malformed_variable_is_named(variable, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(REQUIRED | {variable: value})
    assert caught.value.variable == variable


def test_avif_needs_pillow_support(monkeypatch):
    monkeypatch.setattr(OutputFormat, "available", lambda self: self.name != "avif")
    with pytest.raises(SettingsError, match=r"THUMBNAIL_FORMATS: avif needs .*libavif"):
        Settings.from_env(REQUIRED | {"THUMBNAIL_FORMATS": "webp,avif"})
    monkeypatch.setattr(OutputFormat, "available", lambda self: True)
    assert Settings.from_env(REQUIRED | {"THUMBNAIL_FORMATS": "avif"}).thumbnail_formats == (
        "avif",
    )


def test_the_smallest_thumbnail_memory_still_leaves_room_to_decode():
    from image_pipeline import decode_cost
    from image_pipeline.settings import MIN_THUMBNAIL_MEMORY

    budget = decode_cost.budget(memory_bytes(MIN_THUMBNAIL_MEMORY), 0)
    assert budget > decode_cost.FIXED_COST + 32 * 1024 * 1024  # a 12 Mpx gray PNG, at least
