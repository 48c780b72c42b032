"""`/account/v1.0/` (user_catalogs, quotas, service_quotas) and the token-only token request,
against a real blockd: what astakosclient sends, and bad input getting a 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from blockd_helpers import Daemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("astakos"))
    yield d
    d.stop_cleanly()


def test_user_catalogs_both_ways(daemon: Daemon) -> None:
    daemon.new_account("bob")
    c = daemon.client()
    r = c.request("POST", "/account/v1.0/user_catalogs", json.dumps({"uuids": ["bob", "nobody", "demo"]}).encode(),
                  {"Content-Type": "application/json"})
    assert r.status == 200 and r.json() == {"uuid_catalog": {"bob": "bob", "demo": "demo"}, "displayname_catalog": {}}
    r = c.request("POST", "/account/v1.0/service/user_catalogs/", json.dumps({"displaynames": ["bob", "x"]}).encode())
    assert r.status == 200 and r.json() == {"uuid_catalog": {}, "displayname_catalog": {"bob": "bob"}}


def test_quotas(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("q").status == 201
    assert c.put("q", "o", b"x" * 1000).status == 201
    r = c.request("GET", "/account/v1.0/quotas")
    assert r.status == 200
    disk = r.json()["demo"]["pithos.diskspace"]
    assert disk["usage"] == 1000 and disk["pending"] == 0 and disk["limit"] >= 10**30
    assert c.request("POST", "/object-store/v1/demo", headers={"X-Account-Policy-Quota": "5000"}).status == 202
    assert c.request("GET", "/account/v1.0/quotas").json()["demo"]["pithos.diskspace"]["limit"] == 5000
    r = c.request("GET", "/account/v1.0/service_quotas?user=demo")
    assert r.status == 200 and r.json()["demo"]["demo"]["pithos.diskspace"]["limit"] == 5000
    assert c.request("GET", "/account/v1.0/service_quotas?user=bob").status == 403


def test_token_only_request_answers_the_catalog(daemon: Daemon) -> None:
    c = daemon.client()
    r = c.request("POST", "/identity/v2.0/tokens", b"", {"Content-Type": "application/json"})
    assert r.status == 200
    doc = r.json()["access"]
    assert doc["user"]["id"] == "demo" and doc["token"]["id"] == daemon.token
    assert {s["name"] for s in doc["serviceCatalog"]} >= {"astakos_account", "pithos_object-store"}
    r = c.with_token("nfl_wrong").request("POST", "/identity/v2.0/tokens", b"")
    assert r.status == 401
    assert c.request("POST", "/identity/v2.0/tokens", b"", auth=False).status == 400


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/account/v1.0/user_catalogs", b"{not json", 400),
        ("POST", "/account/v1.0/user_catalogs", b'{"uuids": "bob"}', 400),
        ("POST", "/account/v1.0/user_catalogs", b'{"uuids": [' + b'"a",' * 1001 + b'"a"]}', 400),
        ("GET", "/account/v1.0/user_catalogs", None, 405),
        ("DELETE", "/account/v1.0/quotas", None, 405),
        ("GET", "/account/v1.0/commissions", None, 404),
        ("GET", "/account/v1.0/", None, 404),
    ],
)
def test_bad_requests_get_a_4xx(daemon: Daemon, method: str, path: str, body: bytes | None, status: int) -> None:
    r = daemon.client().request(method, path, body)
    assert r.status == status, r
    assert daemon.client().with_token("nfl_nope").request(method, path, body).status == 401
