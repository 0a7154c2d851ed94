"""The functions' settings, each defined once (docs/architecture.md, "Function environment").

A field's type picks its parser (``PARSERS``), its metadata (``setting()``) holds its doc line,
environment variable and bounds; ``imaging.Options.from_tunables`` reads the fields the image
core needs. ``Tunables`` are what a deployment chooses (``infra.model.config.DeploymentConfig``
inherits them); ``Settings`` adds the names the stack wires in. Every problem raises
``SettingsError`` naming the variable. Formats, boxes and memory sizes: ``formats``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from image_pipeline.formats import FORMATS, MEMORY, OUTPUTS, Box, Format, memory_bytes

MAX_OBJECT_NAME_BYTES = 1024  # GCS: an object name is at most 1024 bytes of UTF-8
MAX_BOX_SIDE = 99_999  # bounds a thumbnail's leaf name ("WxH.ext") whatever the sizes
MAX_PREFIX_BYTES = 512  # leaves room for the hashed folder of long names
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
_SIZE = re.compile(r"(\d+)x(\d+)")
# An instance holds ~160 MiB before any image (image_pipeline.decode_cost.INSTANCE_RESERVE):
# below this, the decoded-bytes limit would leave almost nothing to decode.
MIN_THUMBNAIL_MEMORY = "256Mi"


class SettingsError(ValueError):
    """A missing or malformed setting; ``variable`` is the environment variable to fix.

    ``setting`` is the field's name and ``problem`` the message without the variable, so the
    deployment config can report the same problem under its own name for the setting.
    """

    def __init__(self, variable: str, problem: str, setting: str = "") -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
        self.setting = setting


def setting(
    default: object = dataclasses.MISSING,
    *,
    doc: str,
    env: str = "",
    bounds: tuple[int, int] | None = None,
    default_doc: str = "",
    factory: Callable[[], object] | None = None,
) -> Any:
    """A settings field: ``doc`` is its line in the generated tables, ``env`` its variable
    (default: the name in upper case), ``bounds`` the inclusive range of an int and
    ``default_doc`` a default computed elsewhere."""
    metadata = {"doc": doc, "env": env, "bounds": bounds, "default_doc": default_doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def env_name(field: dataclasses.Field[Any]) -> str:
    """The environment variable of a ``Settings`` field."""
    return str(field.metadata.get("env") or field.name.upper())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tunables:
    """What a deployment may choose about the functions; defaults give a cheap pipeline."""

    thumbnail_sizes: tuple[Box, ...] = setting(
        (Box(128, 128), Box(512, 512), Box(1024, 1024)),
        doc=f"bounding boxes `WxH`, comma separated, sides 1..{MAX_BOX_SIDE} (never upscaled)",
    )
    thumbnail_formats: tuple[Format, ...] = setting(
        ("webp",), doc=f"output formats, comma separated: {', '.join(FORMATS)}"
    )
    thumbnail_quality: int = setting(82, doc="encoder quality 1..100", bounds=(1, 100))
    cache_control: str = setting("public, max-age=3600", doc="Cache-Control of the thumbnails")
    max_input_bytes: int = setting(
        50 * 1024 * 1024,
        doc="larger objects are rejected before download",
        bounds=(1, 5 * 1024**4),
    )
    max_input_pixels: int = setting(
        120_000_000,
        doc="larger images are rejected before decoding",
        bounds=(1, 10**10),
    )
    max_input_frames: int = setting(
        10_000,
        doc="images with more pages or frames are rejected before decoding (`too_many_frames`)",
        bounds=(1, 1_000_000),
    )
    thumbnail_memory: str = setting(
        "1Gi",
        doc="memory of make_thumbnail (`512Mi`, `2Gi`, ...); images whose decode would not fit "
        "it are rejected before decoding (`too_many_decoded_bytes`)",
    )
    include_patterns: tuple[str, ...] = setting(
        (),
        doc="globs (`*` within a segment, `**` across), comma separated, an object must match "
        "to be processed (empty: all)",
    )
    exclude_patterns: tuple[str, ...] = setting((), doc="globs that exclude an object")
    # Eventarc keeps an event 24 h and retries it at most 600 s apart: the default leaves an
    # hour of retries after the window, the bound at least one (pipeline.given_up).
    retry_window_seconds: int = setting(
        23 * 3600,
        doc="a make_thumbnail delivery that fails when its event is older than this is "
        "recorded as failed (`retry_window_exceeded`) instead of retried; an old event that "
        "succeeds is processed (at most 24 h - 600 s: Eventarc's retention and backoff)",
        bounds=(10, 24 * 3600 - 600),
    )
    exif_include_gps: bool = setting(
        False,
        doc="keep GPS in the metadata doc's EXIF subset (never in thumbnails)",
    )
    animated: bool = setting(
        False,
        doc="animated GIF/WebP inputs give animated WebP thumbnails (frame timing and loop kept; "
        "other formats, and `false`, give the first frame)",
    )

    def __post_init__(self) -> None:
        _normalize(self)
        sizes = self.thumbnail_sizes
        if not sizes or any(not (1 <= side <= MAX_BOX_SIDE) for box in sizes for side in box):
            raise _error("thumbnail_sizes", f"needs at least one box, each side 1..{MAX_BOX_SIDE}")
        if len(set(sizes)) != len(sizes):
            raise _error("thumbnail_sizes", "lists a box twice")
        _check_formats(self.thumbnail_formats)
        if not MEMORY.fullmatch(self.thumbnail_memory):
            raise _error(
                "thumbnail_memory", f"{self.thumbnail_memory!r} is not a size like 512Mi or 2Gi"
            )
        if memory_bytes(self.thumbnail_memory) < memory_bytes(MIN_THUMBNAIL_MEMORY):
            raise _error(
                "thumbnail_memory",
                f"{self.thumbnail_memory!r} is below {MIN_THUMBNAIL_MEMORY}: an instance holds "
                "~160 MiB before it decodes anything",
            )
        check_bounds(self, Tunables)

    def tunables(self) -> dict[str, Any]:
        """These values by field name (what ``Settings.wired`` takes)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Tunables)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings(Tunables):
    """Validated configuration of a function; field ``x`` is the variable ``X`` (``env_name``)."""

    project: str = setting(
        env="GOOGLE_CLOUD_PROJECT",
        doc="project id (set by the stack: 2nd gen Python runtimes do not set it)",
    )
    uploads_bucket: str = setting(doc="the only bucket `make_thumbnail` processes")
    thumbnails_bucket: str = setting(doc="where thumbnails go (must differ from uploads)")
    image_events_topic: str = setting(doc="short topic id for result events")
    images_collection: str = setting("images", doc="Firestore collection of metadata docs")
    dead_letters_collection: str = setting(
        "dead_letters", doc="Firestore collection of dead-letter records"
    )
    firestore_database: str = setting("(default)", doc="Firestore database id")
    thumbnail_prefix: str = setting(
        "thumbnails/", doc=f"prefix of thumbnail object names (at most {MAX_PREFIX_BYTES} bytes)"
    )

    def __post_init__(self) -> None:
        for name in ("project", "uploads_bucket", "thumbnails_bucket", "image_events_topic"):
            if not getattr(self, name):
                raise _error(name, "is required")
        for name in ("images_collection", "dead_letters_collection", "firestore_database"):
            if not getattr(self, name) or "/" in getattr(self, name):
                raise _error(name, "must be a non-empty name without '/'")
        if self.thumbnails_bucket == self.uploads_bucket:
            raise _error(
                "thumbnails_bucket", "must differ from UPLOADS_BUCKET (thumbnails would loop)"
            )
        super().__post_init__()
        if len(self.thumbnail_prefix.encode()) > MAX_PREFIX_BYTES:
            raise _error("thumbnail_prefix", f"must be at most {MAX_PREFIX_BYTES} bytes")

    @classmethod
    def wired(cls, tunables: Tunables, **names: Any) -> Settings:
        """The settings of a deployment: its tunables plus the names the stack wires in."""
        return cls(**tunables.tunables(), **names)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse the environment; an unset variable takes its default, a set one is parsed."""
        values: dict[str, Any] = {}
        for field, kind in fields_and_types(cls):
            variable = env_name(field)
            raw = environ.get(variable)
            if raw is not None:
                values[field.name] = parse(kind, raw.strip(), variable, field.name)
            elif field.default is dataclasses.MISSING:
                values[field.name] = ""  # __post_init__ names it as required
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that ``from_env`` turns back into these settings."""
        return {env_name(f): to_text(getattr(self, f.name)) for f in dataclasses.fields(self)}


