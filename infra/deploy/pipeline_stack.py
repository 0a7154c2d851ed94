"""The pipeline's CDKTF stack, generated from one `Topology` (see `infra.model.topology`).

`add_deployments(app, configs)` adds each project's stack (`infra.deploy.project_stack`: APIs,
Google service agents, the Firestore database) and each deployment's pipeline stack, which runs
the synth-time checks, builds the function source archive and declares every resource of the
pipeline; nothing about the topology is written here. The pipeline stack holds nothing the
project's other workloads use, so `cdktf destroy` of it harms nothing else.
"""

from __future__ import annotations

from pathlib import Path

from cdktf import App, TerraformOutput, TerraformStack
from constructs import Construct

from infra.deploy.constructs.alerts import Alerts
from infra.deploy.constructs.buckets import Buckets
from infra.deploy.constructs.cloud_functions import Functions
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.firestore import pipeline_database
from infra.deploy.constructs.iam import Identities
from infra.deploy.constructs.messaging import Messaging
from infra.deploy.function_source import FUNCTIONS_ROOT, build_archive
from infra.deploy.project_stack import ProjectStack
from infra.deploy.state_backend import set_up
from infra.model.checks import check_topology
from infra.model.config import DeploymentConfig
from infra.model.synthesized import pipeline_stack_id, project_stack_id
from infra.model.topology import Topology, build_topology


class PipelineStack(TerraformStack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        topology: Topology,
        project: ProjectStack,
        archive_dir: Path,
        functions_root: Path = FUNCTIONS_ROOT,
    ) -> None:
        super().__init__(scope, id_)
        check_topology(topology)
        self.project = project
        providers = set_up(self, id_, config)
        # Applied after the whole project stack (its APIs, agents and settled agent grants).
        self.add_dependency(project)
        archive = build_archive(functions_root)
        archive_path = archive.write(archive_dir)
        labels = {"pipeline": topology.prefix, **config.labels}

        deployment = Deployment(config, topology, project.agents, labels, providers)
        identities = Identities(self, "identities", deployment)
        buckets = Buckets(
            self,
            "storage",
            deployment,
            identities=identities,
            archive=archive,
            archive_path=archive_path,
        )
        database = pipeline_database(self, deployment)
        functions = Functions(
            self,
            "functions",
            deployment,
            identities=identities,
            buckets=buckets,
            after=[database] if database else [],
        )
        messaging = Messaging(
            self, "pubsub", deployment, identities=identities, buckets=buckets, functions=functions
        )
        Alerts(
            self,
            "alerts",
            deployment,
            notification_channels=config.alert_notification_channels,
        )

        for key, bucket in buckets.buckets.items():
            TerraformOutput(self, f"bucket_{key}", value=bucket.name)
        for key, topic in messaging.topics.items():
            TerraformOutput(self, f"topic_{key}", value=topic.name)
        for key, fn in functions.functions.items():
            TerraformOutput(self, f"function_{key}_url", value=fn.url)
        uploads = topology.buckets[topology.trigger.bucket].name
        TerraformOutput(
            self,
            "try_it",
            value=f"gcloud storage cp photo.jpg gs://{uploads}/photos/photo.jpg",
            description="Upload an image; thumbnails appear in the thumbnails bucket",
        )


def add_deployments(app: App, configs: list[DeploymentConfig]) -> list[PipelineStack]:
    """Every environment's pipeline stack (`pipeline_stack_id`), and one project stack per
    GCP project (`project_stack_id`), shared by the environments deployed to it."""
    projects: dict[str, ProjectStack] = {}
    stacks = []
    for config in configs:
        if config.project not in projects:
            projects[config.project] = ProjectStack(app, project_stack_id(config), config=config)
        stacks.append(
            add_pipeline_stack(app, config, pipeline_stack_id(config), projects[config.project])
        )
    return stacks


def add_pipeline_stack(
    app: App, config: DeploymentConfig, stack_id: str, project: ProjectStack
) -> PipelineStack:
    """Checks the topology of `config` and adds its stack to `app` (synthesize later)."""
    return PipelineStack(
        app,
        stack_id,
        config=config,
        topology=build_topology(config),
        project=project,
        archive_dir=Path(app.outdir) / ".function-source" / stack_id,
    )
