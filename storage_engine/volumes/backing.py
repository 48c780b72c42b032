"""The two engine layers volumes stand on, imported in this one place.

The block layer (content-addressed blocks: put, get) and the map layer
(refcounted hash lists, which own the rule that a map holds one reference to
each block it names).  Volumes hold their shared blocks through map-layer
references only, so the block store's GC and verify know them without being
told about volumes.
"""

from __future__ import annotations

from typing import Any

from hashmaps import zero_block_digest
from storage_engine.blockstore import BlockStore
from storage_engine.errors import StoreLocked
from storage_engine.layout import store_dir
from storage_engine.mapstore import HashMap, MapKey

__all__ = ["BlockStore", "HashMap", "MapKey", "StoreLocked", "add_map", "add_ref", "block_length", "drop_ref", "get_map",
           "put_blocks", "read_block", "store_dir", "zero_digest"]


def zero_digest(scheme: str, length: int) -> bytes:
    return zero_block_digest(scheme, length)


def block_length(size: int, block_size: int, index: int) -> int:
    return min(block_size, size - index * block_size)


def read_block(store: BlockStore, scheme: str, digest: bytes) -> Any:
    """A shared block's bytes as stored (sha256 blocks without their trailing zeros)."""
    return store.get_buffer(scheme, digest)


def add_ref(store: BlockStore, packed_key: bytes) -> None:
    """One more map-layer reference to a map that exists (a snapshot or clone sharing a hold)."""
    key = MapKey.unpack(packed_key)
    hmap = store.maps.get(key)
    store.maps.add(key.scheme, key.size, hmap.block_size, hmap.hashes, key.top)


def add_map(store: BlockStore, scheme: str, size: int, block_size: int, digests: bytes) -> bytes:
    """A reference to the map of this hash list (stored on its first reference); its packed key."""
    return store.maps.add(scheme, size, block_size, digests).pack()


def drop_ref(store: BlockStore, packed_key: bytes) -> None:
    store.maps.drop(MapKey.unpack(packed_key))


def get_map(store: BlockStore, packed_key: bytes) -> HashMap:
    return store.maps.get(MapKey.unpack(packed_key))


def put_blocks(store: BlockStore, scheme: str, blocks: list[Any]) -> list[bytes]:
    """Store blocks (durably) and return their digests; stored once however often they occur."""
    return store.put_many(scheme, blocks)
