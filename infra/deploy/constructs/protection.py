"""What holds data (the uploads and thumbnails buckets, the topics and subscriptions, the
Firestore databases) refuses to be destroyed or replaced unless the deployment confirms it.

Terraform fails any plan that would destroy a resource with `lifecycle.prevent_destroy`, a
replacement included, so a change to an attribute the provider sets only at creation stops
at plan time instead of losing what the resource holds
(https://developer.hashicorp.com/terraform/language/meta-arguments/lifecycle#prevent_destroy).
`python main.py` names such a change before the plan (`infra.deploy.replacements`).
"""

from __future__ import annotations

from cdktf import TerraformResource

from infra.model.config import DeploymentConfig


def protect(resource: TerraformResource, config: DeploymentConfig) -> None:
    """`prevent_destroy` on `resource`, unless `confirm_destroy_data` names the project."""
    if not config.confirm_destroy_data:
        resource.add_override("lifecycle.prevent_destroy", True)
