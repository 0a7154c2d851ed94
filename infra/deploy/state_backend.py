"""What every stack starts with: where Terraform keeps its state, and the providers.

Without `state_bucket`: a local file per stack next to `cdktf.json`, written as a path
relative to the stack's folder (`cdktf.out/stacks/<id>/`, where `cdktf deploy` runs
Terraform), so another checkout of the repository finds the same state instead of starting
from none (and failing every create with 409). With `state_bucket`: Terraform's `gcs` backend,
one prefix per stack, with Cloud Storage's object locking, so a team, or CI, shares one state.
"""

from __future__ import annotations

from cdktf import GcsBackend, LocalBackend, TerraformStack
from cdktf_cdktf_provider_google.provider import GoogleProvider

from infra.deploy.constructs.generic import TIME_VERSION, ExtraProviders, GenericProvider
from infra.model.config import DeploymentConfig

# cdktf.out/stacks/<id>/ -> the repository root, where `cdktf.json` is.
STACK_DIR_TO_ROOT = "../../.."


def set_up(stack: TerraformStack, stack_id: str, config: DeploymentConfig) -> ExtraProviders:
    """The stack's state backend, and the google, google-beta and time providers on the
    deployment's project and region."""
    if config.state_bucket:
        GcsBackend(stack, bucket=config.state_bucket, prefix=f"terraform/{stack_id}")
    else:
        LocalBackend(stack, path=f"{STACK_DIR_TO_ROOT}/terraform.{stack_id}.tfstate")
    google = GoogleProvider(stack, "google", project=config.project, region=config.region)
    version = google.terraform_generator_metadata.provider_version  # google-beta's too
    beta = GenericProvider(stack, "google-beta", "hashicorp/google-beta", version)
    beta.add_override("project", config.project)
    beta.add_override("region", config.region)
    return ExtraProviders(beta, GenericProvider(stack, "time", "hashicorp/time", TIME_VERSION))
