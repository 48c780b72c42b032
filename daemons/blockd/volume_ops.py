"""Volume operations by name, with JSON-able arguments and results.

The one implementation behind the admin API of nefeli-blockd and behind
`nefeli volume` when no daemon runs (then the CLI opens the store itself).
Each op validates its arguments and raises VolumeError (or a metadata error)
with a message for the operator; nothing changes on a refusal.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from storage_engine.objects.store import ObjectStore
from storage_engine.volumes import VolumeError, VolumeStore

T = TypeVar("T")
Progress = Callable[[int, int], Awaitable[None]]
COPY_CHUNK = 4 << 20


@dataclass
class VolumeOps:
    volumes: VolumeStore
    objects: ObjectStore | None = None

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def call(self, op: str, args: dict[str, Any], progress: Progress | None = None) -> Any:
        fn = getattr(self, f"op_{op}", None)
        if fn is None:
            raise VolumeError(f"unknown volume operation {op!r}")
        try:
            return await fn(_Args(op, args), progress or _no_progress)
        except TypeError as exc:  # e.g. a size sent as a string
            raise VolumeError(f"{op}: {exc}") from None

    # ------------------------------------------------------------------ ops

    async def op_create(self, a: _Args, _p: Progress) -> Any:
        kw: dict[str, Any] = {}
        if "block_size" in a.args:
            kw["block_size"] = a.number("block_size")
        if "scheme" in a.args:
            kw["scheme"] = a.text("scheme")
        info = await self._run(self.volumes.create, a.text("name"), a.number("size"), **kw)
        return info.as_json()

    async def op_snapshot(self, a: _Args, _p: Progress) -> Any:
        return (await self._run(self.volumes.snapshot, a.text("volume"), a.text("snapshot"))).as_json()

    async def op_clone(self, a: _Args, _p: Progress) -> Any:
        source, name = a.text("source"), a.text("name")
        if "/" not in source:
            return (await self._run(self.volumes.clone, source, name)).as_json()
        account, container, obj = self._object_path(source, a.args.get("account"))
        objects = self._objects()
        version = await objects.meta.objects.get(account, container, obj)
        hmap = await objects.hashmap(version)
        size = a.number("size") if "size" in a.args else None
        info = await self._run(self.volumes.clone_map, hmap, name, size=size)
        return info.as_json()

    async def op_rm(self, a: _Args, _p: Progress) -> Any:
        await self._run(self.volumes.delete, a.text("name"))
        return None

    async def op_resize(self, a: _Args, _p: Progress) -> Any:
        return (await self._run(self.volumes.resize, a.text("name"), a.number("size"))).as_json()

    async def op_flatten(self, a: _Args, _p: Progress) -> Any:
        return (await self._run(self.volumes.flatten, a.text("name"))).as_json()

    async def op_rollback(self, a: _Args, _p: Progress) -> Any:
        return (await self._run(self.volumes.rollback, a.text("volume"), a.text("snapshot"))).as_json()

    async def op_diff(self, a: _Args, _p: Progress) -> Any:
        ranges = await self._run(self.volumes.diff, a.text("a"), a.text("b"))
        return [[off, n] for off, n in ranges]

    async def op_info(self, a: _Args, _p: Progress) -> Any:
        return (await self._run(self.volumes.info, a.text("name"))).as_json()

    async def op_setinfo(self, a: _Args, _p: Progress) -> Any:
        metadata = a.args.get("metadata", "")
        if not isinstance(metadata, str):
            raise VolumeError("setinfo: metadata must be a string")
        await self._run(self.volumes.set_metadata, a.text("name"), metadata)
        return None

    async def op_ls(self, _a: _Args, _p: Progress) -> Any:
        names = await self._run(self.volumes.names)
        return [(await self._run(self.volumes.info, n)).as_json() for n in names]

    async def op_publish(self, a: _Args, _p: Progress) -> Any:
        """A snapshot becomes an object: the object's map names the snapshot's blocks (no copy)."""
        snap = a.text("snapshot")
        account, container_name, obj = self._object_path(a.text("object"), a.args.get("account"))
        objects = self._objects()
        container = await objects.meta.containers.get(account, container_name)
        scheme, size, block_size, digests = await self._run(self.volumes.hash_list, snap)
        pol = container.policy
        if (pol.hash_scheme, pol.block_size) != (scheme, block_size):
            raise VolumeError(
                f"container {container_name} keeps {pol.hash_scheme} blocks of {pol.block_size} bytes; "
                f"snapshot {snap} has {scheme} blocks of {block_size}"
            )
        hashes = [digests[i : i + 32] for i in range(0, len(digests), 32)]
        result = await objects.commit(account, container, obj, size=size, digests=hashes, modified_by=account,
                                      content_type="application/octet-stream")
        return {"object": f"{account}/{container_name}/{obj}", "bytes": size, "version": result.version.serial}

    async def op_import(self, a: _Args, progress: Progress) -> Any:
        """A new volume with a file's bytes (zero blocks stored as nothing)."""
        path, name = Path(a.text("path")), a.text("name")
        size = os.stat(path).st_size
        vsize = -(-size // 512) * 512
        kw = {"block_size": a.number("block_size")} if "block_size" in a.args else {}
        await self._run(self.volumes.create, name, vsize, **kw)
        vol = self.volumes.open(name)
        try:
            with open(path, "rb") as f:
                done = 0
                while done < size:
                    chunk = await self._run(f.read, COPY_CHUNK)
                    if not chunk:
                        break
                    await self._run(vol.write, done, chunk)
                    done += len(chunk)
                    await progress(done, size)
            await self._run(vol.flush)
        finally:
            self.volumes.release(vol)
        return (await self._run(self.volumes.info, name)).as_json()

    async def op_export(self, a: _Args, progress: Progress) -> Any:
        """A volume's bytes into a file (sparse where the volume reads zeros)."""
        name, path = a.text("name"), Path(a.text("path"))
        vol = self.volumes.open(name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                for off, n, zero in await self._run(vol.allocation, 0, vol.size):
                    pos = off
                    while not zero and pos < off + n:
                        chunk = await self._run(vol.read, pos, min(COPY_CHUNK, off + n - pos))
                        await self._run(os.pwrite, fd, chunk, pos)
                        pos += len(chunk)
                        await progress(pos, vol.size)
                os.ftruncate(fd, vol.size)
                await self._run(os.fsync, fd)
            finally:
                os.close(fd)
            await progress(vol.size, vol.size)
        finally:
            self.volumes.release(vol)
        return {"name": name, "path": str(path), "bytes": vol.size}

    # ------------------------------------------------------------------ helpers

    def _objects(self) -> ObjectStore:
        if self.objects is None:
            raise VolumeError("objects are not available here")
        return self.objects

    @staticmethod
    def _object_path(path: str, account: Any) -> tuple[str, str, str]:
        """ACCOUNT/CONTAINER/OBJECT, or CONTAINER/OBJECT with `account` given."""
        parts = path.split("/", 2)
        if len(parts) == 3 and (account is None or account == parts[0]):
            return parts[0], parts[1], parts[2]
        if isinstance(account, str) and account:
            cont, _, obj = path.partition("/")
            if cont and obj:
                return account, cont, obj
        raise VolumeError(f"{path!r}: an object is ACCOUNT/CONTAINER/OBJECT (or CONTAINER/OBJECT with --account)")


async def _no_progress(_done: int, _total: int) -> None:
    return None


class _Args:
    """Typed access to an op's JSON arguments."""

    def __init__(self, op: str, args: dict[str, Any]) -> None:
        self.op = op
        self.args = args

    def text(self, key: str) -> str:
        value = self.args.get(key)
        if not isinstance(value, str) or not value:
            raise VolumeError(f"{self.op}: {key} must be a non-empty string")
        return value

    def number(self, key: str) -> int:
        value = self.args.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise VolumeError(f"{self.op}: {key} must be a non-negative integer")
        return value
