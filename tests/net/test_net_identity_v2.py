"""net.identity_v2: the token request kamaki sends and the access document it reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import BadRequest
from net.identity_v2 import (
    MAX_BODY,
    PasswordAuth,
    TokenAuth,
    access_document,
    parse_token_request,
    service_catalog,
)


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


def test_token_only_request_uses_the_header() -> None:
    # astakosclient's get_endpoints(): POST with X-Auth-Token and no body
    assert parse_token_request(b"", header_token="nfl_x") == TokenAuth("nfl_x")
    assert parse_token_request(b" \r\n", header_token="nfl_x") == TokenAuth("nfl_x")
    # a body wins over the header
    assert parse_token_request(b'{"auth": {"token": {"id": "b"}}}', header_token="h") == TokenAuth("b")
    with pytest.raises(BadRequest):
        parse_token_request(b"", header_token="")
    with pytest.raises(BadRequest):
        parse_token_request(b"{}", header_token="h")  # a body that is not a token request


def test_access_document_has_what_clients_read() -> None:
    doc = access_document("tok", "alice", 0.0, "http://h/object-store/v1", display_name="Alice A.")
    a = doc["access"]
    assert a["token"]["id"] == "tok" and a["user"]["id"] == "alice" and a["user"]["name"] == "Alice A."
    assert a["token"]["expires"] == "1970-01-01T00:00:00+00:00"
    by_type = {s["type"]: s for s in a["serviceCatalog"]}
    assert by_type["object-store"]["endpoints"][0]["publicURL"] == "http://h/object-store/v1"
    json.dumps(doc)  # serialisable as is


def _astakosclient_fill_endpoints(doc: dict) -> tuple[str, str]:
    """astakosclient 0.19's parse_endpoints(ep_name="astakos_account", ep_version_id="v1.0")
    and what _fill_endpoints reads of the match, restated."""
    catalog = [c for c in doc["access"]["serviceCatalog"] if c["name"] == "astakos_account"]
    for c in catalog:
        c["endpoints"] = [e for e in c["endpoints"] if e["versionId"] == "v1.0"]
    catalog = [c for c in catalog if c["endpoints"]]
    assert catalog, "NoEndpoints"
    ep = catalog[0]["endpoints"][0]
    return ep["publicURL"], ep["SNF:uiURL"]


def test_catalog_has_the_astakos_entries() -> None:
    doc = access_document("tok", "alice", 0.0, "http://h:8/object-store/v1")
    assert _astakosclient_fill_endpoints(doc) == ("http://h:8/account/v1.0", "http://h:8/ui")
    names = {s["name"]: s for s in doc["access"]["serviceCatalog"]}
    assert {"astakos_account", "astakos_weblogin", "astakos_identity", "pithos_object-store"} <= set(names)
    web = names["astakos_weblogin"]["endpoints"][0]
    assert web["versionId"] == "" and web["SNF:uiURL"] == "http://h:8/ui"
    ident = names["astakos_identity"]["endpoints"][0]
    assert (ident["versionId"], ident["publicURL"]) == ("v2.0", "http://h:8/identity/v2.0")
    # kamaki's get_service_endpoints(type): exactly one endpoint per type
    for s in doc["access"]["serviceCatalog"]:
        assert len(s["endpoints"]) == 1 and all(k in s["endpoints"][0] for k in ("versionId", "publicURL"))
    assert len({s["type"] for s in doc["access"]["serviceCatalog"]}) == len(doc["access"]["serviceCatalog"])


def test_catalog_base_url() -> None:
    assert service_catalog("https://n.example/")[0]["endpoints"][0]["publicURL"] == "https://n.example/object-store/v1"
    doc = access_document("t", "a", 0.0, "http://x/object-store/v1", base_url="https://pub")
    assert _astakosclient_fill_endpoints(doc)[0] == "https://pub/account/v1.0"


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