# Parsers by field type. Each takes an environment variable's text or a JSON value (from
# cdktf.json) and returns the field's value or raises ValueError saying what is wrong.
Parser = Callable[[object], object]


def _items(raw: object) -> list[object]:
    if isinstance(raw, str):
        return [item.strip() for item in raw.split(",")]
    if isinstance(raw, list | tuple):
        return list(raw)
    raise ValueError(f"{raw!r} is not a comma-separated list")


def _texts(raw: object) -> tuple[str, ...]:
    return tuple(str(item).strip() for item in _items(raw) if str(item).strip())


def _formats(raw: object) -> tuple[str, ...]:
    return tuple(item.lower() for item in _texts(raw))


def _box(item: object) -> Box:
    if isinstance(item, list | tuple) and len(item) == 2:
        item = "x".join(map(str, item))
    match = _SIZE.fullmatch(str(item).strip())
    if not match:
        raise ValueError(f"{item!r} is not WIDTHxHEIGHT (e.g. 512x512)")
    return Box(int(match[1]), int(match[2]))


def _boxes(raw: object) -> tuple[Box, ...]:
    if isinstance(raw, str) and not raw.strip():
        return ()
    return tuple(_box(item) for item in _items(raw))


def _integer(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    try:
        return int(str(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    try:
        return _BOOLS[str(raw).strip().lower()]
    except KeyError:
        raise ValueError(f"{raw!r} is not true or false") from None


PARSERS: Mapping[object, Parser] = {
    str: str,
    int: _integer,
    bool: _boolean,
    tuple[str, ...]: _texts,
    tuple[Format, ...]: _formats,
    tuple[Box, ...]: _boxes,
}


def parse(
    kind: object,
    raw: object,
    variable: str,
    setting: str,
    parsers: Mapping[object, Parser] = PARSERS,
) -> object:
    """``raw`` as a value of type ``kind``, or a ``SettingsError`` naming ``variable``."""
    try:
        parser = parsers[kind]
    except KeyError:
        raise TypeError(f"{setting}: no parser for {kind!r}; add one to PARSERS") from None
    try:
        return parser(raw)
    except ValueError as error:
        raise SettingsError(variable, str(error), setting) from None


def fields_and_types(cls: type) -> tuple[tuple[dataclasses.Field[Any], object], ...]:
    """The dataclass's fields with their resolved types (the keys of ``PARSERS``)."""
    if cls not in _TYPES:
        hints = typing.get_type_hints(cls)
        _TYPES[cls] = tuple((f, hints[f.name]) for f in dataclasses.fields(cls))
    return _TYPES[cls]


_TYPES: dict[type, tuple[tuple[dataclasses.Field[Any], object], ...]] = {}


def to_text(value: object) -> str:
    """The text a parser turns back into ``value`` (the inverse of ``PARSERS``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def check_bounds(values: object, cls: type) -> None:
    """Every int field of ``cls`` with ``bounds`` lies in them (``SettingsError`` otherwise)."""
    for field in dataclasses.fields(cls):
        if field.metadata.get("bounds"):
            low, high = field.metadata["bounds"]
            value = getattr(values, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _error(field.name, f"{value!r} must be a whole number from {low} to {high}")


def _normalize(values: Tunables) -> None:
    """Lists become tuples and size pairs Boxes, so a constructed value equals a parsed one."""
    for field, kind in fields_and_types(Tunables):
        value = getattr(values, field.name)
        if kind == tuple[Box, ...]:
            value = tuple(Box(int(w), int(h)) for w, h in value)
        elif typing.get_origin(kind) is tuple:
            value = tuple(value)
        object.__setattr__(values, field.name, value)


def _error(name: str, problem: str) -> SettingsError:
    field = {f.name: f for f in dataclasses.fields(Settings)}.get(name)
    return SettingsError(env_name(field) if field else name.upper(), problem, name)


def _check_formats(formats: tuple[str, ...]) -> None:
    if not formats:
        raise _error("thumbnail_formats", "needs at least one format")
    for fmt in formats:
        if fmt not in FORMATS:
            raise _error(
                "thumbnail_formats", f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}"
            )
    if len(set(formats)) != len(formats):
        raise _error("thumbnail_formats", "lists a format twice")
    for fmt in formats:
        output = OUTPUTS[fmt]
        if not output.available():
            raise _error("thumbnail_formats", f"{fmt} needs a Pillow built with {output.library}")
