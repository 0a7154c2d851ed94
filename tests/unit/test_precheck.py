"""What scripts/cdktf checks before a synth (infra.deploy.precheck), with the credentials and
the state bucket's answer faked: which problem comes first, and that each is one line."""

from __future__ import annotations

import pytest

from infra.deploy import precheck

CREDENTIALS = (object(), "ci@p.iam.gserviceaccount.com")


def _problem(argv, monkeypatch, credentials=CREDENTIALS, bucket=None, **environ):
    for key, value in {"PIPELINE_PROJECT": "real-project-1", **environ}.items():
        monkeypatch.setenv(key, value)
    asked = []

    def state_bucket(creds, who, name):
        asked.append(name)
        return bucket

    return precheck.problem(argv, lambda: credentials, state_bucket), asked


@pytest.mark.parametrize("verb", ["synth", "output", "stacks", "get"])
def test_only_what_reaches_gcp_is_checked(verb, monkeypatch):
    assert _problem([verb, "image-pipeline"], monkeypatch, credentials=(None, "")) == (None, [])


def test_without_credentials_one_line_says_how_to_get_them(monkeypatch):
    found, _ = _problem(["deploy", "image-pipeline"], monkeypatch, credentials=(None, ""))
    assert found is not None and "\n" not in found
    assert found.startswith("no Application Default Credentials")
    assert "gcloud auth application-default login" in found


def test_the_example_project_is_refused(monkeypatch):
    found, _ = _problem(["diff", "image-pipeline"], monkeypatch, PIPELINE_PROJECT="my-gcp-project")
    assert found is not None and "the example" in found and "cdktf.json" in found


def test_the_state_bucket_is_asked_only_when_set(monkeypatch):
    assert _problem(["deploy"], monkeypatch) == (None, [])
    found, asked = _problem(
        ["deploy"], monkeypatch, bucket="it does not exist", PIPELINE_STATE_BUCKET="team-tf"
    )
    assert (found, asked) == ("it does not exist", ["team-tf"])


def test_a_destroy_needs_the_project_named_before_anything_else(monkeypatch):
    found, _ = _problem(["destroy", "image-pipeline"], monkeypatch, credentials=(None, ""))
    assert found is not None
    assert found.endswith("confirm with PIPELINE_CONFIRM_DESTROY_DATA=real-project-1")
    confirmed = {"PIPELINE_CONFIRM_DESTROY_DATA": "real-project-1"}
    assert _problem(["destroy", "image-pipeline"], monkeypatch, **confirmed) == (None, [])


def test_a_bad_setting_is_named(monkeypatch):
    found, _ = _problem(["deploy"], monkeypatch, PIPELINE_REGION="nowhere")
    assert found is not None and found.startswith("pipeline.region: ")
