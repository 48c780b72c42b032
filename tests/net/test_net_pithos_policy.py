"""net.pithos_policy: X-Account-Policy-* headers (the account quota)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import InvalidPolicy, ProtocolError
from net.pithos_policy import MAX_QUOTA, AccountPolicyUpdate, format_quota, parse_account_policy, parse_quota

BLANKS = st.text(" \t", max_size=3)


@pytest.mark.parametrize(
    ("value", "quota"),
    [("1000", 1000), (" 42\t", 42), ("0", None), ("000", None), ("007", 7), (str(MAX_QUOTA), MAX_QUOTA),
     ("0" * 30 + "5", 5)],
)
def test_quota_values(value: str, quota: int | None) -> None:
    assert parse_quota(value) == quota


@pytest.mark.parametrize(
    "value",
    ["", " ", "-1", "+1", "1.5", "1e3", "10 MB", "0x10", "١٢", "²", str(MAX_QUOTA + 1), "9" * 40, "1 2"],
)
def test_bad_quota_values_are_400(value: str) -> None:
    with pytest.raises(InvalidPolicy) as info:
        parse_quota(value)
    assert info.value.status == 400 and info.value.reason


@given(st.integers(min_value=0, max_value=MAX_QUOTA), BLANKS, BLANKS, st.integers(min_value=0, max_value=5))
def test_every_quota_round_trips(quota: int, before: str, after: str, zeros: int) -> None:
    text = format_quota(quota or None)
    assert parse_quota(before + "0" * zeros + text + after) == (quota or None)


@given(st.text(max_size=25))
def test_any_text_parses_or_is_a_400(value: str) -> None:
    """Never an exception other than the codec's own; accepted means plain ASCII digits."""
    try:
        quota = parse_quota(value)
    except ProtocolError as exc:
        assert exc.status == 400
        return
    stripped = value.strip(" \t")
    assert stripped.isascii() and stripped.isdigit() and int(stripped) == (quota or 0) <= MAX_QUOTA


def test_account_policy_headers() -> None:
    assert parse_account_policy({"X-Account-Meta-A": "1"}) is None
    assert parse_account_policy({"X-Account-Policy-Quota": "10"}) == AccountPolicyUpdate(quota=10)
    assert parse_account_policy([("x-account-policy-quota", "0")]) == AccountPolicyUpdate(quota=None)
    assert parse_account_policy([("X-Account-Policy-Quota", "5"), ("x-account-policy-quota", " 5")]).quota == 5
    for headers in (
        [("X-Account-Policy-Quota", "5"), ("X-Account-Policy-Quota", "6")],
        [("X-Account-Policy-Versioning", "auto")],
        [("X-Account-Policy-Quota", "lots")],
    ):
        with pytest.raises(InvalidPolicy):
            parse_account_policy(headers)


@given(st.dictionaries(st.sampled_from(["X-Account-Policy-Quota", "X-Account-Meta-Q", "X-Other"]), st.text(max_size=8)))
def test_policy_headers_parse_or_are_a_400(headers: dict[str, str]) -> None:
    try:
        update = parse_account_policy(headers)
    except ProtocolError as exc:
        assert exc.status == 400
        return
    if "X-Account-Policy-Quota" in headers:
        assert update == AccountPolicyUpdate(parse_quota(headers["X-Account-Policy-Quota"]))
    else:
        assert update is None
