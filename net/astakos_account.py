"""The Astakos account API (`/account/v1.0/`) that Pithos clients call: request bodies in,
JSON documents out.

astakosclient (under kamaki) calls, with the user's token:

* `POST user_catalogs` (and `service/user_catalogs`) with `{"uuids": [...]}` and/or
  `{"displaynames": [...]}` → `{"uuid_catalog": {uuid: name}, "displayname_catalog":
  {name: uuid}}`; names and uuids nobody has are left out, as Astakos does.
* `GET quotas` → `{project: {resource: {"limit", "usage", "pending"}}}`: here one
  project per user, named after the user (Astakos' personal "system" project has the
  user's uuid), with the object store's resource `pithos.diskspace` in bytes.
* `GET service_quotas[?user=U]` → `{user: {project: {resource: {...}}}}`.

On nefeli a user's uuid is its account name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from net.http_errors import BadRequest

__all__ = [
    "DISKSPACE",
    "MAX_BODY",
    "MAX_NAMES",
    "UNLIMITED",
    "CatalogQuery",
    "catalogs_document",
    "parse_catalog_request",
    "quotas_document",
]

#: the Pithos storage resource of Astakos' resource registry
DISKSPACE = "pithos.diskspace"
#: what Astakos' quotaholder calls a limit that never binds (QH_PRACTICALLY_INFINITE)
UNLIMITED = 10**32
#: names a catalog request may ask about, and its largest body
MAX_NAMES = 1000
MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """The names a `user_catalogs` request asks about, in the order given, without repeats."""

    uuids: tuple[str, ...] = ()
    displaynames: tuple[str, ...] = ()


def _names(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    raw = doc.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise BadRequest(f"{key} must be a list of strings")
    if len(raw) > MAX_NAMES:
        raise BadRequest(f"{key}: at most {MAX_NAMES} names a request")
    return tuple(dict.fromkeys(raw))


def parse_catalog_request(body: bytes) -> CatalogQuery:
    """`{"uuids": [...], "displaynames": [...]}` (either may be absent); BadRequest otherwise."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"user_catalogs request over {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest('expected a JSON body {"uuids": [...]} or {"displaynames": [...]}') from None
    if not isinstance(doc, dict):
        raise BadRequest('expected a JSON object {"uuids": [...]} or {"displaynames": [...]}')
    return CatalogQuery(_names(doc, "uuids"), _names(doc, "displaynames"))


def catalogs_document(uuid_catalog: Mapping[str, str], displayname_catalog: Mapping[str, str]) -> dict[str, Any]:
    return {"uuid_catalog": dict(uuid_catalog), "displayname_catalog": dict(displayname_catalog)}


def _diskspace(limit: int | None, usage: int) -> dict[str, int]:
    return {"limit": UNLIMITED if not limit else int(limit), "usage": int(usage), "pending": 0}


def quotas_document(user: str, limit: int | None, usage: int) -> dict[str, Any]:
    """`GET quotas`: the user's own project and its object-store quota (None or 0 = no limit)."""
    return {user: {DISKSPACE: _diskspace(limit, usage)}}
