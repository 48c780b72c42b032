"""net.swift_tempurl byte for byte: signatures as python-swiftclient makes them, every
accepted signature form, and the parsers never failing with anything but their refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.swift_tempurl import (
    DIGESTS,
    Signature,
    content_disposition,
    parse_expires,
    parse_query,
    parse_signature,
    sign,
    signed_path,
    string_to_sign,
    verify,
)

swiftclient_utils = pytest.importorskip("swiftclient.utils", reason="python-swiftclient not installed (pip install .[test])")


def test_string_to_sign_is_swifts_layout() -> None:
    assert string_to_sign("GET", 1512508563, "/v1/AUTH_a/c/o") == b"GET\n1512508563\n/v1/AUTH_a/c/o"
    assert string_to_sign("PUT", 7, "prefix:/v1/a/c/p", "10.0.0.0/8") == b"ip=10.0.0.0/8\nPUT\n7\nprefix:/v1/a/c/p"
    assert signed_path("a", "c", "dir/o") == "/v1/a/c/dir/o"
    assert signed_path("a", "c", "dir/o", "dir/") == "prefix:/v1/a/c/dir/"
    assert signed_path("a", "c", "o", "") == "prefix:/v1/a/c/"


@pytest.mark.parametrize("digest", sorted(DIGESTS))
@pytest.mark.parametrize("iso", [False, True])
@pytest.mark.parametrize("prefix", [False, True])
def test_signature_of_swiftclient_verifies(digest: str, iso: bool, prefix: bool) -> None:
    """swiftclient's generate_temp_url is an independent signer: what it makes, we accept."""
    url = swiftclient_utils.generate_temp_url(
        "/v1/AUTH_test/cont/dir/ob ject€", 1_700_000_000, "s3cr3t", "PUT", absolute=True, iso8601=iso,
        prefix=prefix, digest=digest, ip_range="127.0.0.1",
    )
    qs = {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    q = parse_query(qs)
    assert q.present and q.ip_range == "127.0.0.1"
    assert q.expires is not None and q.sig is not None
    expires = parse_expires(q.expires)
    assert expires == 1_700_000_000
    sig = parse_signature(q.sig)
    assert sig.digest == digest
    path = signed_path("AUTH_test", "cont", "dir/ob ject€", q.prefix)
    assert q.prefix == ("dir/ob ject€" if prefix else None)
    assert verify(sig, ["other", "s3cr3t"], "PUT", expires, path, q.ip_range) == "s3cr3t"
    assert verify(sig, ["s3cr3t"], "HEAD", expires, path, q.ip_range) == "s3cr3t"  # a PUT URL may be HEADed
    assert verify(sig, ["s3cr3t"], "GET", expires, path, q.ip_range) is None
    assert verify(sig, ["s3cr3t"], "PUT", expires + 1, path, q.ip_range) is None
    assert verify(sig, ["s3cr3t"], "PUT", expires, path, None) is None


def test_head_is_not_admitted_by_a_delete_signature() -> None:
    mac = sign("k", "DELETE", 10, "/v1/a/c/o")
    assert verify(Signature("sha256", mac), ["k"], "HEAD", 10, "/v1/a/c/o") is None
    assert verify(Signature("sha256", mac), ["k"], "DELETE", 10, "/v1/a/c/o") == "k"


@given(st.sampled_from(sorted(DIGESTS)), st.data())
def test_every_signature_form_parses_to_the_same_mac(digest: str, data: st.DataObject) -> None:
    mac = data.draw(st.binary(min_size=DIGESTS[digest] // 2, max_size=DIGESTS[digest] // 2))
    want = Signature(digest, mac)
    std = base64.b64encode(mac).decode()
    url = base64.urlsafe_b64encode(mac).decode()
    for form in (mac.hex(), mac.hex().upper(), f"{digest}:{std}", f"{digest}:{std.rstrip('=')}", f"{digest}:{url}",
                 f"{digest}:{url.rstrip('=')}"):
        assert parse_signature(form) == want, form


@given(st.text(max_size=200))
def test_signature_parser_refuses_only_with_value_error(raw: str) -> None:
    try:
        sig = parse_signature(raw)
    except ValueError:
        return
    assert len(sig.mac) * 2 == DIGESTS[sig.digest]


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "g" * 64, "a" * 63, "md5:" + base64.b64encode(b"x" * 16).decode(), "sha256:" + base64.b64encode(b"x" * 20).decode(),
     "sha1:!!!!", "sha256:", ":" + "a" * 64],
)
def test_bad_signatures_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_signature(raw)


@given(st.integers(min_value=0, max_value=253402300799))
def test_expires_in_both_forms(t: int) -> None:
    import time

    assert parse_expires(str(t)) == t
    assert parse_expires(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))) == t


@given(st.text(max_size=40))
def test_expires_parser_never_raises(raw: str) -> None:
    v = parse_expires(raw)
    assert v is None or v >= 0


@pytest.mark.parametrize("raw", ["", "-5", "253402300800", "9" * 40, "1.5", "2026-13-01T00:00:00Z", "2026-01-01 00:00:00", "2026-01-01T00:00:00", "١٢٣"])
def test_bad_expires(raw: str) -> None:
    assert parse_expires(raw) is None


def test_hmac_matches_hashlib() -> None:
    for d in DIGESTS:
        want = hmac.new(b"key", b"GET\n5\n/v1/a/c/o", getattr(hashlib, d)).digest()
        assert sign("key", "GET", 5, "/v1/a/c/o", d) == want


def test_content_disposition_both_filename_forms() -> None:
    assert content_disposition("attachment", "a b/ç.txt") == (
        "attachment; filename=\"a b/%C3%A7.txt\"; filename*=UTF-8''a%20b/%C3%A7.txt"
    )
    assert content_disposition("inline", 'x"\ny') == "inline; filename=\"x%22%0Ay\"; filename*=UTF-8''x%22%0Ay"


def test_query_flags() -> None:
    q = parse_query({"temp_url_sig": "s", "inline": "", "filename": "f.txt"})
    assert q.present and q.inline and q.filename == "f.txt" and q.expires is None
    assert not parse_query({"format": "json"}).present
