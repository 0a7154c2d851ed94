"""Names printed on an operator's terminal cannot drive it."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from infra.common.terminal import printable
from infra.ops import backfill
from infra.ops.dead_letters import print_table


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("photo.jpg", "photo.jpg"),
        ("写真 🐈.jpg", "写真 🐈.jpg"),  # printable scripts and emoji stay as they are
        ("\x1b]0;pwned\x07a.jpg", "\\x1b]0;pwned\\x07a.jpg"),  # a title-setting OSC
        ("\x1b[2J\x1b[Hclear", "\\x1b[2J\\x1b[Hclear"),
        ("a\rb\nc\td", "a\\x0db\\x0ac\\x09d"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("abc\u202egpj.exe", "abc\\u202egpj.exe"),  # a right-to-left override
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("back\\x1bslash", "back\\\\x1bslash"),  # a literal backslash cannot pass for ESC
    ],
)
def test_non_printable_characters_are_escaped_and_escapes_are_unambiguous(name, shown):
    assert printable(name) == shown


def test_everything_printed_is_free_of_control_characters():
    hostile = "".join(chr(c) for c in range(0x20)) + "\x7f\x85\u2028\u202e\ufeff"
    assert printable(hostile).isprintable()


def test_the_dead_letter_table_escapes_names():
    out = io.StringIO()
    row = {"id": "1", "status": "recorded", "event": "image.failed gs://b/\x1b[31mred"}
    print_table([row], out)
    assert "\x1b" not in out.getvalue() and "\\x1b[31mred" in out.getvalue()


class _Blob(SimpleNamespace):
    pass


def test_backfill_lines_escape_names(tmp_path, monkeypatch):
    name = "evil\x1b[2J.jpg"
    blob = _Blob(name=name, generation=5, metadata=None, bucket=SimpleNamespace(name="up"))
    monkeypatch.setattr(backfill, "_listing", lambda *args: iter([(blob, None)]))
    target = SimpleNamespace(uploads_bucket="up")
    out, err = io.StringIO(), io.StringIO()
    backfill.run(target, checkpoint_path=tmp_path / "c.json", out=out, err=err, limit=1)
    assert "\x1b" not in out.getvalue() + err.getvalue()
    assert "gs://up/evil\\x1b[2J.jpg#5" in out.getvalue()
