"""Identities: one runtime service account per function, the trigger, push and build
accounts, their project-level roles and the Pub/Sub agent's token grants on them, and the
waits for grants to take effect. Bindings on a bucket, topic, subscription or service live
next to that resource (`buckets.py`, `messaging.py`, `cloud_functions.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.generic import WaitForPropagation
from infra.deploy.constructs.grants import project_role, role_slug
from infra.model.topology import FunctionSpec, Grant, Topology


def function_grants(topology: Topology, kind: str) -> Iterator[tuple[str, FunctionSpec, Grant]]:
    """The topology's grants of one kind (`bucket`, `topic`, `project`), each with the
    construct id of its IAM member and its function."""
    for fn in topology.functions.values():
        for grant in fn.grants:
            if grant.kind == kind:
                yield f"{grant.target or 'project'}-{fn.key}-{role_slug(grant.role)}", fn, grant


class Identities(Construct):
    def __init__(self, scope: Construct, id_: str, deployment: Deployment) -> None:
        super().__init__(scope, id_)
        topology = deployment.topology
        self._project = topology.project
        self._prefix = topology.prefix
        self._pubsub_agent = deployment.pubsub_agent

        # Runtime identity of each function, with exactly the roles the topology grants it.
        self.runtime = {
            fn.key: self._account(
                f"{fn.key}-runtime",
                fn.service_account_id,
                f"{fn.name} runtime",
                f"Runtime identity of {fn.name}: {fn.purpose}",
            )
            for fn in topology.functions.values()
        }
        for grant_id, fn, grant in function_grants(topology, "project"):
            project_role(
                self,
                grant_id,
                self._project,
                grant.role,
                self.runtime[fn.key].member,
                f"{fn.name} {grant.why}",
                grant.condition,
            )
        self._trigger_identity(deployment)

        self.push_invoker = self._account(
            "push-invoker",
            topology.push_invoker_account_id,
            "Pub/Sub push invoker",
            "Identity of the push subscriptions' OIDC tokens",
        )
        self.push_token_creator = self._token_creator(
            "pubsub-agent-token-creator",
            self.push_invoker,
            "Pub/Sub mints the push OIDC tokens as the push invoker (required on projects "
            "whose Pub/Sub agent predates April 2021; scoped to this one account)",
        )

        # Cloud Build runs the function builds as this account; its grants are next to what
        # they reach, in `cloud_functions.py` (the builds wait for them there).
        self.builder = self._account(
            "builder",
            topology.build_account_id,
            "Function builds",
            "Cloud Build identity for the pipeline's function builds",
        )

    def _trigger_identity(self, deployment: Deployment) -> None:
        """The account Eventarc delivers the uploads bucket's events as, its grants, and
        the wait for them before the trigger is created."""
        self.trigger = self._account(
            "trigger",
            deployment.topology.trigger.service_account_id,
            "Eventarc trigger of the uploads bucket",
            "Identity Eventarc uses to deliver the uploads bucket's events",
        )
        receiver = project_role(
            self,
            "trigger-event-receiver",
            self._project,
            "roles/eventarc.eventReceiver",
            self.trigger.member,
            "the trigger's identity must be allowed to receive Eventarc events",
        )
        token_creator = self._token_creator(
            "pubsub-agent-trigger-token-creator",
            self.trigger,
            "Pub/Sub mints the OIDC tokens of the trigger's push deliveries as the trigger "
            "account: a Pub/Sub agent enabled on or before April 8, 2021 needs this role "
            "(Eventarc, 'Roles and permissions for Cloud Run functions targets', "
            "https://docs.cloud.google.com/eventarc/standard/docs/functions/roles-permissions); "
            "bound on this one account, not project-wide",
        )
        # The trigger is created only once every grant it relies on has had time to
        # propagate (the Eventarc agent's, in the project stack, settled before this stack).
        self.trigger_ready = grants_settled(
            self, "trigger-grants-settled", deployment, [receiver, token_creator], "the trigger"
        )

    def _token_creator(
        self, id_: str, account: ServiceAccount, reason: str
    ) -> ServiceAccountIamMember:
        """Lets the Pub/Sub agent mint OIDC tokens as `account`, and as no other account."""
        binding = ServiceAccountIamMember(
            self,
            id_,
            service_account_id=account.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=self._pubsub_agent,
        )
        # Read by the local stack's IAM report and test: a grant it never uses says why it stays.
        binding.add_override("//.kept", "the local stack mints no OIDC tokens")
        return why(binding, reason)

    def _account(
        self, id_: str, account_id: str, display_name: str, description: str
    ) -> ServiceAccount:
        return ServiceAccount(
            self,
            id_,
            project=self._project,
            account_id=account_id,
            # Prefixed: environments sharing a project tell their accounts apart in the console.
            display_name=f"{self._prefix}: {display_name}",
            description=description,
        )


def grants_settled(
    scope: Construct,
    id_: str,
    deployment: Deployment,
    grants: Sequence[ITerraformDependable],
    user: str,
) -> WaitForPropagation:
    """A wait of `iam_settle_seconds` after `grants`, before `user` relies on them."""
    seconds = deployment.config.iam_settle_seconds
    wait = WaitForPropagation(
        scope, id_, providers=deployment.providers, seconds=seconds, after=grants
    )
    return why(
        wait,
        "IAM grants propagate in typically 2 minutes, sometimes 7 or more (Google IAM, 'Access "
        f"change propagation'): {user} waits {seconds} s (iam_settle_seconds) after them",
    )
