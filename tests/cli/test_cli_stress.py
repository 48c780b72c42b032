"""Many concurrent clients, and kill -9 of the server in the middle of uploads."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from cli_support import Server, require_blockd, run_cli

KiB = 1024
BLOCK = 64 * KiB


async def _put_plain(session: aiohttp.ClientSession, base: str, name: str, data: bytes) -> int:
    async with session.put(f"{base}/{name}", data=data) as r:
        await r.read()
        return r.status


async def _put_blocks(c, name: str, data: bytes, path: Path) -> int:  # type: ignore[no-untyped-def]
    from cli.transfer import upload_file

    path.write_bytes(data)
    cont, obj = name.split("/", 1)
    try:
        await upload_file(c, path, cont, obj, create_container=False)
        return 201
    except Exception:
        return 0


async def _get(session: aiohttp.ClientSession, base: str, name: str) -> tuple[int, bytes]:
    async with session.get(f"{base}/{name}") as r:
        return r.status, await r.read()


def _payload(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 100, BLOCK, BLOCK + 1, 3 * BLOCK + 5, 5 * BLOCK])
    # some shared content so dedup paths are exercised
    if rng.random() < 0.3:
        return bytes([rng.randrange(4)]) * size
    return rng.randbytes(size)


@pytest.mark.slow
def test_fifty_concurrent_clients(tmp_path):
    require_blockd()
    srv = Server(tmp_path / "data").start()
    try:
        run_concurrent(srv, tmp_path)
    finally:
        srv.stop()
    r = run_cli(["store", "verify", "--data", str(srv.data), "--no-progress"], {})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "consistent" in r.stdout


def run_concurrent(srv: Server, tmp_path: Path) -> None:
    from cli.client import Client
    from cli.config import Config

    cfg = Config(srv.url, srv.token, srv.account)
    base = f"{srv.url}/object-store/v1/{srv.account}"
    shared = [f"stress/shared-{i}" for i in range(5)]
    # per name: acknowledged payloads (in ack order) and whether a delete was acknowledged
    acked: dict[str, list[bytes]] = {}
    deleted_after: dict[str, int] = {}
    lock = threading.Lock()

    async def client(k: int) -> None:
        rng = random.Random(k)
        headers = {"X-Auth-Token": srv.token}
        async with aiohttp.ClientSession(headers=headers) as s, Client(cfg) as c:
            own = f"stress/own-{k}"
            for step in range(8):
                name = rng.choice(shared) if rng.random() < 0.5 else own
                op = rng.random()
                if op < 0.15:
                    async with s.delete(f"{base}/{name}") as r:
                        if r.status in (200, 204):
                            with lock:
                                deleted_after[name] = len(acked.get(name, []))
                    continue
                data = _payload(rng)
                if op < 0.6:
                    status = await _put_plain(s, base, name, data)
                else:
                    status = await _put_blocks(c, name, data, tmp_path / f"c{k}")
                if status == 201:
                    with lock:
                        acked.setdefault(name, []).append(data)
                        deleted_after.pop(name, None)

    async def main() -> None:
        async with aiohttp.ClientSession(headers={"X-Auth-Token": srv.token}) as s:
            async with s.put(f"{base}/stress", headers={"X-Container-Policy-Block-Size": str(BLOCK)}) as r:
                assert r.status == 201
        await asyncio.gather(*(client(k) for k in range(50)))
        async with aiohttp.ClientSession(headers={"X-Auth-Token": srv.token}) as s:
            for name, versions in acked.items():
                status, body = await _get(s, base, name)
                if name.startswith("stress/own-"):
                    if name in deleted_after:
                        assert status == 404, name
                    else:
                        assert status == 200 and body == versions[-1], name
                else:  # concurrent writers: the result is one of the acknowledged versions, or gone
                    assert status in (200, 404), (name, status)
                    if status == 200:
                        assert body in versions, name

    asyncio.run(main())
    assert len(acked) > 20


@pytest.mark.slow
def test_kill9_during_parallel_uploads(tmp_path):
    require_blockd()
    srv = Server(tmp_path / "data").start()
    try:
        base = f"{srv.url}/object-store/v1/{srv.account}"
        rng = random.Random(1)
        payloads = {f"k9/obj-{i}": rng.randbytes(rng.choice([1, BLOCK * 3, 6 * 1024 * 1024 + 7])) for i in range(20)}
        acked: set[str] = set()

        async def upload(name: str, data: bytes, delay: float) -> None:
            await asyncio.sleep(delay)
            try:
                async with aiohttp.ClientSession(headers={"X-Auth-Token": srv.token}) as s:
                    async with s.put(f"{base}/{name}", data=data) as r:
                        if r.status == 201:
                            acked.add(name)
            except (aiohttp.ClientError, OSError):
                pass

        async def main() -> None:
            async with aiohttp.ClientSession(headers={"X-Auth-Token": srv.token}) as s:
                async with s.put(f"{base}/k9") as r:
                    assert r.status == 201
            tasks = [asyncio.ensure_future(upload(n, d, i * 0.02)) for i, (n, d) in enumerate(payloads.items())]
            t0 = time.monotonic()
            while len(acked) < 4 and time.monotonic() - t0 < 20:
                await asyncio.sleep(0.005)
            srv.kill()  # SIGKILL
            await asyncio.gather(*tasks)

        asyncio.run(main())
        assert 0 < len(acked) < 20, len(acked)
        srv.start()

        async def check() -> int:
            complete = 0
            async with aiohttp.ClientSession(headers={"X-Auth-Token": srv.token}) as s:
                for name, data in payloads.items():
                    status, body = await _get(s, base, name)
                    if name in acked:
                        assert status == 200 and body == data, name
                    else:
                        assert status == 404 or (status == 200 and body == data), (name, status, len(body))
                    complete += status == 200
            return complete

        assert asyncio.run(check()) >= len(acked)
    finally:
        srv.stop()
    r = run_cli(["store", "verify", "--data", str(srv.data), "--no-progress"], {})
    assert r.returncode == 0, r.stdout + r.stderr
