"""The environment contract of every function (docs/architecture.md, "Function environment").

``Settings.from_env`` parses it and ``Settings.to_env`` writes it, so the stack and the
functions share one definition. Every problem raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import NamedTuple

FORMATS = ("webp", "jpeg", "png", "avif")
MAX_OBJECT_NAME_BYTES = 1024  # GCS: an object name is at most 1024 bytes of UTF-8
MAX_BOX_SIDE = 99_999  # bounds a thumbnail's leaf name ("WxH.ext") whatever the sizes
MAX_PREFIX_BYTES = 512  # leaves room for the hashed folder of long names
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SIZE = re.compile(r"(\d+)x(\d+)")


class SettingsError(ValueError):
    """A missing or malformed setting; ``variable`` is the environment variable to fix."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Box(NamedTuple):
    """A bounding box a thumbnail must fit in."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def avif_supported() -> bool:
    from PIL import features

    return bool(features.check("avif"))


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated configuration; field ``x`` is the environment variable ``X`` (see ``_ENV``)."""

    project: str
    uploads_bucket: str
    thumbnails_bucket: str
    image_events_topic: str
    images_collection: str = "images"
    dead_letters_collection: str = "dead_letters"
    firestore_database: str = "(default)"
    thumbnail_sizes: tuple[Box, ...] = (Box(128, 128), Box(512, 512), Box(1024, 1024))
    thumbnail_formats: tuple[str, ...] = ("webp",)
    thumbnail_quality: int = 82
    thumbnail_prefix: str = "thumbnails/"
    cache_control: str = "public, max-age=3600"
    max_input_bytes: int = 50 * 1024 * 1024
    max_input_pixels: int = 120_000_000
    include_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    retry_window_seconds: int = 1800
    exif_include_gps: bool = False

    def __post_init__(self) -> None:
        for name in ("project", "uploads_bucket", "thumbnails_bucket", "image_events_topic"):
            if not getattr(self, name):
                raise SettingsError(_ENV[name], "is required")
        for name in ("images_collection", "dead_letters_collection", "firestore_database"):
            if not getattr(self, name) or "/" in getattr(self, name):
                raise SettingsError(_ENV[name], "must be a non-empty name without '/'")
        if self.thumbnails_bucket == self.uploads_bucket:
            raise SettingsError(
                "THUMBNAILS_BUCKET", "must differ from UPLOADS_BUCKET (thumbnails would loop)"
            )
        sizes = tuple(Box(int(w), int(h)) for w, h in self.thumbnail_sizes)
        if not sizes or any(not (1 <= side <= MAX_BOX_SIDE) for box in sizes for side in box):
            raise SettingsError(
                "THUMBNAIL_SIZES", f"needs at least one box, each side 1..{MAX_BOX_SIDE}"
            )
        if len(set(sizes)) != len(sizes):
            raise SettingsError("THUMBNAIL_SIZES", "lists a box twice")
        object.__setattr__(self, "thumbnail_sizes", sizes)
        formats = tuple(self.thumbnail_formats)
        _check_formats(formats)
        object.__setattr__(self, "thumbnail_formats", formats)
        object.__setattr__(self, "include_patterns", tuple(self.include_patterns))
        object.__setattr__(self, "exclude_patterns", tuple(self.exclude_patterns))
        if len(self.thumbnail_prefix.encode()) > MAX_PREFIX_BYTES:
            raise SettingsError("THUMBNAIL_PREFIX", f"must be at most {MAX_PREFIX_BYTES} bytes")
        if not 1 <= self.thumbnail_quality <= 100:
            raise SettingsError("THUMBNAIL_QUALITY", "must be between 1 and 100")
        for name in ("max_input_bytes", "max_input_pixels", "retry_window_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(_ENV[name], "must be a positive integer")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse the environment; an unset variable takes its default, a set one is parsed."""
        values: dict[str, object] = dict.fromkeys(_REQUIRED, "")
        for field in dataclasses.fields(cls):
            raw = environ.get(_ENV[field.name])
            if raw is not None:
                values[field.name] = _parse(field, raw.strip())
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that ``from_env`` turns back into these settings."""
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            env[_ENV[field.name]] = text
        return env


_ENV = {
    f.name: "GOOGLE_CLOUD_PROJECT" if f.name == "project" else f.name.upper()
    for f in dataclasses.fields(Settings)
}
_REQUIRED = [f.name for f in dataclasses.fields(Settings) if f.default is dataclasses.MISSING]


def _check_formats(formats: tuple[str, ...]) -> None:
    if not formats:
        raise SettingsError("THUMBNAIL_FORMATS", "needs at least one format")
    for fmt in formats:
        if fmt not in FORMATS:
            raise SettingsError(
                "THUMBNAIL_FORMATS", f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}"
            )
    if len(set(formats)) != len(formats):
        raise SettingsError("THUMBNAIL_FORMATS", "lists a format twice")
    if "avif" in formats and not avif_supported():
        raise SettingsError(
            "THUMBNAIL_FORMATS", "avif needs a Pillow built with libavif (Pillow >= 11.2 wheels)"
        )


def _parse(field: dataclasses.Field, raw: str) -> object:
    """Turn one variable's text into the field's value, or say what is wrong with it."""
    variable = _ENV[field.name]
    default = field.default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if field.name == "thumbnail_sizes":
        boxes = []
        for item in items:
            match = _SIZE.fullmatch(item)
            if not match:
                raise SettingsError(variable, f"{item!r} is not WIDTHxHEIGHT (e.g. 512x512)")
            boxes.append(Box(int(match[1]), int(match[2])))
        return tuple(boxes)
    if field.name == "thumbnail_formats":
        return tuple(item.lower() for item in items)
    if isinstance(default, tuple):
        return tuple(items)
    if isinstance(default, bool):
        try:
            return _BOOLS[raw.lower()]
        except KeyError:
            raise SettingsError(variable, f"{raw!r} is not true or false") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(variable, f"{raw!r} is not an integer") from None
    return raw
