"""The CDKTF stack, generated from one `Topology` (see `infra.model.topology`).

`add_pipeline_stack(app, config)` runs the synth-time checks, builds the function source
archive and declares every resource; nothing about the topology is written here.
"""

from __future__ import annotations

from pathlib import Path

from cdktf import App, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_google.provider import GoogleProvider
from constructs import Construct

from infra.deploy.constructs.alerts import Alerts
from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.buckets import Buckets
from infra.deploy.constructs.cloud_functions import Functions
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.firestore import firestore_database
from infra.deploy.constructs.generic import extra_providers
from infra.deploy.constructs.iam import Identities
from infra.deploy.constructs.messaging import Messaging
from infra.deploy.function_source import FUNCTIONS_ROOT, build_archive
from infra.model.checks import check_topology
from infra.model.config import STACK_ID, DeploymentConfig
from infra.model.topology import Topology, build_topology


class PipelineStack(TerraformStack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        topology: Topology,
        archive_dir: Path,
        functions_root: Path = FUNCTIONS_ROOT,
    ) -> None:
        super().__init__(scope, id_)
        check_topology(topology)
        archive = build_archive(functions_root)
        archive_path = archive.write(archive_dir)
        labels = {"pipeline": topology.prefix, **config.labels}

        google = GoogleProvider(self, "google", project=config.project, region=config.region)
        providers = extra_providers(
            self,
            project=config.project,
            region=config.region,
            google_version=google.terraform_generator_metadata.provider_version,
        )
        apis = RequiredApis(self, "apis", project=config.project)
        deployment = Deployment(config, topology, apis, labels, providers)
        identities = Identities(self, "identities", deployment)
        buckets = Buckets(
            self,
            "storage",
            deployment,
            identities=identities,
            archive=archive,
            archive_path=archive_path,
        )
        functions = Functions(
            self,
            "functions",
            deployment,
            identities=identities,
            buckets=buckets,
            database=firestore_database(self, deployment),
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


def add_pipeline_stack(
    app: App, config: DeploymentConfig, stack_id: str = STACK_ID
) -> PipelineStack:
    """Checks the topology of `config` and adds its stack to `app` (synthesize later)."""
    topology = build_topology(config)
    return PipelineStack(
        app,
        stack_id,
        config=config,
        topology=topology,
        archive_dir=Path(app.outdir) / ".function-source" / stack_id,
    )
