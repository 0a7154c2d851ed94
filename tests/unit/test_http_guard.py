"""The request checks both local endpoints share, as pure functions (the servers themselves
are exercised over HTTP in test_local_endpoints.py)."""

from __future__ import annotations

from email.message import Message
from http import HTTPStatus

import pytest

from infra.local.http_guard import (
    Refused,
    check_host,
    check_same_origin,
    content_length,
    parse_json,
)

PORT = 8765


def headers(**values: str | list[str]) -> Message:
    message = Message()
    for name, value in values.items():
        for one in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = one
    return message


def refused(call, *args) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST:8765"]
)
def test_the_server_answers_to_its_own_names_on_its_own_port(host):
    check_host(host, PORT)


@pytest.mark.parametrize(
    "host",
    ["evil.example:8765", "evil.example", "127.0.0.1:8766", "127.0.0.1", "127.0.0.1.nip.io:8765"],
)
def test_any_other_host_is_refused_as_dns_rebinding_would_send_it(host):
    assert refused(check_host, host, PORT).status == HTTPStatus.FORBIDDEN


def test_a_request_without_host_is_refused():
    assert refused(check_host, None, PORT).status == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize(
    "values",
    [
        {},  # curl, requests: no browser page behind it
        {"Origin": "http://127.0.0.1:8765"},
        {"Origin": "http://localhost:8765", "Sec-Fetch-Site": "same-origin"},
        {"Referer": "http://127.0.0.1:8765/"},
    ],
)
def test_same_origin_and_non_browser_writes_pass(values):
    check_same_origin(headers(**values), PORT)


@pytest.mark.parametrize(
    "values",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # sandboxed frames, file: pages
        {"Origin": "http://127.0.0.1:9999"},  # another local service is another site
        {"Origin": "https://127.0.0.1:8765"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "http://evil.example/page"},
    ],
)
def test_cross_site_writes_are_refused(values):
    assert refused(check_same_origin, headers(**values), PORT).status == HTTPStatus.FORBIDDEN


def test_an_exact_length_is_taken():
    assert content_length(headers(Content_Length="12"), 100) == 12
    assert content_length(headers(Content_Length="0"), 100) == 0


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({}, HTTPStatus.LENGTH_REQUIRED),
        ({"Transfer-Encoding": "chunked"}, HTTPStatus.LENGTH_REQUIRED),
        ({"Transfer-Encoding": "chunked", "Content-Length": "5"}, HTTPStatus.LENGTH_REQUIRED),
        ({"Content-Length": "-1"}, HTTPStatus.BAD_REQUEST),
        ({"Content-Length": "abc"}, HTTPStatus.BAD_REQUEST),
        ({"Content-Length": "+5"}, HTTPStatus.BAD_REQUEST),
        ({"Content-Length": "1_0"}, HTTPStatus.BAD_REQUEST),  # int() would take it
        ({"Content-Length": "\u0663"}, HTTPStatus.BAD_REQUEST),  # an Arabic-Indic 3
        ({"Content-Length": ""}, HTTPStatus.BAD_REQUEST),
        ({"Content-Length": ["5", "6"]}, HTTPStatus.BAD_REQUEST),
        ({"Content-Length": "101"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    ],
)
def test_a_length_that_is_not_exact_and_bounded_is_refused(values, status):
    assert refused(content_length, headers(**values), 100).status == status


def test_json_is_strict_and_bounded_in_depth():
    assert parse_json(b'{"a": [1]}') == {"a": [1]}
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "deeper than" in refused(parse_json, deep).message  # no RecursionError
    nested = parse_json(b"[" * 32 + b"]" * 32)
    for _ in range(31):
        (nested,) = nested
    assert nested == []  # 32 deep is taken
    assert refused(parse_json, b"[" * 33 + b"]" * 33).status == HTTPStatus.BAD_REQUEST
    for bad in (b"{", b'{"a": NaN}', b"\xff", b""):
        assert refused(parse_json, bad).status == HTTPStatus.BAD_REQUEST
