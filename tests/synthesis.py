"""One CDKTF synth per test session, shared by the infra tests and the integration suite.

A synth loads the google provider's jsii assembly into Node (~15 s, ~0.5-1.3 GB), so every
deployment the tests need (the default settings, a non-default set, two environments, and
the local stacks the integration suite starts, whose IAM those stacks enforce) is added to
ONE app and synthesized once; tests read the resulting `cdk.tf.json` files as plain dicts.
The `synthesized` fixture is registered for the whole tree by tests/conftest.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from infra.model.config import DeploymentConfig, from_mapping, load_config, load_environments
from infra.model.monitoring import Alerting, declare_alerts
from infra.model.synthesized import (
    PROJECT_STACK_ID,
    pipeline_stack_id,
    project_stack_id,
    synthesized_stacks,
)
from infra.model.topology import Topology, build_topology
from tests.infra.deploy_order import Graph

DEFAULT_ID = "image-pipeline"  # the stack main.py synthesizes
ALT_ID = "alt-pipeline"
DEFAULT_SETTINGS: Mapping[str, Any] = {"project": "my-gcp-project"}
# Every setting the stack reads directly, away from its default.
ALT_SETTINGS: Mapping[str, Any] = {
    "project": "other-project-42",
    "region": "europe-west4",
    "prefix": "thumbs",
    "thumbnail_sizes": "64x64,2048x1536,256x256:cover",
    "thumbnail_formats": "jpeg,webp",
    "cover_focus": "detail",
    "output_rules": [
        {"name": "avatars", "include": ["avatars/**"], "sizes": ["64x64:cover"]},
        {"include": ["products/**"], "exclude": ["products/raw/**"], "formats": ["png"]},
    ],
    "metadata_keys": "owner,album",
    "thumbnail_memory": "2Gi",
    "thumbnail_timeout_seconds": 300,
    "function_memory": "512Mi",
    "function_timeout_seconds": 90,
    "function_max_instances": 3,
    "thumbnail_max_instances": 4,
    "thumbnail_cpu": "2",
    "function_cpu": "2",
    "function_concurrency": 40,
    "max_delivery_attempts": 7,
    "min_backoff_seconds": 5,
    "max_backoff_seconds": 300,
    "message_retention_seconds": 86400,
    "uploads_lifecycle_days": 30,
    "uploads_storage_classes": ["NEARLINE:10", "COLDLINE:20"],
    "create_firestore_database": False,  # the project already has its database
    "iam_settle_seconds": 300,
    "confirm_destroy_data": "other-project-42",
    "state_bucket": "team-tfstate",
    "labels": {"env": "test"},
    "backfill_invokers": "group:ops@example.com",
    "alert_notification_channels": "1234567890",
    "failed_alert_threshold": 25,
}

# The local stacks the integration suite starts (tests/integration): each enforces the IAM
# of its own stacks from this synth (StackOptions.policy), so no test synthesizes again.
# Small limits keep the "too big" cases cheap; everything else is the default config.
INTEGRATION_ID = "itest-pipeline"
INTEGRATION_SETTINGS: Mapping[str, Any] = {
    "project": "itest-imgpipe",
    "max_input_bytes": 3_000_000,
    "max_input_pixels": 40_000_000,
    # A lifecycle rule, so cleanup tells its expiries from deletes (a test delete is seconds
    # after the upload: never old enough to be one).
    "uploads_lifecycle_days": 1,
    # Pub/Sub's minimum: the dead-letter tests see the mechanism in 1.5 s of backoff; the
    # default (15, sized to outlast throttling) is exercised by test_capacity's own stack.
    "max_delivery_attempts": 5,
}
# test_capacity's stack: one instance per function, the default dead-letter policy.
CAPPED_ID = "capped-pipeline"
CAPPED_SETTINGS: Mapping[str, Any] = {
    "project": "cap-imgpipe",
    "thumbnail_max_instances": 1,
    "function_max_instances": 1,
}

# Two named environments in one project, as a team's cdktf.json would declare them.
ENVIRONMENTS_CDKTF_JSON: Mapping[str, Any] = {
    "context": {
        "pipeline": {
            "project": "team-project-1",
            "region": "europe-west1",
            "state_bucket": "team-tfstate",
            "github_repository": "example-org/image-pipeline",
            "github_repository_id": "123456789",
        },
        "environments": {
            "dev": {"prefix": "imgdev", "function_max_instances": 2},
            "prod": {"prefix": "imgprod"},
        },
    }
}

_REF = re.compile(r"^\$\{([a-z0-9_]+)\.([^.}]+)\.([^}]+)\}$")


@dataclass(frozen=True)
class Synth:
    """A synthesized pipeline stack: its settings, topology and Terraform JSON, and its
    project stack's (`project`, which `tf` reads through cross-stack references)."""

    config: DeploymentConfig
    topology: Topology
    path: Path
    tf: Mapping[str, Any]
    project_id: str
    project: Mapping[str, Any]
    project_path: Path

    @property
    def outdir(self) -> Path:
        """The `cdktf.out` the stack is in (what `scripts/local up --policy` takes)."""
        return self.path.parents[2]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """Resources of one Terraform type in both stacks, by logical id (empty if none)."""
        return {**self.project_resources(kind), **self.pipeline_resources(kind)}

    def pipeline_resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """Resources of one Terraform type in the pipeline stack alone."""
        return self.tf.get("resource", {}).get(kind, {})

    def all(self, kind: str) -> list[dict[str, Any]]:
        return list(self.resources(kind).values())

    def one(self, kind: str, **match: Any) -> dict[str, Any]:
        found = [r for r in self.all(kind) if all(r.get(k) == v for k, v in match.items())]
        assert len(found) == 1, f"expected one {kind} with {match}, found {len(found)}"
        return found[0]

    def ref(self, expr: str) -> tuple[str, dict[str, Any], str]:
        """`${type.id.attr}` -> (type, that resource's body, attr)."""
        m = _REF.match(expr)
        assert m, f"{expr!r} is not a reference to a resource"
        kind, logical_id, attr = m.groups()
        return kind, self.resources(kind)[logical_id], attr

    def ref_id(self, kind: str, body: Mapping[str, Any]) -> str:
        """The `${kind.id` prefix other resources use to refer to `body`."""
        for logical_id, candidate in self.resources(kind).items():
            if candidate is body:
                return f"${{{kind}.{logical_id}."
        raise AssertionError(f"{kind} not found")

    def account_of(self, expr: str) -> str:
        """The account_id of the service account a `member`/`email` reference points at."""
        kind, body, _ = self.ref(expr)
        assert kind == "google_service_account", expr
        return body["account_id"]

    @cached_property
    def alerting(self) -> Alerting:
        """The alert policies and log-based metrics the stack declares."""
        return declare_alerts(self.topology, self.config.failed_alert_threshold)

    @cached_property
    def graph(self) -> Graph:
        """The resources and their order (references and depends_on), transitively."""
        return Graph(self.tf, self.stacks)

    @property
    def stacks(self) -> dict[str, Mapping[str, Any]]:
        """The stacks `tf` reads, by id (for `Graph` and the deploy-order checks)."""
        return {self.project_id: self.project}

    def project_resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.project.get("resource", {}).get(kind, {})

    def address(self, kind: str, body: Mapping[str, Any]) -> str:
        """`type.logical_id` of `body`, as references and depends_on name it."""
        return self.ref_id(kind, body)[2:-1]

    def iam_members(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for tf in (self.project, self.tf):
            for kind, resources in tf.get("resource", {}).items():
                if kind.endswith("_iam_member"):
                    for body in resources.values():
                        yield kind, body


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    from cdktf import App

    from infra.deploy.pipeline_stack import PipelineStack, add_deployments
    from infra.deploy.project_stack import ProjectStack

    outdir = tmp_path_factory.mktemp("cdktf.out")
    app = App(outdir=str(outdir))
    configs = {
        DEFAULT_ID: from_mapping(DEFAULT_SETTINGS),
        ALT_ID: from_mapping(ALT_SETTINGS),
        INTEGRATION_ID: load_config(overrides=INTEGRATION_SETTINGS),
        CAPPED_ID: load_config(overrides=CAPPED_SETTINGS),
    }
    # (config, pipeline stack id, project stack id) of every deployment in the app.
    deployments = []
    for stack_id, config in configs.items():
        project_id = PROJECT_STACK_ID if stack_id == DEFAULT_ID else f"{stack_id}-project"
        PipelineStack(app, stack_id, config, ProjectStack(app, project_id, config=config))
        deployments.append((config, stack_id, project_id))
    cdktf_json = tmp_path_factory.mktemp("team") / "cdktf.json"
    cdktf_json.write_text(json.dumps(ENVIRONMENTS_CDKTF_JSON))
    environments = load_environments(cdktf_json, environ={})
    add_deployments(app, environments)
    deployments += [(c, pipeline_stack_id(c), project_stack_id(c)) for c in environments]
    app.synth()
    paths = synthesized_stacks(outdir)
    return {
        stack_id: Synth(
            config,
            build_topology(config),
            paths[stack_id],
            json.loads(paths[stack_id].read_text()),
            project_id,
            json.loads(paths[project_id].read_text()),
            paths[project_id],
        )
        for config, stack_id, project_id in deployments
    }
