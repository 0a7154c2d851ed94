"""Named environments (cdktf.json context.environments): each its own pipeline stack and
state; two in one project share that project's stack and collide on no name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.deploy_order import app_problems

pytestmark = pytest.mark.synth


def _names(value: Any) -> set[str]:
    """Every name a GCP resource or document is known by in a stack: `name`, `account_id`,
    `repository_id`, `display_name`, and the functions' Firestore database."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "google_storage_bucket_object":
                continue  # named within its bucket, which is the environment's own
            if key in ("name", "account_id", "repository_id", "display_name") and isinstance(
                item, str
            ):
                found.add(item)
            elif key == "FIRESTORE_DATABASE":
                found.add(f"database {item}")
            else:
                found |= _names(item)
    elif isinstance(value, list):
        for item in value:
            found |= _names(item)
    return found


def test_two_environments_in_one_project_share_no_name(team):
    dev, prod = team
    assert dev.config.project == prod.config.project == "team-project-1"
    dev_names, prod_names = _names(dev.tf["resource"]), _names(prod.tf["resource"])
    assert len(dev_names) > 30 and len(prod_names) > 30  # it looked at the resources
    assert "database imgdev-pipeline" in dev_names and "database imgprod-pipeline" in prod_names
    assert dev_names.isdisjoint(prod_names), sorted(dev_names & prod_names)
    # Their settings are the base plus their own.
    assert (dev.config.function_max_instances, prod.config.function_max_instances) == (2, 10)
    assert dev.config.region == prod.config.region == "europe-west1"


def test_environments_in_one_project_share_its_project_stack(team, synthesized):
    dev, prod = team
    assert dev.project_id == prod.project_id == "image-pipeline-project-team-project-1"
    assert dev.project == prod.project
    [database] = dev.project["resource"]["google_firestore_database"].values()
    assert database["name"] == "(default)"
    # Each has its own state; the project stack is deployed (and its state kept) once.
    for synth, stack_id in ((dev, "image-pipeline-dev"), (prod, "image-pipeline-prod")):
        assert synth.tf["terraform"]["backend"] == {
            "gcs": {"bucket": "team-tfstate", "prefix": f"terraform/{stack_id}"}
        }
    assert dev.project["terraform"]["backend"] == {
        "gcs": {"bucket": "team-tfstate", "prefix": f"terraform/{dev.project_id}"}
    }
    stacks = {d.project_id: d.project for d in team} | {"dev": dev.tf, "prod": prod.tf}
    assert app_problems(stacks) == []


def test_environments_that_would_collide_are_refused(tmp_path):
    from infra.model.config import ConfigError, load_environments

    cdktf_json = tmp_path / "cdktf.json"
    for environments, setting in (
        ({"a": {}, "b": {}}, "prefix"),
        ({"a": {"prefix": "pa"}, "b": {"prefix": "pb", "firestore_location": "eur3"}}, None),
        # One bucket for both (set once for all): the second stack's create would fail.
        ({"a": {"prefix": "pa", "project": "p-one-1"}, "b": {"prefix": "pb"}}, "uploads_bucket"),
    ):
        document = {"context": {"pipeline": {"project": "team-project-1"}}}
        if setting == "uploads_bucket":
            document["context"]["pipeline"]["uploads_bucket"] = "team-uploads"
        document["context"]["environments"] = environments
        cdktf_json.write_text(json.dumps(document))
        with pytest.raises(ConfigError) as refused:
            load_environments(cdktf_json, environ={})
        assert refused.value.setting == (setting or "firestore_location")
    # One environment only, by name; an unknown name is refused with the known ones.
    document["context"]["environments"] = {"a": {"prefix": "pa"}, "b": {"prefix": "pb"}}
    cdktf_json.write_text(json.dumps(document))
    [only] = load_environments(cdktf_json, environ={"PIPELINE_ENVIRONMENT": "b"})
    assert (only.environment, only.prefix) == ("b", "pb")
    with pytest.raises(ConfigError, match="known: a, b"):
        load_environments(cdktf_json, environ={"PIPELINE_ENVIRONMENT": "c"})


