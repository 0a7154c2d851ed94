"""Puts the reason for a resource into the synthesized JSON, next to the resource."""

from __future__ import annotations

from cdktf import TerraformElement


def why[E: TerraformElement](element: E, reason: str) -> E:
    """Records `reason` under the resource's `//` key, which Terraform ignores (JSON
    comment syntax): a reviewer of `cdk.tf.json` sees why each IAM binding exists."""
    element.add_override("//.why", reason)
    return element
