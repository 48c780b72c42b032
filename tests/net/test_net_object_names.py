"""net.object_names: name validation and the /object-store/v1 and /v1 URL prefixes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import InvalidName, ProtocolError, UnknownPath
from net.object_names import (
    ObjectPath,
    parse_object_path,
    validate_account,
    validate_container,
    validate_object,
)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/object-store/v1", ObjectPath("pithos")),
        ("/object-store/v1/", ObjectPath("pithos")),
        ("/object-store/v1/user-uuid", ObjectPath("pithos", "user-uuid")),
        ("/object-store/v1/user-uuid/", ObjectPath("pithos", "user-uuid")),
        ("/object-store/v1/u/pithos", ObjectPath("pithos", "u", "pithos")),
        ("/object-store/v1/u/pithos/", ObjectPath("pithos", "u", "pithos")),
        ("/object-store/v1/u/pithos/a/b/c.txt", ObjectPath("pithos", "u", "pithos", "a/b/c.txt")),
        ("/v1", ObjectPath("swift")),
        ("/v1/AUTH_test", ObjectPath("swift", "AUTH_test")),
        ("/v1/AUTH_test/c/o", ObjectPath("swift", "AUTH_test", "c", "o")),
        ("/v1/a/c/dir/", ObjectPath("swift", "a", "c", "dir/")),  # a directory marker object
        ("/v1/a/c//x", ObjectPath("swift", "a", "c", "/x")),
        ("/v1/a/c/a//b", ObjectPath("swift", "a", "c", "a//b")),
        ("/v1/a/c/...", ObjectPath("swift", "a", "c", "...")),
        ("/v1/a/c/.hidden/..x", ObjectPath("swift", "a", "c", ".hidden/..x")),
        ("/v1/ά/κ/αντικείμενο ☃", ObjectPath("swift", "ά", "κ", "αντικείμενο ☃")),
    ],
)
def test_paths(path: str, want: ObjectPath) -> None:
    assert parse_object_path(path) == want


@pytest.mark.parametrize(
    "path", ["", "/", "/v2/a", "/v1a/b", "/object-store", "/object-store/v10/a", "v1/a", "/public/abc", "/V1/a"]
)
def test_unknown_prefixes(path: str) -> None:
    with pytest.raises(UnknownPath) as ei:
        parse_object_path(path)
    assert ei.value.status == 404


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/v1//c", "empty account"),
        ("/v1/a//o", "empty container"),
        ("/v1/./c", "account name cannot be"),
        ("/v1/../c", "account name cannot be"),
        ("/v1/a/..", "container name cannot be"),
        ("/v1/a/./o", "container name cannot be"),
        ("/v1/a/c/..", "segment"),
        ("/v1/a/c/../../etc/passwd", "segment"),
        ("/v1/a/c/x/./y", "segment"),
        ("/v1/a/c/x/..", "segment"),
        ("/v1/a/c/./", "segment"),
        ("/v1/a\x00/c", "NUL"),
        ("/v1/a/c\x00", "NUL"),
        ("/v1/a/c/o\x00", "NUL"),
        ("/v1/a/c/\udcff", "UTF-8"),
        ("/v1/" + "a" * 257, "longer than 256"),
        ("/v1/a/" + "c" * 257, "longer than 256"),
        ("/v1/a/c/" + "o" * 1025, "longer than 1024"),
        ("/v1/a/c/" + "é" * 513, "longer than 1024"),  # 1026 bytes of UTF-8
    ],
)
def test_rejected_names(path: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as ei:
        parse_object_path(path)
    assert ei.value.status == 400


def test_limits_are_bytes_and_inclusive() -> None:
    assert validate_account("a" * 256) == "a" * 256
    assert validate_container("é" * 128) == "é" * 128
    assert validate_object("o" * 1024) == "o" * 1024
    assert validate_object("é" * 512) == "é" * 512


def test_validators() -> None:
    assert validate_object(b"caf\xc3\xa9") == "café"
    with pytest.raises(InvalidName, match="UTF-8"):
        validate_object(b"caf\xe9")
    with pytest.raises(InvalidName, match="UTF-8"):
        validate_container(b"\xed\xa0\x80")  # an encoded surrogate
    with pytest.raises(InvalidName, match="'/'"):
        validate_container("a/b")
    with pytest.raises(InvalidName, match="'/'"):
        validate_account("a/b")
    with pytest.raises(InvalidName, match="empty"):
        validate_object("")
    assert validate_object("/") == "/"
    assert validate_object(". /. .") == ". /. ."


def test_custom_prefixes() -> None:
    prefixes = (("/object-store/v1.0", "pithos"), ("/object-store/v1", "pithos"))
    assert parse_object_path("/object-store/v1.0/a/c/o", prefixes=prefixes) == ObjectPath("pithos", "a", "c", "o")  # type: ignore[arg-type]


@given(st.text(max_size=40) | st.text(alphabet="/v1.a\x00é", max_size=20).map(lambda s: "/v1/" + s))
def test_arbitrary_paths_only_raise_typed_errors(path: str) -> None:
    try:
        p = parse_object_path(path)
    except ProtocolError:
        return
    for seg in (p.account, p.container):
        assert seg is None or (seg and "/" not in seg and seg not in (".", ".."))
    if p.object is not None:
        assert ".." not in p.object.split("/") and "." not in p.object.split("/")


_seg = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"), min_size=1, max_size=10).filter(
    lambda s: s not in (".", "..")
)


@given(_seg, _seg, st.lists(_seg, min_size=1, max_size=5))
def test_build_and_parse_round_trip(account: str, container: str, parts: list[str]) -> None:
    obj = "/".join(parts)
    for prefix, api in (("/object-store/v1", "pithos"), ("/v1", "swift")):
        assert parse_object_path(f"{prefix}/{account}/{container}/{obj}") == ObjectPath(api, account, container, obj)  # type: ignore[arg-type]
