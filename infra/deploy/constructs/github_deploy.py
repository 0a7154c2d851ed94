"""Deploys from GitHub Actions without keys (Workload Identity Federation), with
`github_repository` and its numeric `github_repository_id` set: a pool and an OIDC provider
that accept only that repository's tokens for a push to the default branch or a pull request
(google-github-actions/auth, "Security Considerations"), a deploy account only the first may
act as, and a read-only plan account for the second (docs/deploy-and-operate.md, "Deploying
from GitHub Actions")."""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktf_cdktf_provider_google.iam_workload_identity_pool_provider import (
    IamWorkloadIdentityPoolProvider,
    IamWorkloadIdentityPoolProviderOidc,
)
from cdktf_cdktf_provider_google.project_iam_custom_role import ProjectIamCustomRole
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.generic import ExtraProviders, GenericResource
from infra.deploy.constructs.grants import project_role, role_slug
from infra.model.apply_permissions import deployer_roles, read_permissions
from infra.model.config import DeploymentConfig
from infra.model.topology import Condition

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEFAULT_BRANCH = "main"  # the branch .github/workflows/deploy.yml applies from
PROVIDER_ID = "github-actions"
DEPLOYER_ID = "pipeline-deployer"
PLANNER_ID = "pipeline-planner"


class GithubDeploy(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        apis: RequiredApis,
        providers: ExtraProviders,
    ) -> None:
        super().__init__(scope, id_)
        self._project, self._repository = config.project, config.github_repository
        # A destroyed pool, and a deleted custom role, keep their id for 30 days or more
        # (soft delete), and a redeploy under the same id fails: the ids carry the time of
        # the first apply (`time_static`, kept in the state, new after a destroy).
        created = GenericResource(
            self, "created", resource_type="time_static", provider=providers.time, attributes={}
        )
        suffix = created.get_string_attribute("unix")
        pool = IamWorkloadIdentityPool(
            self,
            "pool",
            project=self._project,
            workload_identity_pool_id=f"github-{suffix}",
            display_name="GitHub Actions",
            description=f"Deploys of {self._repository} from GitHub Actions",
            depends_on=apis.needed("iam", "sts"),
        )
        self._pool = pool.name
        apply_subject = f"repo:{self._repository}:ref:refs/heads/{DEFAULT_BRANCH}"
        plan_subject = f"repo:{self._repository}:pull_request"
        provider = why(
            IamWorkloadIdentityPoolProvider(
                self,
                "provider",
                project=self._project,
                workload_identity_pool_id=pool.workload_identity_pool_id,
                workload_identity_pool_provider_id=PROVIDER_ID,
                display_name="GitHub Actions OIDC",
                attribute_mapping={
                    "google.subject": "assertion.sub",
                    "attribute.repository_id": "assertion.repository_id",
                },
                attribute_condition=(
                    f'assertion.repository_id == "{config.github_repository_id}" && '
                    f'(assertion.sub == "{apply_subject}" || assertion.sub == "{plan_subject}")'
                ),
                oidc=IamWorkloadIdentityPoolProviderOidc(issuer_uri=GITHUB_ISSUER),
            ),
            "exchanges the OIDC tokens of this repository (by its id), and only of a push to "
            f"{DEFAULT_BRANCH} or a pull request, for Google credentials",
        )
        deployer = self._account(DEPLOYER_ID, apply_subject, "Pipeline deploys", apis)
        for role in deployer_roles():
            project_role(
                self,
                f"deployer-{role_slug(role)}",
                self._project,
                role,
                deployer.member,
                f"the deploy creates and changes the resources {role} covers "
                "(infra/model/apply_permissions.py)",
            )
        planner = self._account(PLANNER_ID, plan_subject, "Pipeline plans (read-only)", apis)
        self._reader(planner, f"pipelinePlanner{suffix}")
        if config.state_bucket:
            self._state("deployer", config.state_bucket, deployer, "roles/storage.objectUser")
            self._state("planner", config.state_bucket, planner, "roles/storage.objectViewer")
        # What the repository's Actions variables take (.github/workflows/deploy.yml).
        TerraformOutput(self, "wif_provider", value=provider.name)
        TerraformOutput(self, "deploy_service_account", value=deployer.email)
        TerraformOutput(self, "plan_service_account", value=planner.email)

    def _reader(self, planner: ServiceAccount, role_id: str) -> None:
        """What a pull request's plan may do: read every resource of the stacks (a custom
        role of the read permissions), and the objects of the source buckets alone."""
        reader = ProjectIamCustomRole(
            self,
            "reader",
            project=self._project,
            role_id=role_id,
            title="Pipeline plans (read-only)",
            description="What `terraform plan` reads of the pipeline's resources",
            permissions=read_permissions(),
        )
        project_role(
            self,
            "planner-reader",
            self._project,
            reader.name,
            planner.member,
            "a pull request's plan reads every resource of the stacks and changes none",
        )
        project_role(
            self,
            "planner-source-viewer",
            self._project,
            "roles/storage.objectViewer",
            planner.member,
            "the plan reads the function source archive; no other bucket's objects",
            Condition(
                "source buckets only",
                f'resource.name.startsWith("projects/_/buckets/{self._project}-") && '
                'resource.name.extract("projects/_/buckets/{bucket}/").endsWith("-source")',
                "the pipelines' source buckets (<project>-<prefix>-source), not their data",
            ),
        )

    def _account(
        self, account_id: str, subject: str, title: str, apis: RequiredApis
    ) -> ServiceAccount:
        """A service account only the workflows with this token subject may act as."""
        account = ServiceAccount(
            self,
            account_id.removeprefix("pipeline-"),
            project=self._project,
            account_id=account_id,
            display_name=title,
            description=f"Impersonated by {self._repository}'s workflows ({subject})",
            depends_on=apis.needed("iam"),
        )
        why(
            ServiceAccountIamMember(
                self,
                f"{account_id.removeprefix('pipeline-')}-workload-identity-user",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=f"principal://iam.googleapis.com/{self._pool}/subject/{subject}",
            ),
            f"the workflows of {self._repository} whose token subject is {subject}, and no "
            "other, may act as this account",
        )
        return account

    def _state(self, who: str, bucket: str, account: ServiceAccount, role: str) -> None:
        why(
            StorageBucketIamMember(
                self, f"{who}-state", bucket=bucket, role=role, member=account.member
            ),
            f"the {who} reads the Terraform state in the state bucket"
            + (", and writes it" if role.endswith("objectUser") else ""),
        )
