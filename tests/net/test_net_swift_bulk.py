"""net/swift_bulk: the bulk delete body as Swift's bulk middleware reads it, and the
XML answer laid out as Swift's get_heartbeat_response_body lays it out."""

from __future__ import annotations

import json
from xml.dom import minidom

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import PayloadTooLarge
from net.swift_bulk import BulkName, max_body_size, parse_bulk_delete
from net.swift_slo import BulkDeleteResult, format_bulk_delete


def test_lines_name_objects_then_containers_as_sent() -> None:
    body = b"/c/o\n  c2/a%20b/c  \n\n/c3\r\n%E2%98%83/x\n"
    assert parse_bulk_delete(body) == [
        BulkName("/c/o", "c", "o"),
        BulkName("c2/a%20b/c", "c2", "a b/c"),
        BulkName("/c3", "c3", None),
        BulkName("%E2%98%83/x", "\u2603", "x"),
    ]


def test_a_bad_line_is_an_error_of_its_own() -> None:
    got = parse_bulk_delete(b"/c/%FF\n/c/ok\n/%00/x\n" + b"/c/" + b"x" * 9000 + b"\n/c/../\n")
    assert [n.error for n in got] == ["412 Precondition Failed", None, "400 Bad Request", "400 Bad Request", "400 Bad Request"]
    assert got[1] == BulkName("/c/ok", "c", "ok")


def test_too_many_names_is_413() -> None:
    assert len(parse_bulk_delete(b"c/o\n" * 3, max_deletes=3)) == 3
    with pytest.raises(PayloadTooLarge) as exc:
        parse_bulk_delete(b"c/o\n" * 4, max_deletes=3)
    assert exc.value.status == 413 and "Maximum Bulk Deletes: 3" in exc.value.reason
    assert max_body_size(2) > 2 * 1024


@given(st.binary(max_size=300))
def test_any_body_parses_or_is_too_large(body: bytes) -> None:
    for n in parse_bulk_delete(body):
        assert (n.error is None) == (n.container is not None)


def test_xml_answer_as_swift_lays_it_out() -> None:
    r = BulkDeleteResult(deleted=2, not_found=1, errors=[("/c/a&b", "403 Forbidden")])
    xml = format_bulk_delete(r, "xml")
    assert xml == (
        b"<delete>\n<number_deleted>2</number_deleted>\n<number_not_found>1</number_not_found>\n"
        b"<response_body></response_body>\n<response_status>400 Bad Request</response_status>\n"
        b"<errors>\n<object><name>/c/a&amp;b</name><status>403 Forbidden</status></object>\n</errors>\n</delete>\n"
    )
    assert minidom.parseString(xml).documentElement.tagName == "delete"
    aborted = json.loads(format_bulk_delete(BulkDeleteResult(), "json", aborted=True))
    assert aborted["Response Status"] == "400 Bad Request" and aborted["Response Body"] == "Max delete failures exceeded"
