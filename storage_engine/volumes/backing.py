"""The two engine layers volumes stand on, imported in this one place.

The block layer (content-addressed blocks: put, get) and the map layer
(refcounted hash lists, which own the rule that a map holds one reference to
each block it names).  Volumes hold their shared blocks through map-layer
references only, so the block store's GC and verify know them without being
told about volumes.  References are added before the catalog commit that uses
them and dropped after the one that stops using them, the order
storage_engine.maps.references keeps for objects.
"""

from __future__ import annotations

from typing import Any

from hashmaps import zero_block_digest
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.errors import StoreLocked
from storage_engine.blocks.layout import store_dir
from storage_engine.maps.mapstore import HashMap, MapKey, MapStore

__all__ = ["Backing", "BlockStore", "HashMap", "StoreLocked", "block_length", "store_dir", "zero_digest"]


def zero_digest(scheme: str, length: int) -> bytes:
    return zero_block_digest(scheme, length)


def block_length(size: int, block_size: int, index: int) -> int:
    return min(block_size, size - index * block_size)


class Backing:
    """What volumes use of one writable block store and its map store."""

    def __init__(self, blocks: BlockStore) -> None:
        self.blocks = blocks
        self.maps = MapStore(blocks)

    def read_block(self, scheme: str, digest: bytes) -> Any:
        """A shared block's bytes as stored (sha256 blocks without their trailing zeros)."""
        return self.blocks.get_buffer(scheme, digest)

    def put_blocks(self, scheme: str, blocks: list[Any]) -> list[bytes]:
        """Store blocks (durably) and return their digests; stored once however often they occur."""
        return self.blocks.put_many(scheme, blocks)

    def add_ref(self, packed_key: bytes) -> None:
        """One more reference to a map that exists (a snapshot or clone sharing a hold)."""
        key = MapKey.unpack(packed_key)
        hmap = self.maps.get(key)
        self.maps.add(key.scheme, key.size, hmap.block_size, hmap.hashes, key.top)

    def add_map(self, scheme: str, size: int, block_size: int, digests: bytes) -> bytes:
        """A reference to the map of this hash list (stored on its first reference); its packed key."""
        return self.maps.add(scheme, size, block_size, digests).pack()

    def drop_ref(self, packed_key: bytes) -> None:
        self.maps.drop(MapKey.unpack(packed_key))

    def get_map(self, packed_key: bytes) -> HashMap:
        return self.maps.get(MapKey.unpack(packed_key))
