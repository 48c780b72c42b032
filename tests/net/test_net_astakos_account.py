"""net.astakos_account: the user_catalogs request astakosclient sends and the documents it reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.astakos_account import (
    DISKSPACE,
    MAX_BODY,
    MAX_NAMES,
    UNLIMITED,
    CatalogQuery,
    catalogs_document,
    parse_catalog_request,
    quotas_document,
)
from net.http_errors import BadRequest


def test_catalog_requests() -> None:
    assert parse_catalog_request(b'{"uuids": ["a", "b", "a"]}') == CatalogQuery(("a", "b"), ())
    assert parse_catalog_request(b'{"displaynames": ["x"]}') == CatalogQuery((), ("x",))
    assert parse_catalog_request(b'{"uuids": [], "displaynames": ["x"], "other": 1}') == CatalogQuery((), ("x",))
    assert parse_catalog_request(b"{}") == CatalogQuery()


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'"x"', b"{bad", b'{"uuids": "a"}', b'{"uuids": [1]}', b'{"displaynames": {"a": 1}}', b"\xff",
     b"[" * 50_000, b" " * (MAX_BODY + 1), json.dumps({"uuids": ["u"] * (MAX_NAMES + 1)}).encode()],
)
def test_bad_catalog_requests(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_catalog_request(body)


def test_documents() -> None:
    assert catalogs_document({"u": "U"}, {}) == {"uuid_catalog": {"u": "U"}, "displayname_catalog": {}}
    q = quotas_document("alice", None, 7)
    assert q == {"alice": {DISKSPACE: {"limit": UNLIMITED, "usage": 7, "pending": 0}}}
    assert quotas_document("alice", 0, 0)["alice"][DISKSPACE]["limit"] == UNLIMITED  # 0 = no quota
    assert quotas_document("alice", 100, 5)["alice"][DISKSPACE] == {"limit": 100, "usage": 5, "pending": 0}
    json.dumps(q)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    try:
        q = parse_catalog_request(body)
    except BadRequest:
        return
    assert all(isinstance(x, str) for x in (*q.uuids, *q.displaynames))


@given(st.dictionaries(st.sampled_from(["uuids", "displaynames", "x"]),
                       st.one_of(st.lists(st.text(max_size=5), max_size=5), st.integers(), st.none(), st.text())))
def test_any_document_parses_or_is_refused(doc: dict) -> None:
    try:
        parse_catalog_request(json.dumps(doc).encode())
    except BadRequest:
        pass
