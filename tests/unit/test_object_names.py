"""GCS's object naming rules, as the local stack's entry points apply them."""

from __future__ import annotations

import pytest

from infra.common.object_names import name_error
from tests.hostile_names import HOSTILE_NAMES


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "a", "x" * 1024, "é" * 512, "a/./b/../c", "/"])
def test_names_gcs_accepts_pass(name):
    assert name_error(name) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "You must specify an object name."),
        (".", "cannot be named . or .."),
        ("..", "cannot be named . or .."),
        ("x" * 1025, "1025 bytes long in UTF-8; the maximum is 1024"),
        ("é" * 513, "1026 bytes long"),
        ("line\nfeed.jpg", "Disallowed unicode characters"),
        ("carriage\rreturn.jpg", "Disallowed unicode characters"),
        (".well-known/acme-challenge/token", "cannot start with .well-known/acme-challenge/"),
        ("lone \ud800 surrogate", "not valid Unicode"),
    ],
)
def test_names_gcs_refuses_fail_with_its_message(name, message):
    assert message in (name_error(name) or "")


def test_only_the_exact_dot_names_and_the_acme_prefix_are_refused():
    assert name_error("./x") is None
    assert name_error("...") is None
    assert name_error("x/.well-known/acme-challenge/t") is None
    assert name_error(".well-known/acme-challenge") is None
