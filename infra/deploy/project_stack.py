"""The project stack: what belongs to the GCP project rather than to one pipeline.

The APIs, the Google service agents with the project roles Google gives them, and the
Firestore database are shared by every workload in the project. Destroying a pipeline must
not remove them (Eventarc: if the agent's role is removed, every trigger in the project breaks
until it is restored), so they live here, in a stack deployed before the pipeline's and never
destroyed with it. The pipeline stack reads the agents' members from it (cdktf cross-stack
references: this stack's outputs, read through its state), which also makes `cdktf deploy`
apply this stack first.
"""

from __future__ import annotations

from cdktf import TerraformStack
from constructs import Construct

from infra.deploy.constructs.agents import ServiceAgents
from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.firestore import firestore_database
from infra.deploy.constructs.github_deploy import GithubDeploy
from infra.deploy.state_backend import set_up
from infra.model.config import DeploymentConfig


class ProjectStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, id_)
        providers = set_up(self, id_, config)
        self.apis = RequiredApis(self, "apis", project=config.project)
        self.agents = ServiceAgents(
            self,
            "agents",
            project=config.project,
            apis=self.apis,
            providers=providers,
        )
        self.database = firestore_database(self, config, self.apis)
        if config.github_repository:  # keyless deploys from GitHub Actions
            GithubDeploy(self, "github", config=config, apis=self.apis, providers=providers)
