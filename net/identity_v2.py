"""The Astakos/Keystone v2.0 token exchange: `POST /identity/v2.0/tokens`.

What kamaki and other Pithos clients send: `{"auth": {"token": {"id": T}}}` (trade
a token for the service catalog) or `{"auth": {"passwordCredentials":
{"username": U, "password": P}}}` (get a new token).  They read
`access.token.id`, `access.user.id` and the `object-store` entry of
`access.serviceCatalog`.  Anything else in the body is ignored, as Astakos does;
a body that is not such a document is a BadRequest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from net.http_errors import BadRequest

__all__ = ["PasswordAuth", "TokenAuth", "access_document", "parse_token_request"]

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


def parse_token_request(body: bytes) -> TokenAuth | PasswordAuth:
    """The credentials of a token request; BadRequest for anything else."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"token request over {MAX_BODY} bytes")
    try:
        doc = json.loads(body or b"{}")
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


def access_document(token: str, account: str, expires: float, object_store_url: str) -> dict[str, Any]:
    """The `{"access": ...}` answer: the token, the user and one object-store endpoint."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
    return {
        "access": {
            "token": {"id": token, "expires": iso, "tenant": {"id": account, "name": account}},
            "user": {"id": account, "name": account, "roles": [{"id": "member", "name": "member"}]},
            "serviceCatalog": [
                {
                    "type": "object-store",
                    "name": "pithos",
                    "endpoints": [
                        {
                            "region": "default",
                            "versionId": "v1",
                            "publicURL": object_store_url,
                            "internalURL": object_store_url,
                        }
                    ],
                    "endpoints_links": [],
                }
            ],
        }
    }
