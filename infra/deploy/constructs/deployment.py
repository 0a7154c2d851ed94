"""What every construct of the pipeline stack reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.deploy.constructs.generic import ExtraProviders
from infra.model.config import DeploymentConfig
from infra.model.topology import Topology


@dataclass(frozen=True)
class Deployment:
    config: DeploymentConfig
    topology: Topology
    # The `member`s of the project stack's Pub/Sub and Cloud Storage service agents
    # (cross-stack references: that stack is applied before any resource of this one).
    pubsub_agent: str
    storage_agent: str
    labels: Mapping[str, str]  # put on every resource that takes labels
    providers: ExtraProviders  # google-beta and time, for the few resources `google` lacks