def test_a_named_repository_gets_keyless_deploys_and_nothing_more(team, stack):
    from infra.model.apply_permissions import deployer_roles, read_permissions

    project = team[0].project["resource"]
    [pool] = project["google_iam_workload_identity_pool"].values()
    # A fresh id after each destroy (a soft-deleted pool keeps its id for 30 days).
    assert pool["workload_identity_pool_id"].startswith("github-${time_static.")
    [provider] = project["google_iam_workload_identity_pool_provider"].values()
    assert provider["oidc"]["issuer_uri"] == "https://token.actions.githubusercontent.com"
    main = "repo:example-org/image-pipeline:ref:refs/heads/main"
    pulls = "repo:example-org/image-pipeline:pull_request"
    # The repository by its numeric id, and only a push to main or a pull request.
    assert provider["attribute_condition"] == (
        f'assertion.repository_id == "123456789" && '
        f'(assertion.sub == "{main}" || assertion.sub == "{pulls}")'
    )
    users = {
        b["member"].rsplit("/subject/", 1)[1]: b["service_account_id"]
        for b in project["google_service_account_iam_member"].values()
        if b["role"] == "roles/iam.workloadIdentityUser"
    }
    assert all(
        b["member"].startswith("principal://iam.googleapis.com/${google_iam_workload")
        for b in project["google_service_account_iam_member"].values()
    )
    accounts = {k: v["account_id"] for k, v in project["google_service_account"].items()}

    def account(subject):
        return accounts[users[subject].split(".")[1]]

    assert (account(main), account(pulls)) == ("pipeline-deployer", "pipeline-planner")

    def roles(account_id):
        return {
            b["role"]: b.get("condition")
            for b in project["google_project_iam_member"].values()
            if accounts.get(b["member"].split(".")[1]) == account_id
        }

    deploys = roles("pipeline-deployer")
    assert set(deploys) == set(deployer_roles())
    assert "roles/owner" not in deploys and "roles/editor" not in deploys
    # The plan account: a custom role that only reads, and the source archives' objects.
    plans = roles("pipeline-planner")
    [custom] = project["google_project_iam_custom_role"].values()
    assert custom["permissions"] == read_permissions()
    assert all(p.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy") for p in read_permissions())
    assert "storage.objects.get" not in read_permissions()
    viewer = plans.pop("roles/storage.objectViewer")
    assert viewer["expression"].endswith('.endsWith("-source")')
    [(reader, condition)] = plans.items()
    assert reader.startswith("${google_project_iam_custom_role.") and condition is None
    state = {
        accounts[b["member"].split(".")[1]]: b["role"]
        for b in project["google_storage_bucket_iam_member"].values()
    }
    assert state == {
        "pipeline-deployer": "roles/storage.objectUser",
        "pipeline-planner": "roles/storage.objectViewer",
    }
    assert "google_service_account_key" not in project
    # Without the setting: none of it.
    assert "google_iam_workload_identity_pool" not in stack.project["resource"]


DATA_ROLES = ("roles/datastore.", "roles/storage.", "roles/pubsub.")


def test_no_identity_of_one_environment_holds_a_role_on_anothers_data(team):
    """Each environment has its own database, and every grant its identities hold on data
    names that environment's buckets, topics, subscriptions or database, never the other's."""
    dev, prod = team
    for own, other in ((dev, prod), (prod, dev)):
        [database] = own.pipeline_resources("google_firestore_database").values()
        assert database["name"] == own.topology.firestore_database
        assert database["lifecycle"] == {"prevent_destroy": True}
        theirs = {
            *(b["name"] for b in other.pipeline_resources("google_storage_bucket").values()),
            *(t.name for t in other.topology.topics.values()),
            *(s.name for s in other.topology.subscriptions.values()),
            f"databases/{other.topology.firestore_database}",
        }
        checked = 0
        # The environment's identities are its pipeline stack's (the project stack's deploy
        # accounts belong to the project, and deploy every environment).
        bindings = [
            (kind, body)
            for kind, resources in own.tf["resource"].items()
            if kind.endswith("_iam_member")
            for body in resources.values()
        ]
        for kind, binding in bindings:
            if not any(binding["role"].startswith(r) for r in DATA_ROLES):
                continue
            member = binding["member"]
            if member.startswith("${google_service_account."):
                checked += 1
                text = json.dumps(binding)
                assert not any(name in text for name in theirs), (kind, binding)
                if kind == "google_project_iam_member":  # project-wide: only conditioned
                    expression = binding["condition"]["expression"]
                    if binding["role"] == "roles/datastore.user":
                        assert f"databases/{own.topology.firestore_database}" in expression
                    else:
                        assert "gcf-v2-sources-" in expression, binding
        assert checked >= 8  # it looked at the functions' and the builder's grants
        # The functions read and write their own database, and only that one.
        for fn in own.all("google_cloudfunctions2_function"):
            env = fn["service_config"]["environment_variables"]
            assert env["FIRESTORE_DATABASE"] == own.topology.firestore_database
