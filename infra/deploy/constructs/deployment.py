"""What every construct of the stack reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.generic import ExtraProviders
from infra.model.config import DeploymentConfig
from infra.model.topology import Topology


@dataclass(frozen=True)
class Deployment:
    config: DeploymentConfig
    topology: Topology
    apis: RequiredApis  # `depends_on` targets: resources wait for their APIs
    labels: Mapping[str, str]  # put on every resource that takes labels
    providers: ExtraProviders  # google-beta and time, for the few resources `google` lacks
