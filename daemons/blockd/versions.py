"""The object versions requests name, and how blockd describes them (headers, ETags).

What ETag means depends on the API path (docs/blockd.md): Pithos = the top hash,
Swift = the MD5 when known. A version stored without an MD5 (hashmap PUT,
partial update) gets one in the background (storage_engine.objects.md5_backfill).
"""

from __future__ import annotations

from net.http_conditional import evaluate_preconditions, format_http_date
from storage_engine.objects.metadata import Precondition
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MD5_ATTR

from .http import HTTPError
from .request_context import ATTR_HEADERS, Req, is_conditional
from .service import Service


class Versions:
    def __init__(self, service: Service) -> None:
        self.service = service

    def etag_for(self, api: str, v: ObjectVersion) -> str | None:
        """What ETag means on this API path. On the Swift path a version without a
        known MD5 has none yet: its MD5 is queued to be computed."""
        if api == "swift":
            md5 = v.attrs.get(MD5_ATTR)
            if not md5:
                self.want_md5(v, needed=True)
            return md5 or None
        return v.etag

    def want_md5(self, v: ObjectVersion, *, needed: bool = False) -> None:
        """Have the MD5 of a version stored without one computed in the background:
        right after the write under md5_backfill "eager", once a Swift request
        ``needed`` it otherwise."""
        backfill = self.service.md5_backfill
        if backfill is None or v.map is None or v.attrs.get(MD5_ATTR):
            return
        if needed or self.service.config.md5_backfill == "eager":
            backfill.schedule(v)

    def headers(self, api: str, v: ObjectVersion) -> dict[str, str]:
        """The headers of an object GET/HEAD."""
        modified = format_http_date(v.mtime)
        h = {
            "Content-Type": v.content_type,
            "Last-Modified": modified,
            "X-Timestamp": f"{v.mtime:.5f}",
            "X-Object-Hash": v.etag,
            "X-Object-Version": str(v.serial),
            "X-Object-Version-Timestamp": modified,
            "X-Object-Modified-By": v.modified_by,
            "X-Object-UUID": v.uuid,
            "Accept-Ranges": "bytes",
        }
        etag = self.etag_for(api, v)
        if etag:
            h["ETag"] = etag
        for k, val in v.meta.items():
            h["X-Object-Meta-" + k.title()] = val  # title case, as Swift sends them
        for header, attr in ATTR_HEADERS.items():
            if attr in v.attrs:
                h[header.title()] = v.attrs[attr]
        return h

    def written(self, api: str, v: ObjectVersion, *, last_modified: bool = False) -> dict[str, str]:
        """The headers answering a write: the new version, its hash and ETag."""
        h = {"X-Object-Version": str(v.serial), "X-Object-Hash": v.etag}
        if last_modified:
            h["Last-Modified"] = format_http_date(v.mtime)
        etag = self.etag_for(api, v)
        if etag:
            h["ETag"] = etag
        return h

    @staticmethod
    def with_data(v: ObjectVersion) -> ObjectVersion:
        """The version, unless it is a delete marker (404)."""
        if v.map is None:
            raise HTTPError(404, "object not found")
        return v

    async def get(self, acct: str, cont: str, name: str, serial: int | None) -> ObjectVersion:
        """The version named (the current one for None); 404 for a delete marker."""
        return self.with_data(await self.service.meta.objects.get(acct, cont, name, serial=serial))

    async def current(self, acct: str, cont: str, name: str) -> ObjectVersion | None:
        """The current version with data, or None."""
        try:
            v = await self.service.meta.objects.get(acct, cont, name)
        except merr.ObjectNotFound:
            return None
        return v if v.map is not None else None

    def write_precondition(self, r: Req, cur: ObjectVersion | None) -> Precondition | None:
        """If-Match / If-None-Match of a write against the current version (412 now if
        they fail), as the precondition the metadata commit checks again."""
        if not is_conditional(r):
            return None
        h = r.headers
        inm = h.get("If-None-Match")
        if r.api == "swift" and inm is not None and inm.strip() != "*":
            raise HTTPError(400, "If-None-Match on a write supports only *")  # as Swift
        etag = (self.etag_for(r.api, cur) or cur.etag) if cur is not None else None
        d = evaluate_preconditions(
            "PUT", etag=etag, last_modified=cur.mtime if cur else None,
            if_match=h.get("If-Match"), if_none_match=inm, lenient=r.api == "swift",
        )
        if not d.proceed:
            raise HTTPError(412, d.reason)
        if cur is None:
            return Precondition(if_none_match="*")
        return Precondition(serial=cur.serial)
