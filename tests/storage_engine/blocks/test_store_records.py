"""Record and segment-header codecs: round trips, and garbage that must be rejected (hypothesis)."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from storage_engine.blocks import compression
from storage_engine.blocks.errors import BadRecord, BadSegment
from storage_engine.blocks.records import (
    HEADER_SIZE,
    SCHEME_CODES,
    Codec,
    RecordHeader,
    checksum,
    decode_header,
    decode_record,
    encode_header,
    encode_record,
)
from storage_engine.blocks.segments import (
    SEGMENT_HEADER_SIZE,
    Segment,
    SegmentHeader,
    decode_segment_header,
    parse_segment_name,
    segment_name,
)

digests = st.binary(min_size=32, max_size=32)
schemes = st.sampled_from([1, 2])
payloads = st.binary(min_size=1, max_size=4096)


@st.composite
def records(draw: st.DrawFn) -> tuple[int, bytes, bytes, int, int]:
    """(scheme, digest, stored bytes, raw_len, codec) a writer could produce."""
    scheme = draw(schemes)
    digest = draw(digests)
    stored = draw(payloads)
    codec = draw(st.sampled_from([Codec.RAW, Codec.ZSTD]))
    raw_len = len(stored) if codec == Codec.RAW else draw(st.integers(len(stored) + 1, (1 << 32) - 1))
    return scheme, digest, stored, raw_len, codec


@given(records())
def test_record_round_trip(rec: tuple[int, bytes, bytes, int, int]) -> None:
    scheme, digest, stored, raw_len, codec = rec
    buf = encode_record(scheme, digest, stored, raw_len, codec)
    assert len(buf) == HEADER_SIZE + len(stored)
    header, payload = decode_record(buf + b"trailing bytes are not ours")
    assert header == RecordHeader(scheme, codec, len(stored), raw_len, digest, checksum(stored))
    assert bytes(payload) == stored
    assert header.pack() == buf[:HEADER_SIZE]


@given(st.binary(max_size=300))
def test_decoder_rejects_garbage(garbage: bytes) -> None:
    """Arbitrary bytes: BadRecord, never another exception, never a record."""
    with pytest.raises(BadRecord):
        decode_record(garbage)


@given(st.binary(min_size=60, max_size=60), st.binary(max_size=64))
def test_decoder_rejects_garbage_with_magic(body: bytes, tail: bytes) -> None:
    """Even garbage that starts with the magic is refused (the header CRC is wrong)."""
    buf = b"NFR1" + body[4:] + tail
    assume(zlib.crc32(buf[:60]) != struct.unpack_from("<I", buf.ljust(64, b"\0"), 60)[0])
    with pytest.raises(BadRecord):
        decode_record(buf)


@given(records(), st.data())
def test_any_flipped_bit_is_detected(rec: tuple[int, bytes, bytes, int, int], data: st.DataObject) -> None:
    scheme, digest, stored, raw_len, codec = rec
    buf = bytearray(encode_record(scheme, digest, stored, raw_len, codec))
    pos = data.draw(st.integers(0, len(buf) - 1))
    bit = data.draw(st.integers(0, 7))
    buf[pos] ^= 1 << bit
    with pytest.raises(BadRecord):
        decode_record(buf)


@given(records(), st.data())
def test_truncated_record_is_rejected(rec: tuple[int, bytes, bytes, int, int], data: st.DataObject) -> None:
    scheme, digest, stored, raw_len, codec = rec
    buf = encode_record(scheme, digest, stored, raw_len, codec)
    cut = data.draw(st.integers(0, len(buf) - 1))
    with pytest.raises(BadRecord):
        decode_record(buf[:cut])


@given(records(), st.binary(min_size=1, max_size=64))
def test_torn_payload_is_rejected(rec: tuple[int, bytes, bytes, int, int], junk: bytes) -> None:
    """A header followed by the wrong bytes (a torn write left old data) fails the checksum."""
    scheme, digest, stored, raw_len, codec = rec
    buf = bytearray(encode_record(scheme, digest, stored, raw_len, codec))
    tail = (junk * (len(stored) // len(junk) + 1))[: len(stored)]
    assume(tail != stored)
    buf[HEADER_SIZE:] = tail
    with pytest.raises(BadRecord):
        decode_record(buf)


@pytest.mark.parametrize(
    "fields, why",
    [
        ((3, Codec.RAW, 10, 10), "unknown scheme"),
        ((1, 7, 10, 10), "unknown codec"),
        ((1, Codec.RAW, 10, 11), "stored_len != raw_len"),
        ((1, Codec.ZSTD, 10, 10), "not smaller"),
        ((1, Codec.RAW, 0, 0), "empty"),
    ],
)
def test_encoder_refuses_what_a_reader_would_reject(fields: tuple[int, int, int, int], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        encode_header(*fields, bytes(32), bytes(12))


def test_header_with_valid_crc_but_bad_fields_is_rejected() -> None:
    body = struct.pack("<4sBBHII32s12s", b"NFR1", 1, 0, 1, 10, 10, bytes(32), bytes(12))  # flags = 1
    with pytest.raises(BadRecord, match="flags"):
        decode_header(body + struct.pack("<I", zlib.crc32(body)))
    body = struct.pack("<4sBBHII32s12s", b"NFR1", 9, 0, 0, 10, 10, bytes(32), bytes(12))
    with pytest.raises(BadRecord, match="scheme"):
        decode_header(body + struct.pack("<I", zlib.crc32(body)))


@given(st.binary(min_size=1, max_size=20000))
def test_compression_round_trip(raw: bytes) -> None:
    stored, codec = compression.maybe_compress(raw, 3)
    if codec == Codec.ZSTD:
        assert len(stored) <= len(raw) - len(raw) // 8
        assert compression.decompress(stored, len(raw)) == raw
    else:
        assert bytes(stored) == raw


def test_compression_only_when_it_saves_an_eighth() -> None:
    assert compression.maybe_compress(os.urandom(100_000), 3)[1] == Codec.RAW
    assert compression.maybe_compress(b"a" * 100_000, 3)[1] == Codec.ZSTD


@given(st.binary(max_size=200), st.integers(1, 1 << 20))
def test_decompress_rejects_garbage(garbage: bytes, raw_len: int) -> None:
    try:
        out = compression.decompress(garbage, raw_len)
    except BadRecord:
        return
    assert len(out) == raw_len  # only a valid frame of exactly that length gets through


@given(st.integers(0, 2**63), st.integers(0, 2**32 - 1), st.binary(min_size=16, max_size=16))
def test_segment_header_round_trip(seg_id: int, flags: int, uuid: bytes) -> None:
    h = SegmentHeader(seg_id, flags, 123456789, uuid)
    raw = h.pack()
    assert len(raw) == SEGMENT_HEADER_SIZE
    assert decode_segment_header(raw) == h


@given(st.binary(max_size=80))
def test_segment_header_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(BadSegment):
        decode_segment_header(garbage)


def test_segment_names() -> None:
    assert parse_segment_name(segment_name(0x1234)) == 0x1234
    for bad in ["x.seg", "000000000000001g.seg", "0000000000000001.seg.foreign", "lock"]:
        assert parse_segment_name(bad) is None


@given(st.lists(records(), max_size=6), st.binary(max_size=200))
def test_segment_scan_stops_at_garbage(tmp_path_factory: pytest.TempPathFactory, recs: list, tail: bytes) -> None:
    """A segment holding valid records then arbitrary bytes: the scan returns exactly the records."""
    d = tmp_path_factory.mktemp("seg")
    seg = Segment.create(d, 1, bytes(16))
    offsets = [seg.append([encode_record(*r[:2], r[2], r[3], r[4])]) for r in recs]
    end = seg.write_end
    seg.append([tail]) if tail else None
    res = seg.scan()
    found = [(off, h.digest) for off, h in res.records]
    assert found[: len(recs)] == [(off, r[1]) for off, r in zip(offsets, recs)]
    # garbage may only ever parse as a record if it *is* one (valid header CRC and checksum)
    for off, h in res.records[len(recs) :]:
        assert off >= end
        decode_record(seg.read(off, h.record_len))
    assert res.end <= res.size


def test_the_worked_example_in_storage_format_md_is_what_the_encoder_writes() -> None:
    """docs/storage-format.md §3.3 shows one record byte by byte; it must stay true."""
    import re
    from pathlib import Path

    from hashmaps import block_digest

    doc = (Path(__file__).resolve().parents[3] / "docs" / "storage-format.md").read_text()
    block = doc.split("<!-- record-example -->", 1)[1].split("<!-- /record-example -->", 1)[0]
    shown = bytes.fromhex("".join(re.sub(r"\|.*\|", "", line)[10:] for line in block.splitlines() if line[:1].isdigit()))
    data = b"hello world"
    digest = block_digest(data, "blake3")
    assert shown == encode_record(SCHEME_CODES["blake3"], digest, data, len(data), Codec.RAW)
    h = decode_header(shown[:HEADER_SIZE])
    assert (h.scheme, h.codec, h.stored_len, h.raw_len, h.digest) == (2, 0, 11, 11, digest)
    assert h.checksum == digest[:12]
