"""What holds data (the uploads and thumbnails buckets, the topics and subscriptions, the
Firestore database) refuses to be destroyed or replaced unless the deployment confirms it.

Terraform's `lifecycle.prevent_destroy` makes any plan that would destroy the resource fail,
a replacement included ("Resource has lifecycle.prevent_destroy set, but the plan calls for
this resource to be destroyed"): a change to an attribute the provider can only set at
creation (a bucket's `name` or `location`, a subscription's `filter` or `topic`, the
database's `location_id`) stops at plan time instead of deleting every upload, losing a
subscription's backlog and the messages published while it is being recreated, or failing
half-way with 409 on a database that was abandoned but still exists
(https://developer.hashicorp.com/terraform/language/meta-arguments/lifecycle#prevent_destroy).
`python main.py` names such a change before the plan (`infra.deploy.replacements`).
`confirm_destroy_data` (the project id) lifts it, for a tear-down or a replacement chosen on
purpose.
"""

from __future__ import annotations

from cdktf import TerraformResource

from infra.model.config import DeploymentConfig


def protect(resource: TerraformResource, config: DeploymentConfig) -> None:
    """`prevent_destroy` on `resource`, unless `confirm_destroy_data` names the project."""
    if not config.confirm_destroy_data:
        resource.add_override("lifecycle.prevent_destroy", True)
