"""The smoke test's inputs and verdict (its run against a stack: tests/integration)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from image_pipeline import imaging
from image_pipeline.errors import PermanentError
from image_pipeline.settings import Settings
from infra.model.config import load_config
from infra.ops.smoke import Report, samples

OPTIONS = imaging.Options.from_tunables(
    Settings(project="p", uploads_bucket="u", thumbnails_bucket="t", image_events_topic="e")
)


def test_samples_are_what_the_checks_expect():
    photo, png, avatar, corrupt = samples()
    with Image.open(io.BytesIO(photo.data)) as im:
        assert im.getexif()[0x0112] == 6 and im.size == (640, 480)
    with Image.open(io.BytesIO(png.data)) as im:
        assert im.mode == "RGBA" and im.getextrema()[3] == (0, 255)
    # The real core gives the outcomes the smoke test waits for.
    facts = imaging.make_thumbnails(photo.data, OPTIONS).facts
    assert (facts.width, facts.height) == (480, 640)
    assert imaging.make_thumbnails(png.data, OPTIONS).thumbnails
    # The repository's cdktf.json gives the avatar its example rule: cover squares.
    settings = Settings.wired(
        load_config(),
        project="p",
        uploads_bucket="u",
        thumbnails_bucket="t",
        image_events_topic="e",
    )
    outputs = settings.outputs.outputs_for(f"smoke/run/{avatar.name}")
    assert outputs.rule == "avatars" and {b.mode for b in outputs.sizes} == {"cover"}
    made = imaging.make_thumbnails(avatar.data, imaging.Options.from_tunables(settings, outputs))
    assert {(t.width, t.height) for t in made.thumbnails} == {
        (b.width, b.height) for b in outputs.sizes
    }
    with pytest.raises(PermanentError) as rejected:
        imaging.make_thumbnails(corrupt.data, OPTIONS)
    assert rejected.value.reason == corrupt.expect_reason == "corrupt"


def test_report_names_the_failing_stage_and_checks():
    out = io.StringIO()
    report = Report(out)
    with report.stage("upload"):
        report.check("upload 3 files", True)
    with report.stage("process"):
        report.check("photo.jpg processed", False, "no final document")
        report.check("alpha.png processed", True)
    assert not report.passed
    report.print_tables()
    text = out.getvalue()
    assert "photo.jpg processed  FAIL    no final document" in text
    assert text.rstrip().endswith("smoke test FAILED in stage process: photo.jpg processed")
    assert [name for name, _ in report.timings] == ["upload", "process"]


def test_a_report_without_checks_does_not_pass():
    assert not Report(io.StringIO()).passed
