"""What every construct of the pipeline stack reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.deploy.constructs.agents import ServiceAgents
from infra.deploy.constructs.generic import ExtraProviders
from infra.model.config import DeploymentConfig
from infra.model.topology import Topology


@dataclass(frozen=True)
class Deployment:
    config: DeploymentConfig
    topology: Topology
    # The project stack's service agents (cross-stack references). The project stack, APIs
    # and database included, is applied before any resource of the pipeline stack.
    agents: ServiceAgents
    labels: Mapping[str, str]  # put on every resource that takes labels
    providers: ExtraProviders  # google-beta and time, for the few resources `google` lacks
