"""The functions' settings, each defined once (docs/architecture.md, "Function environment").

A field's type picks its parser (``PARSERS``), its metadata (``setting()``) holds its doc line,
environment variable and bounds. ``Tunables`` are what a deployment chooses (inherited by
``infra.model.config.DeploymentConfig``); ``Settings`` adds the names the stack wires in.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from image_pipeline import cover, output_rules, passthrough
from image_pipeline.formats import (
    FORMATS,
    MAX_BOX_SIDE,
    MAX_COVER_SIDE,
    Box,
    Format,
    list_items,
    memory_bytes,
    memory_problem,
    parse_formats,
    parse_sizes,
)
from image_pipeline.output_rules import Outputs, Rules, parse_rules

MAX_PREFIX_BYTES = 512  # leaves room for the hashed folder of long names
MAX_METADATA_KEYS = 64
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
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
    (default: the name in upper case), ``bounds`` the inclusive range of an int,
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
        doc=f"sizes, comma separated: `WxH` fits inside the box (sides 1..{MAX_BOX_SIDE}), "
        f"`WxH:cover` fills it exactly and crops (sides 1..{MAX_COVER_SIDE}); never upscaled",
    )
    thumbnail_formats: tuple[Format, ...] = setting(
        ("webp",), doc=f"output formats, comma separated: {', '.join(FORMATS)}"
    )
    thumbnail_quality: int = setting(82, doc="encoder quality 1..100", bounds=(1, 100))
    cache_control: str = setting("public, max-age=3600", doc="Cache-Control of the thumbnails")
    cover_focus: str = setting(
        "centre",
        doc="where a `:cover` size crops: `centre`, or `detail` (the window with the most "
        "edge energy)",
    )
    # setting() returns a dataclasses.field; the default is a fresh (frozen) Rules.
    output_rules: Rules = setting(  # noqa: RUF009
        factory=Rules,
        doc="ordered rules, each `{name, include, exclude, sizes, formats}`: the first whose "
        "globs select an object gives its sizes and formats (no rule: `thumbnail_sizes` x "
        "`thumbnail_formats`); JSON in the environment; docs/outputs.md",
    )
    metadata_keys: tuple[str, ...] = setting(
        (),
        doc="custom metadata keys copied from an original to its thumbnails and its doc's "
        "`metadata` (none by default)",
    )
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
    # hour of retries after the window, the bound at least one (pipeline's retry guard).
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
    # The bucket's lifecycle rule, and what `cleanup` reads to tell its deletes from others.
    uploads_lifecycle_days: int = setting(
        0,
        doc="delete originals after N days (0: keep); their thumbnails and docs stay, and the "
        "doc records that the original expired. A person's delete of an original that old "
        "keeps them too (`scripts/erase` removes them); prefer `uploads_storage_classes`",
        bounds=(0, 36500),
    )

    def __post_init__(self) -> None:
        _normalize(self)
        for name, check in (("thumbnail_sizes", parse_sizes), ("thumbnail_formats", parse_formats)):
            try:
                object.__setattr__(self, name, check(getattr(self, name)))
            except ValueError as exc:
                raise _error(name, str(exc)) from None
            if not getattr(self, name):
                raise _error(name, "needs at least one entry")
        if self.cover_focus not in cover.FOCI:
            raise _error(
                "cover_focus", f"{self.cover_focus!r}: choose from {', '.join(cover.FOCI)}"
            )
        try:
            rules = parse_rules(self.output_rules)
        except ValueError as exc:
            raise _error("output_rules", str(exc)) from None
        resolved = rules.resolved(self.thumbnail_sizes, self.thumbnail_formats)
        object.__setattr__(self, "output_rules", resolved)
        _check_metadata_keys(self.metadata_keys)
        if problem := memory_problem(self.thumbnail_memory):
            raise _error("thumbnail_memory", problem)
        if passthrough.CONTROL_CHARACTERS.search(self.cache_control):
            raise _error("cache_control", "a header value cannot hold control characters")
        if memory_bytes(self.thumbnail_memory) < memory_bytes(MIN_THUMBNAIL_MEMORY):
            raise _error(
                "thumbnail_memory",
                f"{self.thumbnail_memory!r} is below {MIN_THUMBNAIL_MEMORY}: an instance holds "
                "~160 MiB before it decodes anything",
            )
        check_bounds(self, Tunables)


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
        return cls(
            **{f.name: getattr(tunables, f.name) for f in dataclasses.fields(Tunables)}, **names
        )

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

    @functools.cached_property
    def outputs(self) -> OutputSettings:
        """The settings make_thumbnail makes an object's outputs by (same names as here)."""
        names = (f.name for f in dataclasses.fields(OutputSettings))
        return OutputSettings(**{name: getattr(self, name) for name in names})


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputSettings:
    """Every setting that shapes what make_thumbnail makes of an object (a thumbnail's bytes,
    name or metadata, a field of the result event and the doc), and nothing else. What makes
    outputs reads them from here and ``fingerprint`` digests every field, so a setting is in
    the fingerprint by construction (docs/outputs.md, "Regenerating after a rules change").

    Left out: what decides *whether* an object is processed (patterns, limits). Any backfill
    re-processes a failed doc; with a limit in it, an image now over the limit would stay
    stale for ever (a ``failed`` result never replaces the ``processed`` doc).
    """

    thumbnails_bucket: str
    thumbnail_prefix: str
    thumbnail_sizes: tuple[Box, ...]
    thumbnail_formats: tuple[Format, ...]
    output_rules: Rules
    thumbnail_quality: int
    cover_focus: str
    animated: bool
    exif_include_gps: bool
    cache_control: str
    metadata_keys: tuple[str, ...]

    def outputs_for(self, object_name: str) -> Outputs:
        """The sizes and formats an object gets, and the rule that chose them."""
        return output_rules.outputs_for(
            object_name, self.output_rules, self.thumbnail_sizes, self.thumbnail_formats
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """16 hex digits of a SHA-256 over every field's text form: every doc and thumbnail
        records it, and ``scripts/backfill --stale`` re-processes what was made under another."""
        parts = {f.name: to_text(getattr(self, f.name)) for f in dataclasses.fields(self)}
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Parsers by field type. Each takes an environment variable's text or a JSON value (from
# cdktf.json) and returns the field's value or raises ValueError saying what is wrong.
Parser = Callable[[object], object]


def _texts(raw: object) -> tuple[str, ...]:
    items = list_items(raw)
    for item in items:
        if not isinstance(item, str):  # [null] would become the text "None"
            raise ValueError(f"{item!r} in {raw!r} is not text")
    return tuple(text for item in items if (text := str(item).strip()))


def _integer(raw: object) -> int:
    try:  # str() first: JSON true is no integer, as the text "True" is not
        return int(str(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def _boolean(raw: object) -> bool:
    try:
        return _BOOLS[str(raw).strip().lower()]
    except KeyError:
        raise ValueError(f"{raw!r} is not true or false") from None


PARSERS: Mapping[object, Parser] = {
    str: str,
    int: _integer,
    bool: _boolean,
    tuple[str, ...]: _texts,
    tuple[Format, ...]: parse_formats,
    tuple[Box, ...]: parse_sizes,
    Rules: parse_rules,
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
    """Lists become tuples, so a constructed value equals a parsed one."""
    for field, kind in fields_and_types(Tunables):
        if typing.get_origin(kind) is tuple:
            object.__setattr__(values, field.name, tuple(getattr(values, field.name)))


def _error(name: str, problem: str) -> SettingsError:
    field = {f.name: f for f in dataclasses.fields(Settings)}.get(name)
    return SettingsError(env_name(field) if field else name.upper(), problem, name)


def _check_metadata_keys(keys: tuple[str, ...]) -> None:
    """Keys the pipeline writes itself cannot be copied over; the count and each key's size
    are bounded (Cloud Storage: 8 KiB of custom metadata per object, keys included)."""
    if len(keys) > MAX_METADATA_KEYS:
        raise _error("metadata_keys", f"{len(keys)} keys; at most {MAX_METADATA_KEYS}")
    for key in keys:
        if key in passthrough.PIPELINE_KEYS:
            raise _error("metadata_keys", f"{key!r} is the pipeline's own key on thumbnails")
        if len(key.encode()) > 1024:
            raise _error("metadata_keys", f"{key[:40]!r}... is over 1024 bytes")
        # Firestore reserves field names of this form (https://cloud.google.com/firestore/quotas).
        if key.startswith("__") and key.endswith("__"):
            raise _error("metadata_keys", f"{key!r}: Firestore reserves names like __x__")
    if len(set(keys)) != len(keys):
        raise _error("metadata_keys", "lists a key twice")
