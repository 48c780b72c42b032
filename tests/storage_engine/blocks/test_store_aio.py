"""The async API on uvloop: same results as the sync one, and the event loop never blocks."""

from __future__ import annotations

import asyncio
import os
import random
import time
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


def test_event_loop_never_blocks(tmp_path: Path) -> None:
    """Big puts, reads, GC and scrub run while a ticker measures the loop's worst stall."""

    async def main() -> float:
        store = await AsyncBlockStore.open(tmp_path / "s", small_config(segment_size=8 * MiB))
        worst = 0.0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        tick = asyncio.create_task(ticker())
        blocks = [os.urandom(4 * MiB) for _ in range(12)]
        digests = await store.put_many("blake3", blocks)
        for d, b in zip(digests, blocks):
            assert await store.get("blake3", d) == b
        await store.change_refcounts("blake3", {d: 1 for d in digests[::2]})
        await store.gc()
        await store.scrub()
        stop.set()
        await tick
        await store.close()
        return worst

    worst = uvloop.run(main())
    # hashing 48 MiB inline would stall the loop for well over 100 ms
    assert worst < 0.1, worst
