"""The Google APIs the pipeline needs, enabled in code."""

from __future__ import annotations

from cdktf import TerraformResource
from cdktf_cdktf_provider_google.project_service import ProjectService
from constructs import Construct

# Key -> service. Keys are what other constructs name in `RequiredApis.needed(...)`.
SERVICES = {
    "artifactregistry": "artifactregistry.googleapis.com",  # function images
    "cloudbuild": "cloudbuild.googleapis.com",  # builds the function source
    "cloudfunctions": "cloudfunctions.googleapis.com",
    "cloudresourcemanager": "cloudresourcemanager.googleapis.com",  # project IAM, project data
    "eventarc": "eventarc.googleapis.com",  # the storage trigger
    "firestore": "firestore.googleapis.com",
    "iam": "iam.googleapis.com",  # service accounts
    "logging": "logging.googleapis.com",  # build and function logs, log-based metrics
    "monitoring": "monitoring.googleapis.com",  # alert policies
    "pubsub": "pubsub.googleapis.com",
    "run": "run.googleapis.com",  # 2nd gen functions are Cloud Run services
    "storage": "storage.googleapis.com",
    "sts": "sts.googleapis.com",  # Workload Identity Federation's token exchange (CI deploys)
}


class RequiredApis(Construct):
    """One `google_project_service` per API. `disable_on_destroy = false`: `cdktf destroy`
    must not switch off an API that other workloads in the project may use."""

    def __init__(self, scope: Construct, id_: str, *, project: str) -> None:
        super().__init__(scope, id_)
        self.services = {
            key: ProjectService(
                self,
                key,
                project=project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
            )
            for key, service in SERVICES.items()
        }

    def needed(self, *keys: str) -> list[TerraformResource]:
        """`depends_on` for a resource that needs these APIs enabled first."""
        return [self.services[key] for key in keys]
