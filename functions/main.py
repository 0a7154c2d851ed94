"""Cloud Functions entry points (2nd gen, CloudEvent signature), one per stage.

Each handler hands the event and the request headers (for the trace id) to
``image_pipeline.pipeline``. The settings are validated at import, so a misconfigured
function fails at start-up naming the variable; cloud clients are created on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

import flask
import functions_framework
from cloudevents.http import CloudEvent

from image_pipeline import pipeline
from image_pipeline.pipeline import Pipeline

PIPELINE = Pipeline.from_env(os.environ)


def _headers() -> Mapping[str, str]:
    if not flask.has_request_context():
        return {}
    # Werkzeug's Headers has the read side of a Mapping (case-insensitive `get`) but not its type.
    return cast(Mapping[str, str], flask.request.headers)


@functions_framework.cloud_event
def make_thumbnail(event: CloudEvent) -> None:
    """Eventarc ``google.cloud.storage.object.v1.finalized`` on the uploads bucket."""
    pipeline.make_thumbnail(PIPELINE, event, _headers())


@functions_framework.cloud_event
def write_metadata(event: CloudEvent) -> None:
    """Push from the metadata-writer subscription (topic image-events)."""
    pipeline.write_metadata(PIPELINE, event, _headers())


@functions_framework.cloud_event
def cleanup(event: CloudEvent) -> None:
    """Push from the cleanup subscription (topic upload-events, OBJECT_DELETE)."""
    pipeline.cleanup(PIPELINE, event, _headers())


@functions_framework.cloud_event
def handle_dead_letter(event: CloudEvent) -> None:
    """Push from the dead-letter-recorder subscription (topic dead-letters)."""
    pipeline.handle_dead_letter(PIPELINE, event, _headers())
