"""Stateful resources (the uploads and thumbnails buckets, the Firestore database) refuse to
be destroyed or replaced unless the deployment explicitly allows it.

Terraform's `lifecycle.prevent_destroy` makes any plan that would destroy the resource fail,
a replacement included ("Resource has lifecycle.prevent_destroy set, but the plan calls for
this resource to be destroyed"): a setting change that touches an attribute the provider can
only set at creation (a bucket's `name` or `location`, the database's `location_id`) stops at
plan time instead of deleting every upload, or failing half-way with 409 on a database that
was abandoned but still exists
(https://developer.hashicorp.com/terraform/language/meta-arguments/lifecycle#prevent_destroy).
Which settings do that: `infra.model.config.FIXED_AFTER_FIRST_DEPLOY`, checked against the
last synth by `infra.deploy.replacements`.
"""

from __future__ import annotations

from cdktf import TerraformResource

from infra.model.config import DeploymentConfig


def protect(resource: TerraformResource, config: DeploymentConfig) -> None:
    """`prevent_destroy` on `resource`, unless `allow_destroying_data` is set."""
    if not config.allow_destroying_data:
        resource.add_override("lifecycle.prevent_destroy", True)
