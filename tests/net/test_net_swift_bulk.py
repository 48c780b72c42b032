"""net.swift_bulk byte for byte: the bulk-delete list and the three result formats as
Swift's bulk middleware writes them, and the list parser on any input."""

from __future__ import annotations

import json
from urllib.parse import quote
from xml.dom import minidom

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.swift_bulk import BulkResult, InvalidBulkList, format_result, parse_delete_list, pick_format


def test_delete_list_decodes_and_drops_blank_lines() -> None:
    body = b"/c/o%20one\n\n  c/%E2%82%AC  \r\n/c2\n"
    assert parse_delete_list(body, max_items=10, max_line=100) == ["/c/o one", "c/€", "/c2"]


def test_delete_list_limits() -> None:
    with pytest.raises(InvalidBulkList, match="Maximum"):
        parse_delete_list(b"a\nb\nc\n", max_items=2, max_line=100)
    with pytest.raises(InvalidBulkList, match="Invalid File Name"):
        parse_delete_list(b"c/" + b"x" * 200, max_items=2, max_line=100)
    with pytest.raises(InvalidBulkList, match="UTF-8"):
        parse_delete_list(b"c/%FF", max_items=2, max_line=100)


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), max_size=20))
def test_delete_list_round_trip(names: list[str]) -> None:
    names = [n for n in names if n.strip()]
    body = "\n".join(quote(n, safe="/") for n in names).encode()
    assert parse_delete_list(body, max_items=100, max_line=1000) == names


@given(st.binary(max_size=300))
def test_delete_list_refuses_only_with_its_error(body: bytes) -> None:
    try:
        out = parse_delete_list(body, max_items=5, max_line=50)
    except InvalidBulkList:
        return
    assert len(out) <= 5 and all(out)


@pytest.mark.parametrize(
    "accept,want",
    [
        (None, "text/plain"), ("", "text/plain"), ("application/json", "application/json"),
        ("text/xml", "text/xml"), ("application/xml;q=0.5, application/json", "application/json"),
        ("*/*", "text/plain"), ("application/*", "application/json"), ("image/png", None),
        ("text/plain;q=0, application/json;q=0.1", "application/json"), ("application/json;q=bad", None),
    ],
)
def test_pick_format(accept: str | None, want: str | None) -> None:
    assert pick_format(accept) == want


def result() -> BulkResult:
    return BulkResult("400 Bad Request", "", {"Number Deleted": 2, "Number Not Found": 1}, [("/c/a&b", "409 Conflict")])


def test_text_result_is_swifts_layout() -> None:
    assert format_result("text/plain", result(), "delete") == (
        b"Number Deleted: 2\nNumber Not Found: 1\nResponse Body: \nResponse Status: 400 Bad Request\n"
        b"Errors:\n/c/a&b, 409 Conflict\n"
    )


def test_json_result() -> None:
    assert json.loads(format_result("application/json", result(), "delete")) == {
        "Number Deleted": 2, "Number Not Found": 1, "Response Body": "", "Response Status": "400 Bad Request",
        "Errors": [["/c/a&b", "409 Conflict"]],
    }


def test_xml_result() -> None:
    body = format_result("application/xml", result(), "delete")
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<delete>\n<number_deleted>2</number_deleted>\n'
        b"<number_not_found>1</number_not_found>\n<response_body></response_body>\n"
        b"<response_status>400 Bad Request</response_status>\n<errors>\n"
        b"<object><name>/c/a&amp;b</name><status>409 Conflict</status></object>\n</errors>\n</delete>\n"
    )
    assert minidom.parseString(body).documentElement.tagName == "delete"
