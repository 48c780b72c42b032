"""Block-hash sync bodies (docs/blockd.md): the hashmap a client PUTs, the hashmap GET
reply, the 409 missing-digest list, and block splitting of `POST ?update` bodies.

A hashmap names an object by its size and the digests of its blocks, so a client can
create an object without sending data the server already has. Validation here is all
that can be checked without the block store: shape, hex digests, and that the number of
digests fits the size (`ceil(bytes / block_size)`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from net.http_errors import HashmapTooLarge, InvalidHashmap

__all__ = [
    "MAX_OBJECT_SIZE",
    "SHA256_EMPTY_HEX",
    "BlockSplitter",
    "Hashmap",
    "Scheme",
    "block_count",
    "format_hash_list_json",
    "format_hash_list_text",
    "format_hashmap_json",
    "format_hashmap_text",
    "max_hashmap_body",
    "parse_hashmap",
    "split_blocks",
]

Scheme = Literal["sha256", "blake3"]
# SHA-256 of the empty string: the one digest of a 0-byte sha256 object (docs/hash-schemes.md).
SHA256_EMPTY_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_OBJECT_SIZE = 5 * 2**40  # 5 TiB, Swift's largest object
_HEX = frozenset("0123456789abcdefABCDEF")
# A JSON body may spend this much on each digest beyond its hex (quotes, comma, spaces,
# newline and indentation from a pretty printer), plus room for the other keys.
_PER_HASH_SLACK = 16
_BODY_SLACK = 4096


@dataclass(frozen=True, slots=True)
class Hashmap:
    """A validated hashmap: `size` bytes made of blocks with these lowercase hex digests."""

    size: int
    hashes: tuple[str, ...]
    block_size: int
    block_hash: Scheme


def block_count(size: int, block_size: int) -> int:
    """ceil(size / block_size): how many digests a hashmap of `size` bytes lists."""
    return -(-size // block_size)


def max_hashmap_body(block_size: int, *, max_object_size: int = MAX_OBJECT_SIZE, digest_len: int = 32) -> int:
    """The largest PUT ?hashmap body worth reading: a hashmap of the largest object,
    generously spaced. Check Content-Length against it before reading the body."""
    return _BODY_SLACK + block_count(max_object_size, block_size) * (2 * digest_len + _PER_HASH_SLACK)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise InvalidHashmap(f"duplicate key {k[:20]!r} in the hashmap")
        d[k] = v
    return d


def _reject_constant(name: str) -> Any:
    raise InvalidHashmap(f"{name} is not valid JSON")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_hashmap(
    body: bytes | str,
    *,
    block_size: int,
    block_hash: Scheme = "sha256",
    digest_len: int = 32,
    max_object_size: int = MAX_OBJECT_SIZE,
) -> Hashmap:
    """Parse and check a PUT ?hashmap body `{"bytes": N, "hashes": [hex, ...]}` against
    the container's block size and scheme.

    Extra keys are ignored, except `block_size` / `block_hash`, which must then agree with
    the container's (hashes of another block size or scheme would name the wrong blocks).
    Digests are normalised to lowercase. A 0-byte object lists no digest, or for sha256
    [H("")], normalised to [H("")] (docs/hash-schemes.md). Raises InvalidHashmap (400) or
    HashmapTooLarge (413).
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    limit = max_hashmap_body(block_size, max_object_size=max_object_size, digest_len=digest_len)
    if len(body) > limit:
        raise HashmapTooLarge(f"hashmap body over {limit} bytes")
    try:
        doc = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except InvalidHashmap:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, int too long
        raise InvalidHashmap(f"hashmap is not JSON: {str(e)[:80]}") from None
    if not isinstance(doc, dict):
        raise InvalidHashmap("hashmap must be a JSON object")
    if "bytes" not in doc or "hashes" not in doc:
        raise InvalidHashmap('hashmap needs "bytes" and "hashes"')
    size, hashes = doc["bytes"], doc["hashes"]
    if not _is_int(size) or size < 0:
        raise InvalidHashmap('"bytes" must be a non-negative integer')
    if size > max_object_size:
        raise HashmapTooLarge(f"object of {size} bytes is over the {max_object_size}-byte limit")
    if "block_size" in doc and (not _is_int(doc["block_size"]) or doc["block_size"] != block_size):
        raise InvalidHashmap(f'"block_size" differs from the container\'s {block_size}')
    if "block_hash" in doc and doc["block_hash"] != block_hash:
        raise InvalidHashmap(f'"block_hash" differs from the container\'s {block_hash}')
    if not isinstance(hashes, list):
        raise InvalidHashmap('"hashes" must be a list')
    want = block_count(size, block_size)
    out: list[str] = []
    for i, h in enumerate(hashes):
        if not isinstance(h, str) or len(h) != 2 * digest_len or not _HEX.issuperset(h):
            raise InvalidHashmap(f"hash #{i} is not {2 * digest_len} hex digits")
        out.append(h.lower())
    if size == 0:
        if block_hash == "sha256" and out in ([], [SHA256_EMPTY_HEX]):
            out = [SHA256_EMPTY_HEX]
        elif out:
            raise InvalidHashmap(
                "a 0-byte object lists no block digest" + (' (or only H(""))' if block_hash == "sha256" else "")
            )
    elif len(out) != want:
        raise InvalidHashmap(f"{size} bytes in blocks of {block_size} need {want} hashes, got {len(out)}")
    return Hashmap(size, tuple(out), block_size, block_hash)


