"""Cloud Functions entry points (2nd gen, CloudEvent signature), one per stage.

Each handler hands the event and the request headers (for the trace id) to
``image_pipeline.pipeline``. The settings are validated at import, so a misconfigured
function fails at start-up naming the variable; cloud clients are created on first use.
What each class of error answers, and why: docs/architecture.md, "Entry points".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import cast

import flask
import functions_framework
from cloudevents.http import CloudEvent
from werkzeug.exceptions import RequestEntityTooLarge

from image_pipeline import events, pipeline
from image_pipeline.errors import MalformedEvent
from image_pipeline.logs import Logger
from image_pipeline.pipeline import Pipeline

PIPELINE = Pipeline.from_env(os.environ)


def _malformed(target: str, exc: MalformedEvent) -> tuple[str, int]:
    """A malformed storage event is acknowledged (a retry cannot fix it); a malformed push is
    refused with 400, into the dead-letter topic (docs/architecture.md, "Entry points")."""
    if target == "make_thumbnail":
        Logger(stage=target).error("malformed storage event; acknowledged", error=str(exc))
        return "malformed event; acknowledged", 200
    Logger(stage=target).error("malformed message; refused, to be dead-lettered", error=str(exc))
    return f"malformed message: {exc}", 400


def _check_body() -> tuple[str, int] | None:
    """Before functions-framework parses the body (it does, to build the CloudEvent): the
    size and nesting limits, on the raw bytes. Werkzeug stops reading at MAX_CONTENT_LENGTH."""
    app = flask.current_app
    try:
        events.check_json_limits(flask.request.get_data(cache=True))
    except RequestEntityTooLarge:
        return _malformed(app.name, MalformedEvent(f"body over {events.MAX_BODY_BYTES} bytes"))
    except MalformedEvent as exc:
        return _malformed(app.name, exc)
    return None


if flask.has_app_context():  # functions-framework runs this module inside its app's context
    _app = flask.current_app
    _app.config["MAX_CONTENT_LENGTH"] = events.MAX_BODY_BYTES
    _app.before_request(_check_body)


Stage = Callable[[Pipeline, CloudEvent, Mapping[str, str]], None]


def _run(stage: Stage, event: CloudEvent) -> None:
    # Werkzeug's Headers has the read side of a Mapping (case-insensitive `get`) but not its type.
    headers = cast(Mapping[str, str], flask.request.headers)
    try:
        stage(PIPELINE, event, headers)
    except MalformedEvent as exc:
        flask.abort(400, description=f"malformed message: {exc}")


@functions_framework.cloud_event
def make_thumbnail(event: CloudEvent) -> None:
    """Eventarc ``google.cloud.storage.object.v1.finalized`` on the uploads bucket."""
    _run(pipeline.make_thumbnail, event)


@functions_framework.cloud_event
def write_metadata(event: CloudEvent) -> None:
    """Push from the metadata-writer subscription (topic image-events)."""
    _run(pipeline.write_metadata, event)


@functions_framework.cloud_event
def cleanup(event: CloudEvent) -> None:
    """Push from the cleanup subscription (topic upload-events, OBJECT_DELETE)."""
    _run(pipeline.cleanup, event)


@functions_framework.cloud_event
def handle_dead_letter(event: CloudEvent) -> None:
    """Push from the dead-letter-recorder subscription (topic dead-letters)."""
    _run(pipeline.handle_dead_letter, event)
