"""A bounded LRU cache of shared blocks read by volumes.

Shared blocks are immutable (named by their content), so a cached copy is
never stale; the cache only saves the block store's per-read verification
of the whole block when a guest reads a few KiB of it at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT_BYTES = 256 << 20


class SharedBlockCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def peek(self, scheme: str, digest: bytes) -> memoryview | None:
        """The cached block, or None (never loads)."""
        key = (scheme, digest)
        with self._lock:
            data = self._blocks.get(key)
            if data is None:
                return None
            self._blocks.move_to_end(key)
            self.hits += 1
            return memoryview(data)

    def get(self, scheme: str, digest: bytes, load: Callable[[], Any]) -> memoryview:
        key = (scheme, digest)
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
                self.hits += 1
                return memoryview(data)
            self.misses += 1
        data = bytes(load())  # outside the lock: a miss reads and verifies the block
        with self._lock:
            if key not in self._blocks and len(data) <= self.max_bytes:
                self._blocks[key] = data
                self._bytes += len(data)
                while self._bytes > self.max_bytes:
                    _k, old = self._blocks.popitem(last=False)
                    self._bytes -= len(old)
        return memoryview(data)
