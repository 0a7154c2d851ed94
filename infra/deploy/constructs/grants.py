"""Project-level IAM grants, each with its reason: what the pipeline's and the project's
stacks both create (the service agents' roles, the function and deploy accounts' roles)."""

from __future__ import annotations

from cdktf_cdktf_provider_google.project_iam_member import (
    ProjectIamMember,
    ProjectIamMemberCondition,
)
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.model.topology import Condition


def project_role(
    scope: Construct,
    id_: str,
    project: str,
    role: str,
    member: str,
    reason: str,
    condition: Condition | None = None,
) -> ProjectIamMember:
    """A project-level grant with its reason, narrowed by an IAM condition when given."""
    binding = ProjectIamMember(
        scope,
        id_,
        project=project,
        role=role,
        member=member,
        condition=(
            ProjectIamMemberCondition(
                title=condition.title, description=condition.why, expression=condition.expression
            )
            if condition
            else None
        ),
    )
    return why(binding, reason)


def role_slug(role: str) -> str:
    """A role as it goes into a construct id: roles/run.invoker -> run-invoker."""
    return role.removeprefix("roles/").replace(".", "-")
