"""Record codec: one stored block = a 64-byte header followed by its stored bytes.

Pure functions over buffers, no I/O, so the format (docs/storage-format.md) can
be tested exhaustively and the decoder fed garbage.

Header (little-endian):

    off len field
      0   4 magic "NFR1"
      4   1 scheme       1 = sha256, 2 = blake3
      5   1 codec        0 = raw, 1 = zstd
      6   2 flags        0 (reserved; a reader rejects any other value)
      8   4 stored_len   bytes that follow the header
     12   4 raw_len      length of the block once decoded
     16  32 digest       the block's digest under its scheme
     48  12 checksum     BLAKE3(stored bytes), first 12 bytes
     60   4 header_crc   CRC-32 (zlib) of bytes 0..59

Why these checksums: the payload checksum is BLAKE3 because it runs at about
3 GB/s a core here (zlib's CRC-32 is slower, 2.5 GB/s, and weaker) and because
for a raw blake3 block it *is* the block digest truncated, so verify-on-put and
the checksum cost one hash pass together.  The header has its own CRC-32 so a
torn or corrupt header is caught before its lengths are trusted.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import blake3 as _blake3

from .errors import BadRecord

MAGIC = b"NFR1"
HEADER_SIZE = 64
CHECKSUM_SIZE = 12
DIGEST_SIZE = 32
MAX_STORED_LEN = 0xFFFFFFFF

_BODY = struct.Struct("<4sBBHII32s12s")  # 60 bytes, then the CRC
_CRC = struct.Struct("<I")
assert _BODY.size + _CRC.size == HEADER_SIZE

SCHEME_CODES: dict[str, int] = {"sha256": 1, "blake3": 2}
SCHEME_NAMES: dict[int, str] = {v: k for k, v in SCHEME_CODES.items()}

Buffer = bytes | bytearray | memoryview


class Codec(IntEnum):
    RAW = 0
    ZSTD = 1


def scheme_code(scheme: str) -> int:
    """The on-disk number of a hash scheme; ValueError for an unknown one."""
    try:
        return SCHEME_CODES[scheme]
    except KeyError:
        raise ValueError(f"unknown hash scheme {scheme!r}") from None


def scheme_name(code: int) -> str:
    try:
        return SCHEME_NAMES[code]
    except KeyError:
        raise ValueError(f"unknown scheme code {code}") from None


def checksum(payload: Any) -> bytes:
    """The record checksum of stored bytes: BLAKE3 truncated to 12 bytes."""
    return _blake3.blake3(payload).digest()[:CHECKSUM_SIZE]


@dataclass(frozen=True, slots=True)
class RecordHeader:
    scheme: int
    codec: int
    stored_len: int
    raw_len: int
    digest: bytes
    checksum: bytes

    @property
    def record_len(self) -> int:
        return HEADER_SIZE + self.stored_len

    @property
    def key(self) -> bytes:
        """The index key: scheme code byte + digest."""
        return bytes((self.scheme,)) + self.digest

    def pack(self) -> bytes:
        return encode_header(self.scheme, self.codec, self.stored_len, self.raw_len, self.digest, self.checksum)


def _check_fields(scheme: int, codec: int, stored_len: int, raw_len: int) -> str | None:
    """Why these header fields cannot describe a record we write (None if they can)."""
    if scheme not in SCHEME_NAMES:
        return f"unknown scheme {scheme}"
    if codec == Codec.RAW:
        if stored_len != raw_len:
            return "raw record with stored_len != raw_len"
    elif codec == Codec.ZSTD:
        if stored_len >= raw_len:
            return "compressed record not smaller than its block"
    else:
        return f"unknown codec {codec}"
    if stored_len <= 0 or raw_len <= 0:
        return "empty record"  # the empty block is the zero block: never stored
    return None


def encode_header(scheme: int, codec: int, stored_len: int, raw_len: int, digest: bytes, checksum_: bytes) -> bytes:
    """The 64 header bytes; ValueError for fields a reader would reject."""
    why = _check_fields(scheme, codec, stored_len, raw_len)
    if why:
        raise ValueError(why)
    if stored_len > MAX_STORED_LEN or raw_len > MAX_STORED_LEN:
        raise ValueError("block too large for a record (max 4 GiB - 1)")
    if len(digest) != DIGEST_SIZE or len(checksum_) != CHECKSUM_SIZE:
        raise ValueError("digest must be 32 bytes and checksum 12")
    body = _BODY.pack(MAGIC, scheme, codec, 0, stored_len, raw_len, digest, checksum_)
    return body + _CRC.pack(zlib.crc32(body))


def decode_header(buf: Any) -> RecordHeader:
    """Parse and check 64 header bytes; BadRecord for anything but a valid header."""
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    if len(mv) < HEADER_SIZE:
        raise BadRecord(f"short header ({len(mv)} of {HEADER_SIZE} bytes)")
    magic, scheme, codec, flags, stored_len, raw_len, digest, cks = _BODY.unpack_from(mv, 0)
    if magic != MAGIC:
        raise BadRecord("bad record magic")
    (crc,) = _CRC.unpack_from(mv, _BODY.size)
    if zlib.crc32(mv[: _BODY.size]) != crc:
        raise BadRecord("record header checksum mismatch")
    if flags != 0:
        raise BadRecord(f"unknown record flags {flags:#x}")
    why = _check_fields(scheme, codec, stored_len, raw_len)
    if why:
        raise BadRecord(why)
    return RecordHeader(scheme, codec, stored_len, raw_len, digest, cks)


def encode_record(scheme: int, digest: bytes, stored: Buffer, raw_len: int, codec: int) -> bytes:
    """A whole record (header + stored bytes) as one bytes object; for tests and tools."""
    return encode_header(scheme, codec, len(stored), raw_len, digest, checksum(stored)) + bytes(stored)


def verify_payload(header: RecordHeader, payload: Any) -> None:
    """BadRecord unless `payload` is exactly the stored bytes the header describes."""
    if len(payload) != header.stored_len:
        raise BadRecord(f"record payload is {len(payload)} bytes, header says {header.stored_len}")
    if checksum(payload) != header.checksum:
        raise BadRecord("record checksum mismatch")


def decode_record(buf: Any) -> tuple[RecordHeader, memoryview]:
    """Header and verified stored bytes of the record at the start of `buf`.

    The stored bytes are a zero-copy view; BadRecord if anything is off
    (header, length, checksum).  Decompression is separate (compression.py).
    """
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    header = decode_header(mv)
    end = HEADER_SIZE + header.stored_len
    if len(mv) < end:
        raise BadRecord(f"record truncated ({len(mv)} of {end} bytes)")
    payload = mv[HEADER_SIZE:end]
    verify_payload(header, payload)
    return header, payload
