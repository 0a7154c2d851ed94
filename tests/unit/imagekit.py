"""Builders for test inputs: images as bytes, storage CloudEvents and push bodies."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent
from PIL import Image

FUNCTIONS_MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def solid_gif(colours: Sequence[tuple[int, int, int]], size: tuple[int, int]) -> bytes:
    """An animated GIF, one solid frame per colour, 40 ms each. The frames are built on one
    palette: the GIF writer would quantize RGB frames, about 0.1 s for each at 1200x1200."""
    palette = [channel for colour in colours for channel in colour]
    frames = [Image.new("P", size, index) for index in range(len(colours))]
    for frame in frames:
        frame.putpalette(palette)
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)


def photo(width: int = 400, height: int = 300, fmt: str = "JPEG", **params: Any) -> bytes:
    """A smooth RGB image with some texture."""
    r = Image.linear_gradient("L").resize((width, height))
    g = Image.radial_gradient("L").resize((width, height))
    b = Image.effect_noise((width, height), 30)
    return encode(Image.merge("RGB", (r, g, b)), fmt, **params)


def quadrants(width: int, height: int) -> Image.Image:
    """Upright test card: red top-left, green top-right, blue bottom-left, white bottom-right."""
    im = Image.new("RGB", (width, height), WHITE)
    hw, hh = width // 2, height // 2
    im.paste(RED, (0, 0, hw, hh))
    im.paste(GREEN, (hw, 0, width, hh))
    im.paste(BLUE, (0, hh, hw, height))
    return im


def quadrant_colours(im: Image.Image) -> tuple[tuple[int, ...], ...]:
    """The colour at the centre of each quadrant: TL, TR, BL, BR."""
    im = im.convert("RGB")
    w, h = im.size
    points = (
        (w // 4, h // 4),
        (3 * w // 4, h // 4),
        (w // 4, 3 * h // 4),
        (3 * w // 4, 3 * h // 4),
    )
    return tuple(im.getpixel(p) for p in points)


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def resource(bucket: str, name: str, generation: int, size: int, **extra: Any) -> dict[str, Any]:
    """A Cloud Storage object resource (JSON API v1) as Eventarc and notifications send it."""
    return {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "image/jpeg",
        "size": str(size),
        "timeCreated": "2026-01-01T00:00:00.000Z",
        "updated": "2026-01-01T00:00:00.000Z",
        **extra,
    }


def storage_event(
    res: dict[str, Any], *, event_id: str = "evt-1", time: str = "2026-01-01T00:00:00Z"
) -> CloudEvent:
    return CloudEvent(
        {
            "id": event_id,
            "source": f"//storage.googleapis.com/projects/_/buckets/{res['bucket']}",
            "type": FINALIZED,
            "subject": f"objects/{res['name']}",
            "time": time,
            "specversion": "1.0",
        },
        res,
    )


def push_body(
    data: bytes, attributes: dict[str, str], message_id: str = "m-1", subscription: str = "s"
) -> dict[str, Any]:
    """A Pub/Sub push request body."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": message_id,
            "publishTime": "2026-01-01T00:00:01Z",
        },
        "subscription": f"projects/p/subscriptions/{subscription}",
    }


def push_event(body: dict[str, Any]) -> CloudEvent:
    """The CloudEvent functions-framework makes of a push body."""
    message = body["message"]
    return CloudEvent(
        {
            "id": message["messageId"],
            "source": "//pubsub.googleapis.com/",
            "type": PUBSUB_PUBLISHED,
            "time": message["publishTime"],
            "specversion": "1.0",
        },
        {"message": {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", **message}},
    )


def notification(
    bucket: str, name: str, generation: int, event_type: str = "OBJECT_DELETE", **attrs: str
) -> dict[str, Any]:
    """A GCS Pub/Sub notification (JSON_API_V1) as a push body."""
    payload = json.dumps(resource(bucket, name, generation, 10)).encode()
    attributes = {
        "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1",
        "eventType": event_type,
        "payloadFormat": "JSON_API_V1",
        "bucketId": bucket,
        "objectId": name,
        "objectGeneration": str(generation),
        "eventTime": "2026-01-01T00:00:00.000000Z",
        **attrs,
    }
    return push_body(payload, attributes, message_id=f"n-{generation}-{event_type}")
