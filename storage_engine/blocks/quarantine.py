"""The quarantine: blocks scrub or GC took out of service, what still needs them, and clearing it.

A quarantined block keeps its refcount: the maps that name it are damaged until
a good copy is put again (any upload of the same content heals it, since the
put moves the refcount back to a live entry).  An operator needs to know which
maps, hence which objects, to re-upload; entries nobody needs any more
(refcount 0) are only a record of past corruption and can be forgotten, with
the copy of the bad bytes scrub kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .core import QUARANTINE_DIR
from .index import IndexWriter, QuarantineReason
from .map_format import MapKey, decode_map
from .records import scheme_name

if TYPE_CHECKING:
    from .core import BlockCore

@dataclass(frozen=True, slots=True)
class QuarantinedBlock:
    scheme: str
    digest: bytes
    refcount: int  # references of maps waiting for a good copy
    reason: str
    since: int  # UNIX time it was quarantined
    segment: int
    offset: int
    raw_len: int
    copies: tuple[Path, ...]  # the bad record's bytes, as scrub saved them

    def as_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "digest": self.digest.hex(),
            "refcount": self.refcount,
            "reason": self.reason,
            "since": self.since,
            "segment": self.segment,
            "offset": self.offset,
            "raw_len": self.raw_len,
            "copies": [str(p) for p in self.copies],
        }


def _reason(code: int) -> str:
    try:
        return QuarantineReason(code).name.lower().replace("_", " ")
    except ValueError:
        return f"code {code}"


def copy_path(store: BlockCore, scheme: str, digest: bytes, segment: int, offset: int) -> Path:
    """Where scrub keeps the bytes of a record it took out of service."""
    return store.path / QUARANTINE_DIR / f"{scheme}-{digest.hex()}-{segment}-{offset}.rec"


def _copies(store: BlockCore, scheme: str, digest: bytes) -> tuple[Path, ...]:
    qdir = store.path / QUARANTINE_DIR
    if not qdir.is_dir():
        return ()
    return tuple(sorted(qdir.glob(f"{scheme}-{digest.hex()}-*.rec")))


def list_quarantined(store: BlockCore) -> list[QuarantinedBlock]:
    """Every quarantined block, most referenced first."""
    store.check_open()
    with store.index.read() as r:
        entries = list(r.iter_quarantine())
    out = []
    for key, q in entries:
        scheme, digest = scheme_name(key[0]), key[1:]
        out.append(
            QuarantinedBlock(
                scheme, digest, q.refcount, _reason(q.reason), q.time, q.segment, q.offset, q.raw_len,
                _copies(store, scheme, digest),
            )
        )
    out.sort(key=lambda b: (-b.refcount, b.scheme, b.digest))
    return out


def maps_needing(store: BlockCore, blocks: list[QuarantinedBlock]) -> dict[tuple[str, bytes], list[MapKey]]:
    """For each referenced quarantined block, the maps that name it (one pass over all maps)."""
    wanted = {(b.scheme, b.digest) for b in blocks if b.refcount > 0}
    found: dict[tuple[str, bytes], list[MapKey]] = {k: [] for k in wanted}
    if not wanted:
        return found
    with store.index.read() as r:
        for kb, _rc in r.iter_maps():
            key = MapKey.unpack(kb)
            blob = r.map_blob(kb)
            if blob is None:
                continue
            hmap = decode_map(key, bytes(blob))
            for d in set(hmap.block_refs()):
                hit = found.get((key.scheme, bytes(d)))
                if hit is not None:
                    hit.append(key)
    return found


def forget_unreferenced(store: BlockCore) -> int:
    """Drop the entries no map needs any more (and their saved copies); returns how many."""
    store.check_writable()

    def apply(w: IndexWriter) -> list[bytes]:
        gone = [key for key, q in list(w.iter_quarantine()) if q.refcount == 0]
        for key in gone:
            w.take_quarantined(key)
        return gone

    with store.gc_lock:
        gone = store.write_meta(apply)
    for key in gone:
        for p in _copies(store, scheme_name(key[0]), key[1:]):
            p.unlink(missing_ok=True)
    return len(gone)
