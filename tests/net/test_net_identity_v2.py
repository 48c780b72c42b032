"""net.identity_v2: the token request kamaki sends and the access document it reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import BadRequest
from net.identity_v2 import MAX_BODY, PasswordAuth, TokenAuth, access_document, parse_token_request


def test_token_and_password_forms() -> None:
    assert parse_token_request(b'{"auth": {"token": {"id": "abc"}}}') == TokenAuth("abc")
    body = b'{"auth": {"passwordCredentials": {"username": "alice", "password": "k"}}, "extra": 1}'
    assert parse_token_request(body) == PasswordAuth("alice", "k")
    # a token wins over credentials when both are given (what Astakos does)
    both = {"auth": {"token": {"id": "t"}, "passwordCredentials": {"username": "u", "password": "p"}}}
    assert parse_token_request(json.dumps(both).encode()) == TokenAuth("t")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[]",
        b'"auth"',
        b'{"auth": []}',
        b'{"auth": {}}',
        b'{"auth": {"token": {"id": 5}}}',
        b'{"auth": {"token": {"id": ""}}}',
        b'{"auth": {"passwordCredentials": {"username": "u"}}}',
        b'{"auth": {"passwordCredentials": {"username": "", "password": "p"}}}',
        b"\xff\xfe",
        b"[" * 100_000,
        b" " * (MAX_BODY + 1),
    ],
)
def test_bad_requests(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_token_request(body)


def test_access_document_has_what_clients_read() -> None:
    doc = access_document("tok", "alice", 0.0, "http://h/object-store/v1")
    a = doc["access"]
    assert a["token"]["id"] == "tok" and a["user"]["id"] == "alice"
    assert a["token"]["expires"] == "1970-01-01T00:00:00+00:00"
    [svc] = a["serviceCatalog"]
    assert svc["type"] == "object-store" and svc["endpoints"][0]["publicURL"] == "http://h/object-store/v1"
    json.dumps(doc)  # serialisable as is


@given(st.binary(max_size=512))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    try:
        got = parse_token_request(body)
    except BadRequest:
        return
    assert isinstance(got, TokenAuth | PasswordAuth)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_any_json_parses_or_is_refused(doc: object) -> None:
    try:
        parse_token_request(json.dumps(doc).encode())
    except BadRequest:
        pass


@given(st.text(min_size=1), st.text(min_size=1), json_values)
def test_credentials_round_trip(user: str, password: str, extra: object) -> None:
    body = json.dumps({"auth": {"passwordCredentials": {"username": user, "password": password}, "x": extra}})
    assert parse_token_request(body.encode()) == PasswordAuth(user, password)
    assert parse_token_request(json.dumps({"auth": {"token": {"id": user}}}).encode()) == TokenAuth(user)
