"""The project stack: the APIs, the Google service agents with the project roles Google gives
them, the Firestore database and the GitHub deploy identities, which belong to the GCP project
rather than to one pipeline, and so are never destroyed with one (docs/architecture.md, "The
project stack and the pipeline stack")."""

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
        apis = RequiredApis(self, "apis", project=config.project)
        self.agents = ServiceAgents(
            self,
            "agents",
            project=config.project,
            apis=apis,
            providers=providers,
        )
        firestore_database(self, config, apis)
        if config.github_repository:  # keyless deploys from GitHub Actions
            GithubDeploy(self, "github", config=config, apis=apis, providers=providers)
