"""Deploys from GitHub Actions without keys: Workload Identity Federation for one repository.

With `github_repository` ("owner/name") set, the project stack creates a workload identity
pool, an OIDC provider trusting GitHub's token issuer for that repository only, and a deploy
service account that the repository's workflows may impersonate
(`google-github-actions/auth`, "Workload Identity Federation through a Service Account";
IAM, "Configure Workload Identity Federation with deployment pipelines"). The account holds
the roles the deploy needs (`infra.model.apply_permissions.deployer_roles`, the same list the
prerequisites name) and may use the state bucket. No key is ever created.
"""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktf_cdktf_provider_google.iam_workload_identity_pool_provider import (
    IamWorkloadIdentityPoolProvider,
    IamWorkloadIdentityPoolProviderOidc,
)
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.grants import project_role, role_slug
from infra.model.apply_permissions import deployer_roles
from infra.model.config import DeploymentConfig

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
POOL_ID = "github"
PROVIDER_ID = "github-actions"
DEPLOYER_ID = "pipeline-deployer"


class GithubDeploy(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, config: DeploymentConfig, apis: RequiredApis
    ) -> None:
        super().__init__(scope, id_)
        project, repository = config.project, config.github_repository
        pool = IamWorkloadIdentityPool(
            self,
            "pool",
            project=project,
            workload_identity_pool_id=POOL_ID,
            display_name="GitHub Actions",
            description=f"Deploys of {repository} from GitHub Actions",
            depends_on=apis.needed("iam", "sts"),
        )
        self.provider = why(
            IamWorkloadIdentityPoolProvider(
                self,
                "provider",
                project=project,
                workload_identity_pool_id=pool.workload_identity_pool_id,
                workload_identity_pool_provider_id=PROVIDER_ID,
                display_name="GitHub Actions OIDC",
                attribute_mapping={
                    "google.subject": "assertion.sub",
                    "attribute.repository": "assertion.repository",
                    "attribute.ref": "assertion.ref",
                },
                # Only this repository's tokens are accepted at all (GitHub's token is issued
                # to every repository on github.com).
                attribute_condition=f'assertion.repository == "{repository}"',
                oidc=IamWorkloadIdentityPoolProviderOidc(issuer_uri=GITHUB_ISSUER),
            ),
            "exchanges GitHub Actions' OIDC tokens of this repository, and no other, for "
            "Google credentials",
        )
        self.account = ServiceAccount(
            self,
            "deployer",
            project=project,
            account_id=DEPLOYER_ID,
            display_name="Pipeline deploys from GitHub Actions",
            description=f"Impersonated by {repository}'s workflows through {POOL_ID}",
            depends_on=apis.needed("iam"),
        )
        why(
            ServiceAccountIamMember(
                self,
                "deployer-workload-identity-user",
                service_account_id=self.account.name,
                role="roles/iam.workloadIdentityUser",
                member=f"principalSet://iam.googleapis.com/{pool.name}/attribute.repository/"
                f"{repository}",
            ),
            f"the workflows of {repository} (and only those) may act as the deploy account",
        )
        for role in deployer_roles():
            project_role(
                self,
                f"deployer-{role_slug(role)}",
                project,
                role,
                self.account.member,
                f"the deploy creates and changes the resources {role} covers "
                "(infra/model/apply_permissions.py)",
            )
        # What the repository's Actions variables take (.github/workflows/deploy.yml).
        TerraformOutput(self, "wif_provider", value=self.provider.name)
        TerraformOutput(self, "deploy_service_account", value=self.account.email)
        if config.state_bucket:
            why(
                StorageBucketIamMember(
                    self,
                    "deployer-state",
                    bucket=config.state_bucket,
                    role="roles/storage.objectUser",
                    member=self.account.member,
                ),
                "the deploy reads and writes the Terraform state in the state bucket",
            )
