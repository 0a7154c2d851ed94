"""Where Terraform keeps each stack's state, and the providers every stack starts with.

Without `state_bucket`: a local file per stack next to `cdktf.json`, written as a path
relative to the stack's folder (`cdktf.out/stacks/<id>/`, where `cdktf deploy` runs
Terraform), so another checkout of the repository finds the same state instead of starting
from none (and failing every create with 409). With `state_bucket`: Terraform's `gcs` backend,
one prefix per stack (the stack id names the environment too), with Cloud Storage's object
locking, so a team, or CI, shares one state.
"""

from __future__ import annotations

from cdktf import GcsBackend, LocalBackend, TerraformStack
from cdktf_cdktf_provider_google.provider import GoogleProvider

from infra.deploy.constructs.generic import ExtraProviders, extra_providers
from infra.model.config import DeploymentConfig

# cdktf.out/stacks/<id>/ -> the repository root, where `cdktf.json` is.
STACK_DIR_TO_ROOT = "../../.."


def state_file(stack_id: str) -> str:
    """The local state file of a stack, relative to the repository root."""
    return f"terraform.{stack_id}.tfstate"


def state_backend(stack: TerraformStack, stack_id: str, config: DeploymentConfig) -> None:
    if config.state_bucket:
        GcsBackend(stack, bucket=config.state_bucket, prefix=f"terraform/{stack_id}")
    else:
        LocalBackend(stack, path=f"{STACK_DIR_TO_ROOT}/{state_file(stack_id)}")


def set_up(stack: TerraformStack, stack_id: str, config: DeploymentConfig) -> ExtraProviders:
    """What every stack of a deployment starts with: its state backend, and the google,
    google-beta and time providers on the deployment's project and region."""
    state_backend(stack, stack_id, config)
    google = GoogleProvider(stack, "google", project=config.project, region=config.region)
    return extra_providers(
        stack,
        project=config.project,
        region=config.region,
        google_version=google.terraform_generator_metadata.provider_version,
    )
