"""The settings tables in docs/settings.md are the ones generated from the fields."""

from __future__ import annotations

from infra.model.config import ROOT
from infra.model.settings_tables import deployment_table, function_env_table


def test_docs_deployment_settings_table_is_current():
    doc = (ROOT / "docs" / "settings.md").read_text()
    assert deployment_table() in doc, (
        "docs/settings.md 'Deployment settings' table is stale: paste "
        "`python -m infra.model.settings_tables`"
    )


def test_docs_function_environment_table_is_current():
    doc = (ROOT / "docs" / "settings.md").read_text()
    assert function_env_table() in doc, (
        "docs/settings.md 'Function environment' table is stale: paste "
        "`python -m infra.model.settings_tables --function-env`"
    )
