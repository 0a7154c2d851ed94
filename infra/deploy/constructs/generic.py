"""Resources of providers we have no prebuilt bindings for: `google-beta`
(`google_project_service_identity`) and `time` (`time_sleep`, `time_static`), declared with
cdktf's generic `TerraformProvider`/`TerraformResource` and the providers' documented
attribute names (why: docs/architecture.md, "google-beta and time without bindings")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from cdktf import (
    ITerraformDependable,
    TerraformProvider,
    TerraformProviderGeneratorMetadata,
    TerraformResource,
)
from constructs import Construct

# hashicorp/time: `time_sleep` (create_duration, triggers) is in every 0.x release since 0.5.
TIME_VERSION = "~> 0.13"


class GenericResource(TerraformResource):
    """A Terraform resource given by type name and attributes (Terraform's own names)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        resource_type: str,
        provider: TerraformProvider,
        attributes: Mapping[str, Any],
        depends_on: Sequence[ITerraformDependable] | None = None,
    ) -> None:
        super().__init__(
            scope,
            id_,
            terraform_resource_type=resource_type,
            provider=provider,
            depends_on=list(depends_on) if depends_on else None,
        )
        self._attributes = dict(attributes)

    @jsii.member(jsii_name="synthesizeAttributes")
    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._attributes


@dataclass(frozen=True)
class ExtraProviders:
    beta: TerraformProvider
    time: TerraformProvider


class GenericProvider(TerraformProvider):
    def __init__(self, scope: Construct, name: str, source: str, version: str) -> None:
        super().__init__(
            scope,
            name,
            terraform_resource_type=name,
            terraform_generator_metadata=TerraformProviderGeneratorMetadata(
                provider_name=name, provider_version_constraint=version
            ),
            terraform_provider_source=source,
        )


class WaitForPropagation(GenericResource):
    """`time_sleep`: what depends on it starts `seconds` after the last of `after` was
    created (IAM grants, a new log-based metric). Only a create sleeps: a later apply that
    changes nothing here does not wait again."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        providers: ExtraProviders,
        seconds: int,
        after: Sequence[ITerraformDependable],
        triggers: Mapping[str, str] | None = None,
    ) -> None:
        # `triggers`: values whose change replaces the sleep, so it sleeps again.
        super().__init__(
            scope,
            id_,
            resource_type="time_sleep",
            provider=providers.time,
            attributes={
                "create_duration": f"{seconds}s",
                **({"triggers": dict(triggers)} if triggers else {}),
            },
            depends_on=after,
        )
