"""The async API on uvloop: same results as the sync one, and the event loop never blocks."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

import uvloop

from hashmaps import block_digest, block_digests
from storage_engine.blocks.aio import AsyncBlockStore
from storage_engine.maps.aio import AsyncMapStore
from store_support import KiB, MiB, small_config


def test_async_api_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        store = await AsyncBlockStore.open(tmp_path / "s", small_config())
        async with store:
            rnd = random.Random(60)
            blocks = [rnd.randbytes(rnd.randint(1, 50 * KiB)) for _ in range(20)]
            # many coroutines putting at once share group commits
            digests = await asyncio.gather(*(store.put("blake3", b) for b in blocks))
            assert list(digests) == [block_digest(b, "blake3") for b in blocks]
            got = await asyncio.gather(*(store.get("blake3", d) for d in digests))
            assert list(got) == blocks
            assert await store.has("blake3", digests[0])
            absent = block_digest(b"absent", "blake3")
            assert await store.missing("blake3", [digests[0], absent]) == [absent]
            data = b"".join(blocks[:3])
            bs = 64 * KiB
            hashes = block_digests(data, "blake3", bs)
            await store.put_many("blake3", [data[i : i + bs] for i in range(0, len(data), bs)])
            key = await AsyncMapStore(store).add("blake3", len(data), bs, hashes)
            assert (await AsyncMapStore(store).get(key)).hashes == hashes
            assert await AsyncMapStore(store).refcount(key) == 1
            await store.change_refcounts("blake3", {digests[5]: 2})
            assert await store.refcount("blake3", digests[5]) == 2
            await store.change_refcounts("blake3", [(digests[5], -2)])  # refs outside maps: verify would flag them
            assert (await store.stats()).maps == 1
            assert await AsyncMapStore(store).drop(key) == 0
            assert (await store.gc()).blocks_removed > 0
            assert (await store.scrub()).ok and (await store.verify()).ok

    uvloop.run(main())


#: Modules whose functions do disk I/O, hashing, compression or index work: none of them
#: may be called on the event loop's thread while the store works.
BLOCKING_MODULES = {"posix", "os", "io", "_io", "mmap", "blake3", "_hashlib", "_blake2", "zstd", "zstandard",
                    "_zstd", "lmdb", "_sqlite3", "_cffi_backend"}


class LoopCalls:
    """Records every C function called on this thread while on (sys.setprofile is per thread)."""

    def __init__(self) -> None:
        self.blocking: list[str] = []

    def _profile(self, frame: object, event: str, arg: object) -> None:
        if event == "c_call":
            module = getattr(arg, "__module__", None) or type(getattr(arg, "__self__", None)).__module__
            if module in BLOCKING_MODULES or module.split(".")[0] in BLOCKING_MODULES:
                self.blocking.append(f"{module}.{getattr(arg, '__qualname__', arg)}")

    def __enter__(self) -> LoopCalls:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


def test_event_loop_never_blocks(tmp_path: Path) -> None:
    """Big puts, reads, GC and scrub: not one disk, hashing or index call runs on the loop's
    thread (recorded by a per-thread profiler, so the check does not depend on timing)."""
    blocks = [os.urandom(4 * MiB) for _ in range(12)]

    async def main() -> tuple[list[str], list[str]]:
        store = await AsyncBlockStore.open(tmp_path / "s", small_config(segment_size=8 * MiB))
        with LoopCalls() as calls:
            digests = await store.put_many("blake3", blocks)
            for d, b in zip(digests, blocks):
                assert await store.get("blake3", d) == b
            await store.change_refcounts("blake3", {d: 1 for d in digests[::2]})
            await store.gc()
            await store.scrub()
        with LoopCalls() as inline:  # the same read, called on the loop: the check sees it
            assert store.store.get("blake3", digests[0]) == blocks[0]
        await store.close()
        return calls.blocking, inline.blocking

    on_loop, inline = uvloop.run(main())
    assert on_loop == []
    assert inline, "the profiler saw no blocking call in an inline read: the check is blind"
