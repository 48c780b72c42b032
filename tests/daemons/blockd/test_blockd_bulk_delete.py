"""Swift's bulk delete against a real nefeli-blockd: objects then containers, counts,
per-name errors (rights, a container that is not empty, bad names), the answer in
each format, /info listing it, and python-swiftclient's `swift delete` using it."""

from __future__ import annotations

import json
import os
import subprocess
from xml.dom import minidom

import pytest

from blockd_helpers import Client, Daemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-bulk"))
    yield d
    d.stop_cleanly()


def bulk(c: Client, body: bytes, path: str = "", accept: str = "application/json", method: str = "POST"):
    return c.request(method, c.p(*[p for p in path.split("/") if p], api="swift", query="bulk-delete"), body,
                     {"Accept": accept, "Content-Type": "text/plain"})


def test_objects_then_containers_with_counts_and_errors(daemon: Daemon) -> None:
    c = daemon.client()
    for cont in ("b1", "b2"):
        assert c.request("PUT", c.p(cont, api="swift")).status == 201
    for name in ("x", "y z", "keep"):
        assert c.request("PUT", c.p("b1", name, api="swift"), b"1").status == 201
    c.request("PUT", c.p("b2", "o", api="swift"), b"1")
    # containers listed before their objects still go: objects are deleted first
    body = b"/b1\n/b1/x\nb1/y%20z\n/b1/nosuch\n/b2\n/b2/%FF\n"
    r = bulk(c, body)
    assert r.status == 200 and r.h("content-type").startswith("application/json")
    doc = r.json()
    assert (doc["Number Deleted"], doc["Number Not Found"]) == (2, 1)
    assert sorted(map(tuple, doc["Errors"])) == [("/b1", "409 Conflict"), ("/b2", "409 Conflict"), ("/b2/%FF", "412 Precondition Failed")]
    assert doc["Response Status"] == "400 Bad Request"
    names = c.request("GET", c.p("b1", api="swift")).body.split()
    assert names == [b"keep"]
    r = bulk(c, b"/b1/keep\n/b1\n", path="b1/keep", accept="application/xml", method="DELETE")
    tree = minidom.parseString(r.body)
    assert tree.documentElement.tagName == "delete"
    assert tree.getElementsByTagName("number_deleted")[0].firstChild.data == "2"
    assert tree.getElementsByTagName("response_status")[0].firstChild.data == "200 OK"
    assert c.request("HEAD", c.p("b1", api="swift")).status == 404
    text = bulk(c, b"/b2/o\n", accept="text/plain").body.decode()
    assert "Number Deleted: 1\n" in text and text.endswith("Errors:\n")


def test_another_users_names_are_403s(daemon: Daemon) -> None:
    c = daemon.client()
    c.request("PUT", c.p("mine", api="swift"))
    c.request("PUT", c.p("mine", "o", api="swift"), b"1")
    eve = daemon.client(daemon.new_account("eve"), account="demo")  # eve, naming demo's account
    r = bulk(eve, b"/mine/o\n/mine\n")
    assert r.status == 200
    assert sorted(map(tuple, r.json()["Errors"])) == [("/mine", "403 Forbidden"), ("/mine/o", "403 Forbidden")]
    assert c.request("HEAD", c.p("mine", "o", api="swift")).status == 200


def test_bad_requests(daemon: Daemon) -> None:
    c = daemon.client()
    r = c.request("POST", c.p(api="swift", query="bulk-delete"), b"/a/b", {"Content-Type": "application/json"})
    assert r.status == 406
    r = c.request("POST", c.p(api="swift", query="bulk-delete"), b"/a/b\n" * 10001, {"Content-Type": "text/plain"})
    assert r.status == 413 and b"Maximum Bulk Deletes" in r.body


def test_info_lists_bulk_delete(daemon: Daemon) -> None:
    info = Client(daemon.port).request("GET", "/info", auth=False).json()
    assert info["bulk_delete"] == {"max_deletes_per_request": 10000, "max_failed_deletes": 1000}
