"""Large objects in the object service: what is not HTTP about them.

Swift's two kinds, as the object service stores them:

* a dynamic large object (DLO) is a version whose ``manifest`` attribute names a
  container and a name prefix; it reads as the current objects under that prefix,
  in name order, joined;
* a static large object (SLO) is a version whose bytes are its manifest (Swift's
  JSON, parsed by the daemon's codec) and whose attrs carry the total size, the
  SLO ETag and the nesting depth (SLO_*_ATTR). Its segments stay ordinary objects.

This module lists a DLO's segments and reads spans of a list of segments; the
daemon walks SLO manifests with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from .metadata import ObjectVersion, Subdir
from .store import ObjectStore

#: attrs of an SLO manifest version: total bytes, SLO ETag (unquoted), manifest levels (1 = plain segments)
SLO_SIZE_ATTR = "slo-size"
SLO_ETAG_ATTR = "slo-etag"
SLO_DEPTH_ATTR = "slo-depth"
#: the attr of a DLO: "container/prefix" of its segments
DLO_MANIFEST_ATTR = "manifest"
#: the attrs that make a version a large object, which a joined copy does not keep
LARGE_OBJECT_ATTRS = (SLO_SIZE_ATTR, SLO_ETAG_ATTR, SLO_DEPTH_ATTR, DLO_MANIFEST_ATTR)
#: objects listed per metadata query while collecting a DLO's segments
_PAGE = 10_000


def is_static_large_object(v: ObjectVersion) -> bool:
    return SLO_ETAG_ATTR in v.attrs and SLO_SIZE_ATTR in v.attrs


def is_dynamic_large_object(v: ObjectVersion) -> bool:
    return bool(v.attrs.get(DLO_MANIFEST_ATTR))


def slo_depth(v: ObjectVersion) -> int:
    """Manifest levels of an SLO (1: its segments are plain objects)."""
    raw = v.attrs.get(SLO_DEPTH_ATTR, "1")
    return int(raw) if raw.isdigit() else 1


def slo_size(v: ObjectVersion) -> int:
    """The bytes an SLO reads as (its own bytes are the manifest)."""
    raw = v.attrs[SLO_SIZE_ATTR]
    return int(raw) if raw.isdigit() else v.size


def listed_slo_etag(v: ObjectVersion) -> str | None:
    """The quoted SLO ETag a Swift listing shows beside the manifest's own hash
    (`slo_etag`), None for anything but an SLO."""
    return f'"{v.attrs[SLO_ETAG_ATTR]}"' if is_static_large_object(v) else None


def listed_size(v: ObjectVersion) -> int:
    """The bytes a container listing shows: an SLO's total size, as Swift lists it
    (the container's bytes-used still counts only the manifest, as in Swift)."""
    return slo_size(v) if is_static_large_object(v) else v.size


class LargeObjects:
    """DLO segment listing and joined reads over one ObjectStore."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def dynamic_segments(
        self, account: str, container: str, prefix: str, *, as_user: str | None = None, until: float | None = None
    ) -> list[ObjectVersion]:
        """The segments of a DLO: the current objects of ``container`` under ``prefix``,
        in name order, those ``as_user`` may read (None: the owner); with ``until``
        (the owner's alone), the segments as they were then."""
        meta = self.store.meta
        out: list[ObjectVersion] = []
        marker = None
        while True:
            if until is not None:
                page = await meta.history.objects(
                    account, container, until=until, prefix=prefix or None, marker=marker, limit=_PAGE
                )
            else:
                page = await meta.listing.objects(
                    account, container, prefix=prefix or None, marker=marker, limit=_PAGE, as_user=as_user
                )
            out.extend(it for it in page if not isinstance(it, Subdir))
            if len(page) < _PAGE:
                return out
            marker = page[-1].name

    async def read_joined(self, segments: Sequence[ObjectVersion], start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start..end`` (inclusive) of the segments joined."""
        off = 0
        for s in segments:
            lo, hi = off, off + s.size - 1
            off += s.size
            if s.size == 0 or hi < start or lo > end:
                continue
            async for piece in self.store.read(s, max(start, lo) - lo, min(end, hi) - lo):
                yield piece