_COMPACT = (",", ":")


def format_hashmap_json(size: int, hashes: Sequence[str], *, block_size: int, block_hash: str) -> bytes:
    """The `GET ?hashmap&format=json` reply body."""
    doc = {"block_size": block_size, "block_hash": block_hash, "bytes": size, "hashes": list(hashes)}
    return json.dumps(doc, separators=_COMPACT).encode("ascii")


def format_hashmap_text(hashes: Sequence[str]) -> bytes:
    """Plain-text hashmap: one hex digest per line, each line ended by a newline."""
    return "".join(h + "\n" for h in hashes).encode("ascii")


def format_hash_list_json(hashes: Sequence[str]) -> bytes:
    """A JSON list of hex digests: the 409 missing-blocks reply and the `POST ?update` reply."""
    return json.dumps(list(hashes), separators=_COMPACT).encode("ascii")


format_hash_list_text = format_hashmap_text


# --- POST ?update bodies: blocks at block-size boundaries ---------------------------------


def _bytes_view(data: bytes | bytearray | memoryview) -> memoryview:
    mv = memoryview(data)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


def split_blocks(data: bytes | bytearray | memoryview, block_size: int) -> Iterator[memoryview]:
    """Zero-copy block views of a whole body; the last may be short, an empty body has none."""
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    mv = _bytes_view(data)
    for off in range(0, len(mv), block_size):
        yield mv[off : off + block_size]


class BlockSplitter:
    """Cut a body arriving in arbitrary network chunks into block-size blocks.

    Holds at most one partial block. A block that lies wholly inside a chunk is handed out
    as a view of that chunk (no copy: keep the chunk unmodified until the view is used);
    one that straddles chunks is assembled in a fresh buffer, which is then handed out
    and never touched again by the splitter.
    """

    def __init__(self, block_size: int) -> None:
        if block_size <= 0:
            raise ValueError("block_size must be positive")
        self.block_size = block_size
        self.total = 0  # bytes fed so far
        self._buf = bytearray()
        self._done = False

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of their block."""
        return len(self._buf)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[memoryview]:
        """The blocks this chunk completes, in order."""
        if self._done:
            raise RuntimeError("feed() after finish()")
        mv = _bytes_view(chunk)
        self.total += len(mv)
        bs = self.block_size
        out: list[memoryview] = []
        if self._buf:
            need = bs - len(self._buf)
            self._buf += mv[:need]
            mv = mv[need:]
            if len(self._buf) < bs:
                return out
            out.append(memoryview(self._buf))
            self._buf = bytearray()
        whole = len(mv) - len(mv) % bs
        out.extend(mv[off : off + bs] for off in range(0, whole, bs))
        if whole < len(mv):
            self._buf = bytearray(mv[whole:])
        return out

    def finish(self) -> list[memoryview]:
        """The last, short block if any; the splitter accepts no more data after this."""
        self._done = True
        if not self._buf:
            return []
        last = memoryview(self._buf)
        self._buf = bytearray()
        return [last]
