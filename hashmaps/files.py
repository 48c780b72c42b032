"""Hashing whole files: mmap where possible, streaming reads otherwise."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from .digests import block_digests_packed, unpack
from .merkle import top_hash
from .schemes import DEFAULT_BLOCK_SIZE


@dataclass(frozen=True)
class FileHashes:
    size: int
    digests: list[bytes]
    top_hash: bytes

    @property
    def hexes(self) -> list[str]:
        return [d.hex() for d in self.digests]


def hash_file(
    path: str | os.PathLike[str],
    scheme: str,
    block_size: int = DEFAULT_BLOCK_SIZE,
    threads: int = 1,
    stream: bool = False,
) -> FileHashes:
    """Size, block digests and top hash of the file at `path`.

    Regular files are mapped and hashed in one native call; pipes and other
    unmappable files (or stream=True) are read block by block.
    """
    with open(Path(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not stream and size > 0:
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    packed = block_digests_packed(mm, scheme, block_size, threads)
                    return FileHashes(len(mm), unpack(packed), top_hash(packed, len(mm), scheme))
            except (ValueError, OSError):
                pass  # not mappable (special file, or it shrank): stream it
        parts: list[bytes] = []
        total = 0
        buf = bytearray(block_size)
        view = memoryview(buf)
        while True:
            n = f.readinto(view)
            filled = n or 0
            while filled and filled < block_size:  # short reads on pipes
                more = f.readinto(view[filled:])
                if not more:
                    break
                filled += more
            if not filled:
                break
            parts.append(block_digests_packed(view[:filled], scheme, block_size))
            total += filled
            if filled < block_size:
                break
        packed = b"".join(parts) if total else block_digests_packed(b"", scheme, block_size)
        return FileHashes(total, unpack(packed), top_hash(packed, total, scheme))
