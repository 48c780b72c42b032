"""net.pithos_sharing: X-Object-Sharing and X-Account-Group-* values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import InvalidGroup, InvalidSharing, ProtocolError
from net.pithos_sharing import (
    Sharing,
    format_group_header,
    format_sharing,
    group_name_from_header,
    parse_group_headers,
    parse_group_members,
    parse_sharing,
)


@pytest.mark.parametrize(
    ("value", "read", "write", "canonical"),
    [
        ("read=u1,acct:grp;write=u2", {"u1", "acct:grp"}, {"u2"}, "read=acct:grp,u1; write=u2"),
        ("read=u1", {"u1"}, set(), "read=u1"),
        ("write=u2", set(), {"u2"}, "write=u2"),
        ("read=*", {"*"}, set(), "read=*"),
        ("read=u1,*,u2;write=*", {"*"}, {"*"}, "read=*; write=*"),  # * absorbs its list
        ("read=u1,u1, u1", {"u1"}, set(), "read=u1"),  # duplicates collapse
        ("read=u1,u2;write=u1", {"u2"}, {"u1"}, "read=u2; write=u1"),  # write implies read
        ("read=u1;write=u1", set(), {"u1"}, "write=u1"),
        ("read=*;write=u1", {"*"}, {"u1"}, "read=*; write=u1"),
        ("  read = u1 , u2 ;  write = u3  ", {"u1", "u2"}, {"u3"}, "read=u1,u2; write=u3"),
        ("READ=u1;Write=u2", {"u1"}, {"u2"}, "read=u1; write=u2"),
        ("read=a;read=b", {"a", "b"}, set(), "read=a,b"),  # a repeated key adds up
        ("read=Alice,bob:Friends", {"Alice", "bob:friends"}, set(), "read=Alice,bob:friends"),
        (
            "read=user@example.org,0f1e2d3c-aaaa-bbbb-cccc-000000000000",
            {"user@example.org", "0f1e2d3c-aaaa-bbbb-cccc-000000000000"},
            set(),
            "read=0f1e2d3c-aaaa-bbbb-cccc-000000000000,user@example.org",
        ),
        ("read=Γιώργος", {"Γιώργος"}, set(), "read=Γιώργος"),
    ],
)
def test_parse_and_format(value: str, read: set[str], write: set[str], canonical: str) -> None:
    s = parse_sharing(value)
    assert s.read == read and s.write == write
    assert format_sharing(s) == canonical == s.format()
    assert parse_sharing(canonical) == s


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_empty_means_remove_sharing(value: str) -> None:
    s = parse_sharing(value)
    assert s == Sharing() and s.is_empty and format_sharing(s) == ""


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("read", "key=names"),
        ("read=", "empty name"),
        ("read=u1,,u2", "empty name"),
        ("read=u1,", "empty name"),
        ("read=u1;", "key=names"),
        (";read=u1", "key=names"),
        ("delete=u1", "unknown sharing key"),
        ("=u1", "unknown sharing key"),
        ("read=u 1", "bad character"),
        ("read=u1=u2", "bad character"),
        ("read=a/b", "bad character"),
        ("read=u\x00", "bad character"),
        ("read=u\u200b", "bad character"),
        ("read=**", "bad character"),
        ("read=a*", "bad character"),
        ("read=:grp", "empty account"),
        ("read=acct:", "empty group"),
        ("read=acct:g-1", "group name"),
        ("read=acct:g_1", "group name"),
        ("read=acct:g:h", "group name"),
        ("read=" + "x" * 257, "longer than"),
    ],
)
def test_malformed(value: str, why: str) -> None:
    with pytest.raises(InvalidSharing, match=why) as ei:
        parse_sharing(value)
    assert ei.value.status == 400


def test_constructor_normalises_and_validates() -> None:
    assert Sharing(read=frozenset({"a", "*"})) == Sharing(read=frozenset({"*"}))
    assert Sharing(read=frozenset({"a:G"})).read == {"a:g"}
    with pytest.raises(InvalidSharing):
        Sharing(write=frozenset({""}))


# --- groups ------------------------------------------------------------------------------


def test_group_headers() -> None:
    assert group_name_from_header("X-Account-Group-Friends") == "friends"
    assert group_name_from_header("x-account-group-team.a") == "team.a"
    assert group_name_from_header("X-Account-Meta-Friends") is None
    for bad in ("X-Account-Group-", "X-Account-Group-a-b", "X-Account-Group-a_b", "X-Account-Group-é"):
        with pytest.raises(InvalidGroup):
            group_name_from_header(bad)
    assert parse_group_members("u1, u2,u1") == {"u1", "u2"}
    assert parse_group_members("") == frozenset()  # delete the group
    assert parse_group_members(" , ,") == frozenset()
    assert parse_group_members("u1,,u2") == {"u1", "u2"}  # Pithos drops empty elements
    for bad in ("u1,a b", "acct:grp", "*", "a;b"):
        with pytest.raises(InvalidGroup):
            parse_group_members(bad)
    assert format_group_header("Friends", ["u2", "u1", "u2"]) == ("X-Account-Group-friends", "u1,u2")
    with pytest.raises(InvalidGroup):
        format_group_header("a-b", ["u1"])
    headers = {"X-Account-Group-A": "u1,u2", "X-Account-Group-b": "", "Content-Type": "x", "X-Account-Meta-C": "d"}
    assert parse_group_headers(headers) == {"a": frozenset({"u1", "u2"}), "b": frozenset()}
    assert parse_group_headers([("X-Account-Group-A", "u1")]) == {"a": frozenset({"u1"})}


# --- properties ----------------------------------------------------------------------------

_account = st.text(alphabet="abcXYZ019.@+-é", min_size=1, max_size=12)
_group = st.text(alphabet="abcdefz019.", min_size=1, max_size=8)
_principal = st.one_of(st.just("*"), _account, st.builds(lambda a, g: f"{a}:{g}", _account, _group))


@given(st.frozensets(_principal, max_size=6), st.frozensets(_principal, max_size=6))
def test_round_trip(read: frozenset[str], write: frozenset[str]) -> None:
    s = Sharing(read, write)
    assert parse_sharing(format_sharing(s)) == s
    assert not (s.read & s.write) or s.read == {"*"}
    assert "*" not in s.read or s.read == {"*"}


@given(st.lists(_principal, min_size=1, max_size=5), st.lists(_principal, max_size=5), st.sampled_from([" ", "", "\t"]))
def test_spacing_and_order_do_not_matter(read: list[str], write: list[str], ws: str) -> None:
    a = f"read={','.join(read)}" + (f";write={','.join(write)}" if write else "")
    b = (
        f"{ws}read{ws}={ws}"
        + f"{ws},{ws}".join(reversed(read))
        + (f"{ws};{ws}write={ws}" + f"{ws},".join(write) if write else "")
    )
    assert parse_sharing(a) == parse_sharing(b)


@given(st.text(max_size=60) | st.text(alphabet="readwit=,;:* \tAb", max_size=40))
def test_arbitrary_text_only_raises_typed_errors(text: str) -> None:
    for fn in (parse_sharing, parse_group_members, group_name_from_header):
        try:
            fn(text)
        except ProtocolError:
            pass
    try:
        s = parse_sharing(text)
    except InvalidSharing:
        return
    assert parse_sharing(format_sharing(s)) == s
