"""The Astakos/Keystone v2.0 token exchange: `POST /identity/v2.0/tokens`.

What kamaki and other Pithos clients send: `{"auth": {"token": {"id": T}}}` (trade
a token for the service catalog), `{"auth": {"passwordCredentials":
{"username": U, "password": P}}}` (get a new token), or no body at all with the
token in `X-Auth-Token` (astakosclient's `get_endpoints`).  They read
`access.token.id`, `access.user.id` and `access.serviceCatalog`: kamaki takes
the `object-store` endpoint by type, astakosclient the `astakos_account` entry
by name and versionId `v1.0` and that endpoint's `SNF:uiURL`.  Anything else in
the body is ignored, as Astakos does; a body that is not such a document is a
BadRequest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from net.http_errors import BadRequest

__all__ = ["PasswordAuth", "TokenAuth", "access_document", "parse_token_request", "service_catalog"]

#: Larger bodies are refused before parsing (a token request is a few hundred bytes).
MAX_BODY = 1 << 16


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """Show the catalog for an existing token."""

    token: str


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """Issue a new token for a user and its key."""

    username: str
    password: str


def parse_token_request(body: bytes, header_token: str | None = None) -> TokenAuth | PasswordAuth:
    """The credentials of a token request; BadRequest for anything else.

    An empty body (only whitespace) stands for the token of the `X-Auth-Token`
    header, ``header_token``: Astakos answers such a POST with the catalog."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"token request over {MAX_BODY} bytes")
    if not body.strip():
        if header_token:
            return TokenAuth(header_token)
        raise BadRequest('expected a JSON body {"auth": {...}} or an X-Auth-Token header')
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest('expected a JSON body {"auth": {...}}') from None
    auth = doc.get("auth") if isinstance(doc, dict) else None
    if not isinstance(auth, dict):
        raise BadRequest('expected a JSON body {"auth": {...}}')
    tok = auth.get("token")
    if isinstance(tok, dict) and isinstance(tok.get("id"), str) and tok["id"]:
        return TokenAuth(tok["id"])
    creds = auth.get("passwordCredentials")
    if isinstance(creds, dict):
        user, password = creds.get("username"), creds.get("password")
        if isinstance(user, str) and isinstance(password, str) and user and password:
            return PasswordAuth(user, password)
    raise BadRequest("auth needs token.id or passwordCredentials.username and .password")


#: (name, type, versionId, path under the base URL): Synnefo's names for the
#: services of one Astakos + Pithos installation, all served by nefeli-blockd
CATALOG: tuple[tuple[str, str, str, str], ...] = (
    ("pithos_object-store", "object-store", "v1", "/object-store/v1"),
    ("astakos_account", "account", "v1.0", "/account/v1.0"),
    ("astakos_identity", "identity", "v2.0", "/identity/v2.0"),
    ("astakos_weblogin", "astakos_weblogin", "", "/ui/login"),
)

#: what `SNF:uiURL` points at (Synnefo's web UI; clients only parse it)
UI_PATH = "/ui"


def service_catalog(base_url: str) -> list[dict[str, Any]]:
    """`access.serviceCatalog` for a server at ``base_url`` (no trailing slash)."""
    base = base_url.rstrip("/")
    return [
        {
            "name": name,
            "type": kind,
            "endpoints": [
                {
                    "region": "default",
                    "versionId": version,
                    "publicURL": base + path,
                    "internalURL": base + path,
                    "SNF:uiURL": base + UI_PATH,
                }
            ],
            "endpoints_links": [],
        }
        for name, kind, version, path in CATALOG
    ]


def access_document(
    token: str,
    account: str,
    expires: float,
    object_store_url: str,
    *,
    display_name: str | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """The `{"access": ...}` answer: the token, the user and the service catalog.

    ``base_url`` is where the identity, account and object-store APIs live; by
    default it is ``object_store_url`` less its `/object-store/v1`."""
    if base_url is None:
        suffix = CATALOG[0][3]
        base_url = object_store_url[: -len(suffix)] if object_store_url.endswith(suffix) else object_store_url
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
    name = display_name or account
    return {
        "access": {
            "token": {"id": token, "expires": iso, "tenant": {"id": account, "name": name}},
            "user": {
                "id": account,
                "name": name,
                "roles": [{"id": "member", "name": "member"}],
                "roles_links": [],
            },
            "serviceCatalog": service_catalog(base_url),
        }
    }
