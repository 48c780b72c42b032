"""The volume catalog: headers, map pages, map-layer holds and extents in one LMDB env.

One write transaction changes a volume's header, the pages of its map that
changed, its holds and the extent table together, and LMDB's commit is
durable: a map on disk is always one that was whole at some flush.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from .errors import VolumeError
from .format import (
    EXTENT_KEY,
    EXTENT_ROW,
    FORMAT_VERSION,
    HOLD_LEN,
    PAGE_ENTRIES,
    PAGE_KEY,
    VOLUME_KEY,
    Header,
)
from native.vmap import VMAP_ENTRY

CATALOG_DIR = "catalog"
_U64 = struct.Struct("<Q")
PAGE_BYTES = PAGE_ENTRIES * VMAP_ENTRY


@dataclass(frozen=True)
class Record:
    name: str
    header: Header
    holds: tuple[bytes, ...]  # packed map keys


class Catalog:
    def __init__(self, root: Path, map_size: int = 1 << 36) -> None:
        path = root / CATALOG_DIR
        path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(path), max_dbs=8, map_size=map_size, subdir=True, lock=True)
        self.volumes = self.env.open_db(b"volumes")  # name -> header
        self.ids = self.env.open_db(b"ids")  # volume id -> name
        self.pages = self.env.open_db(b"pages")  # volume id, page -> entries
        self.holds = self.env.open_db(b"holds")  # volume id -> packed map keys
        self.extents = self.env.open_db(b"extents")  # extent id -> state, owner
        self.meta = self.env.open_db(b"meta")
        with self.env.begin(write=True) as txn:
            raw = txn.get(b"format", db=self.meta)
            if raw is None:
                txn.put(b"format", _U64.pack(FORMAT_VERSION), db=self.meta)
            elif _U64.unpack(raw)[0] != FORMAT_VERSION:
                raise VolumeError(f"volume catalog format {_U64.unpack(raw)[0]}, this version reads {FORMAT_VERSION}")

    def close(self) -> None:
        self.env.close()

    @contextmanager
    def write(self) -> Iterator[Writer]:
        with self.env.begin(write=True) as txn:
            yield Writer(self, txn)

    @contextmanager
    def read(self) -> Iterator[Writer]:
        with self.env.begin() as txn:
            yield Writer(self, txn)


class Writer:
    """Reads and writes inside one transaction."""

    def __init__(self, cat: Catalog, txn: Any) -> None:
        self.cat = cat
        self.txn = txn

    def next_id(self, counter: bytes) -> int:
        raw = self.txn.get(counter, db=self.cat.meta)
        n = _U64.unpack(raw)[0] if raw else 1
        self.txn.put(counter, _U64.pack(n + 1), db=self.cat.meta)
        return n

    def record(self, name: str) -> Record | None:
        raw = self.txn.get(name.encode(), db=self.cat.volumes)
        if raw is None:
            return None
        header = Header.unpack(raw)
        holds_raw = self.txn.get(VOLUME_KEY.pack(header.volume_id), db=self.cat.holds) or b""
        holds = tuple(holds_raw[i : i + HOLD_LEN] for i in range(0, len(holds_raw), HOLD_LEN))
        return Record(name, header, holds)

    def name_of(self, volume_id: int) -> str | None:
        raw = self.txn.get(VOLUME_KEY.pack(volume_id), db=self.cat.ids)
        return raw.decode() if raw is not None else None

    def names(self) -> list[str]:
        with self.txn.cursor(db=self.cat.volumes) as cur:
            return [k.decode() for k in cur.iternext(keys=True, values=False)]

    def put_header(self, name: str, header: Header) -> None:
        self.txn.put(name.encode(), header.pack(), db=self.cat.volumes)
        self.txn.put(VOLUME_KEY.pack(header.volume_id), name.encode(), db=self.cat.ids)

    def put_holds(self, volume_id: int, holds: tuple[bytes, ...]) -> None:
        key = VOLUME_KEY.pack(volume_id)
        if holds:
            self.txn.put(key, b"".join(holds), db=self.cat.holds)
        else:
            self.txn.delete(key, db=self.cat.holds)

    def load_entries(self, header: Header) -> bytearray:
        out = bytearray(header.count * VMAP_ENTRY)
        prefix = VOLUME_KEY.pack(header.volume_id)
        with self.txn.cursor(db=self.cat.pages) as cur:
            if cur.set_range(prefix):
                for key, value in cur:
                    if key[:8] != prefix:
                        break
                    page = PAGE_KEY.unpack(key)[1]
                    start = page * PAGE_BYTES
                    if start >= len(out):
                        break
                    chunk = value[: len(out) - start]
                    out[start : start + len(chunk)] = chunk
        return out

    def put_pages(self, volume_id: int, entries: bytes | bytearray, pages: set[int] | None = None) -> None:
        """Write the given pages of a map (all when pages is None); all-zero pages are left out."""
        count = -(-len(entries) // PAGE_BYTES)
        for page in range(count) if pages is None else sorted(pages):
            if page >= count:
                continue
            chunk = bytes(entries[page * PAGE_BYTES : (page + 1) * PAGE_BYTES])
            key = PAGE_KEY.pack(volume_id, page)
            if chunk.count(0) == len(chunk):
                self.txn.delete(key, db=self.cat.pages)
            else:
                self.txn.put(key, chunk, db=self.cat.pages)

    def drop_pages_from(self, volume_id: int, first_page: int) -> None:
        prefix = VOLUME_KEY.pack(volume_id)
        with self.txn.cursor(db=self.cat.pages) as cur:
            if not cur.set_range(PAGE_KEY.pack(volume_id, first_page)):
                return
            while cur.key()[:8] == prefix:
                if not cur.delete():
                    break

    def delete_volume(self, name: str, header: Header) -> None:
        self.drop_pages_from(header.volume_id, 0)
        self.txn.delete(name.encode(), db=self.cat.volumes)
        self.txn.delete(VOLUME_KEY.pack(header.volume_id), db=self.cat.ids)
        self.txn.delete(VOLUME_KEY.pack(header.volume_id), db=self.cat.holds)
        self.put_metadata(name, "")

    def metadata(self, name: str) -> str:
        raw = self.txn.get(b"metadata:" + name.encode(), db=self.cat.meta)
        return raw.decode() if raw is not None else ""

    def put_metadata(self, name: str, text: str) -> None:
        key = b"metadata:" + name.encode()
        if text:
            self.txn.put(key, text.encode(), db=self.cat.meta)
        else:
            self.txn.delete(key, db=self.cat.meta)

    def put_extent(self, extent: int, state: int, owner: int) -> None:
        self.txn.put(EXTENT_KEY.pack(extent), EXTENT_ROW.pack(state, owner), db=self.cat.extents)

    def drop_extent(self, extent: int) -> None:
        self.txn.delete(EXTENT_KEY.pack(extent), db=self.cat.extents)

    def extents(self) -> dict[int, tuple[int, int]]:
        with self.txn.cursor(db=self.cat.extents) as cur:
            return {EXTENT_KEY.unpack(k)[0]: EXTENT_ROW.unpack(v) for k, v in cur}
