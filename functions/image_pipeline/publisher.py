"""Publishing result events to Pub/Sub."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from image_pipeline import clients

PUBLISH_TIMEOUT_SECONDS = 60


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the server's message id (so a failure is raised here)."""


class PubSubPublisher:
    def __init__(self, project: str) -> None:
        self.project = project

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        client = clients.publisher_client()
        future = client.publish(client.topic_path(self.project, topic), data, **attributes)
        return future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
