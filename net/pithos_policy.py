"""Pithos account policies: the `X-Account-Policy-*` headers of an account POST.

The one policy nefeli knows is `X-Account-Policy-Quota`: the account's quota in
bytes over all its containers, `0` meaning unlimited (as Pithos and
`X-Container-Policy-Quota` spell it). Anything else under the prefix, a value
that is not a plain decimal number, or one header given twice with different
values is refused (400) rather than half-applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from net.http_errors import InvalidPolicy

__all__ = [
    "ACCOUNT_POLICY_PREFIX",
    "MAX_QUOTA",
    "AccountPolicyUpdate",
    "format_quota",
    "parse_account_policy",
    "parse_quota",
]

ACCOUNT_POLICY_PREFIX = "x-account-policy-"
#: The largest quota accepted: what a signed 64-bit integer (SQLite's) holds.
MAX_QUOTA = (1 << 63) - 1
_OWS = " \t"
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class AccountPolicyUpdate:
    """The policies an account POST sets; ``quota`` None means unlimited."""

    quota: int | None


def parse_quota(value: str, header: str = "X-Account-Policy-Quota") -> int | None:
    """Bytes as a decimal number (surrounding blanks allowed); 0 gives None (unlimited)."""
    raw = value.strip(_OWS)
    if not raw or not set(raw) <= _DIGITS:
        raise InvalidPolicy(f"{header} must be a non-negative integer number of bytes")
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(MAX_QUOTA)) or int(digits) > MAX_QUOTA:
        raise InvalidPolicy(f"{header} must be at most {MAX_QUOTA}")
    quota = int(digits)
    return quota or None


def format_quota(quota: int | None) -> str:
    """The header value for a quota (None, unlimited, is 0)."""
    return str(quota or 0)


def parse_account_policy(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> AccountPolicyUpdate | None:
    """The `X-Account-Policy-*` headers of a request; None when there are none."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    values: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if not key.startswith(ACCOUNT_POLICY_PREFIX):
            continue
        policy = key[len(ACCOUNT_POLICY_PREFIX) :]
        if policy != "quota":
            raise InvalidPolicy(f"unknown account policy {policy!r}")
        if policy in values and values[policy].strip(_OWS) != value.strip(_OWS):
            raise InvalidPolicy(f"{name} given twice")
        values[policy] = value
    if not values:
        return None
    return AccountPolicyUpdate(quota=parse_quota(values["quota"]))
