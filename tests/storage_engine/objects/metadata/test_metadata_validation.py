"""Input validation, typed errors, sharing syntax and key-range arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage_engine.objects.metadata import Sharing, errors, parse_sharing
from storage_engine.objects.metadata import validation as v
from storage_engine.objects.metadata.keys import upper_bound
from storage_engine import errors as kinds


def test_object_names() -> None:
    assert v.object_name("a/b c/ü") == "a/b c/ü"
    assert v.object_name("€" * 341)  # 1023 bytes
    for bad in ("", "a\x00", "€" * 342, "x" * 1025, "lone\ud800surrogate"):
        with pytest.raises(errors.InvalidName):
            v.object_name(bad)
    with pytest.raises(errors.InvalidName):
        v.object_name(b"bytes")  # type: ignore[arg-type]


def test_container_and_account_names() -> None:
    assert v.container_name("pics.2024") == "pics.2024"
    for bad in ("", "a/b", "x" * 257, "a\x00"):
        with pytest.raises(errors.InvalidName):
            v.container_name(bad)
    assert v.account_name("user@example.org") == "user@example.org"
    assert v.account_name("5ae3f1d2-uuid") == "5ae3f1d2-uuid"
    for bad in ("", "a b", "a:b", "a,b", "a;b", "a=b", "a/b", "x" * 257, "tab\t"):
        with pytest.raises(errors.InvalidName):
            v.account_name(bad)


def test_content_types() -> None:
    # as Swift: any UTF-8 text a header can carry (its tests store random words and
    # UTF-8 names as types); what would break the header or the storage is refused
    for good in ("text/plain", "application/directory", 'text/plain; charset="utf-8"', "a/b;x=1;y=2",
                 "text", "text/", "/plain", "a b/c", "6f1d2c", "蔊댎ः/x"):
        assert v.content_type(good) == good
    for bad in ("", "  ", "text/plain\r\nX-Injected: 1", "a\x00b", "a\tb", "t" * 300 + "/x", "x\udcff"):
        with pytest.raises(errors.InvalidContentType):
            v.content_type(bad)


def test_metadata() -> None:
    assert v.meta_update({"Content-Lang": "el", "X": None, "Y": ""}) == {"content-lang": "el", "x": None, "y": None}
    for bad in ({"": "v"}, {"a b": "v"}, {"k" * 129: "v"}, {"k": "v" * 257}, {"k": "a\nb"}, {"k": "\x00"}):
        with pytest.raises(errors.InvalidMetadata):
            v.meta_update(bad)
    assert v.apply_meta({"a": "1", "b": "2"}, {"a": None, "c": "3"}, replace=False) == {"b": "2", "c": "3"}
    assert v.apply_meta({"a": "1"}, {"c": "3"}, replace=True) == {"c": "3"}


def test_sharing_syntax() -> None:
    s = parse_sharing(" read = u1, alice:Team ,* ; write=u2 ")
    assert s == Sharing(read=frozenset({"u1", "alice:team", "*"}), write=frozenset({"u2"}))
    assert parse_sharing(s.format()) == s
    assert parse_sharing("read=u1;write=u1") == Sharing(read=frozenset(), write=frozenset({"u1"}))
    assert not parse_sharing("")
    for bad in ("read", "admin=u1", "read=a b", "read=:grp", "write=acct:bad grp"):
        with pytest.raises(errors.InvalidSharing) as exc:
            parse_sharing(bad)
        assert isinstance(exc.value, kinds.InvalidArgument)


def test_policy_values() -> None:
    assert v.block_size(4 * 1024 * 1024) == 4194304
    for bad in (0, 511, 1000, 3 << 20, 1 << 31, True, 4.0):
        with pytest.raises(errors.InvalidPolicy):
            v.block_size(bad)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgument):
        v.limit(10001)


def test_error_kinds() -> None:
    """Each metadata error is one of the engine's kinds, and carries no protocol status."""
    assert issubclass(errors.InvalidName, kinds.InvalidArgument) and issubclass(errors.ObjectNotFound, kinds.NotFound)
    assert issubclass(errors.ContainerNotEmpty, kinds.Conflict)
    assert issubclass(errors.PreconditionFailed, kinds.PreconditionFailed)
    assert issubclass(errors.QuotaExceeded, kinds.QuotaExceeded) and issubclass(errors.Busy, kinds.Busy)
    assert not issubclass(errors.SchemaTooNew, (kinds.InvalidArgument, kinds.NotFound, kinds.Conflict))
    assert not any(hasattr(cls, "status") for cls in vars(errors).values() if isinstance(cls, type))
    assert issubclass(errors.ObjectNotFound, errors.NotFound) and issubclass(errors.NotFound, LookupError)


TEXT = st.text(st.sampled_from(["a", "b", "\ud7ff", "\ue000", "\U0010ffff", "\x01"]), max_size=5)


@given(prefix=TEXT, s=TEXT)
def test_upper_bound_brackets_exactly_the_prefixed_strings(prefix: str, s: str) -> None:
    hi = upper_bound(prefix)
    if prefix == "" or set(prefix) == {"\U0010ffff"}:
        assert hi is None
        return
    assert hi is not None and hi > prefix
    hi.encode("utf-8")  # never a surrogate: SQLite must be able to store it
    if s.startswith(prefix):
        assert s < hi
    elif s >= prefix:
        assert s >= hi


def test_upper_bound_edges() -> None:
    assert upper_bound("a/") == "a0"
    assert upper_bound("x\ud7ff") == "x\ue000"
    assert upper_bound("x\U0010ffff") == "y"
