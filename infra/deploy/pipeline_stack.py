"""The pipeline's CDKTF stack, generated from one `Topology` (`infra.model.topology`): nothing
about the topology is written here. It holds nothing the project's other workloads use, so
`cdktf destroy` of it harms nothing else (those are the project stack's)."""

from __future__ import annotations

from pathlib import Path

from cdktf import App, TerraformOutput, TerraformStack

from infra.deploy.constructs.alerts import Alerts
from infra.deploy.constructs.buckets import Buckets
from infra.deploy.constructs.cloud_functions import Functions
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.firestore import pipeline_database
from infra.deploy.constructs.iam import Identities
from infra.deploy.constructs.messaging import Messaging
from infra.deploy.function_source import build_archive
from infra.deploy.project_stack import ProjectStack
from infra.deploy.state_backend import set_up
from infra.model.checks import check_topology
from infra.model.config import DeploymentConfig
from infra.model.synthesized import pipeline_stack_id, project_stack_id
from infra.model.topology import build_topology


class PipelineStack(TerraformStack):
    """Runs the synth-time checks of `config`'s topology, builds the function source archive
    and declares every resource of the pipeline."""

    def __init__(self, app: App, id_: str, config: DeploymentConfig, project: ProjectStack) -> None:
        super().__init__(app, id_)
        topology = build_topology(config)
        check_topology(topology)
        providers = set_up(self, id_, config)
        # Applied after the whole project stack (its APIs, agents and settled agent grants).
        self.add_dependency(project)
        archive = build_archive()
        archive_path = archive.write(Path(app.outdir) / ".function-source" / id_)
        labels = {"pipeline": topology.prefix, **config.labels}

        agents = project.agents
        deployment = Deployment(
            config, topology, agents.pubsub_member, agents.storage_member, labels, providers
        )
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
        Alerts(self, "alerts", deployment)

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


def add_deployments(app: App, configs: list[DeploymentConfig]) -> None:
    """Every environment's pipeline stack (`pipeline_stack_id`), and one project stack per
    GCP project (`project_stack_id`), shared by the environments deployed to it."""
    projects: dict[str, ProjectStack] = {}
    for config in configs:
        if config.project not in projects:
            projects[config.project] = ProjectStack(app, project_stack_id(config), config=config)
        PipelineStack(app, pipeline_stack_id(config), config, projects[config.project])
