"""net.pithos_hashmap: hashmap PUT bodies, GET/409 replies, and block splitting."""

from __future__ import annotations

import array
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import HashmapTooLarge, InvalidHashmap, ProtocolError
from net.pithos_hashmap import (
    MAX_OBJECT_SIZE,
    SHA256_EMPTY_HEX,
    BlockSplitter,
    Hashmap,
    block_count,
    format_hash_list_json,
    format_hash_list_text,
    format_hashmap_json,
    format_hashmap_text,
    max_hashmap_body,
    parse_hashmap,
    split_blocks,
)

BS = 4 * 1024 * 1024
A, B, C = ("a" * 64, "b" * 64, "0123456789abcdef" * 4)


def body(**doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_sha256_empty_constant() -> None:
    assert SHA256_EMPTY_HEX == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("size", "n"),
    [(0, 0), (1, 1), (BS - 1, 1), (BS, 1), (BS + 1, 2), (3 * BS, 3), (MAX_OBJECT_SIZE, 1310720)],
)
def test_block_count(size: int, n: int) -> None:
    assert block_count(size, BS) == n


def test_parse_valid() -> None:
    assert parse_hashmap(b'{"bytes":5,"hashes":["' + A.encode() + b'"]}', block_size=BS) == Hashmap(
        5, (A,), BS, "sha256"
    )
    hm = parse_hashmap(body(bytes=BS + 1, hashes=[A.upper(), C]), block_size=BS)
    assert hm.hashes == (A, C) and hm.size == BS + 1
    # extra keys tolerated, and block_size/block_hash accepted when they agree
    hm = parse_hashmap(
        body(block_size=BS, block_hash="blake3", bytes=BS, hashes=[B], x=1), block_size=BS, block_hash="blake3"
    )
    assert hm == Hashmap(BS, (B,), BS, "blake3")
    # pretty-printed JSON with whitespace, as a str
    text = json.dumps({"bytes": 2 * BS, "hashes": [A, B]}, indent=4)
    assert parse_hashmap(text, block_size=BS).hashes == (A, B)


def test_zero_bytes() -> None:
    empty = (SHA256_EMPTY_HEX,)
    assert parse_hashmap(body(bytes=0, hashes=[]), block_size=BS).hashes == empty
    assert parse_hashmap(body(bytes=0, hashes=[SHA256_EMPTY_HEX.upper()]), block_size=BS).hashes == empty
    with pytest.raises(InvalidHashmap):
        parse_hashmap(body(bytes=0, hashes=[A]), block_size=BS)
    with pytest.raises(InvalidHashmap):
        parse_hashmap(body(bytes=0, hashes=[SHA256_EMPTY_HEX, SHA256_EMPTY_HEX]), block_size=BS)
    assert parse_hashmap(body(bytes=0, hashes=[]), block_size=BS, block_hash="blake3").hashes == ()
    with pytest.raises(InvalidHashmap):
        parse_hashmap(body(bytes=0, hashes=[SHA256_EMPTY_HEX]), block_size=BS, block_hash="blake3")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'"x"', "JSON object"),
        (b"null", "JSON object"),
        (b'{"bytes":1}', "needs"),
        (b'{"hashes":[]}', "needs"),
        (b'{"bytes":-1,"hashes":[]}', "non-negative"),
        (b'{"bytes":1.0,"hashes":["' + b"a" * 64 + b'"]}', "non-negative"),
        (b'{"bytes":"1","hashes":["' + b"a" * 64 + b'"]}', "non-negative"),
        (b'{"bytes":true,"hashes":["' + b"a" * 64 + b'"]}', "non-negative"),
        (b'{"bytes":NaN,"hashes":[]}', "NaN"),
        (b'{"bytes":Infinity,"hashes":[]}', "Infinity"),
        (b'{"bytes":1,"hashes":"' + b"a" * 64 + b'"}', "must be a list"),
        (b'{"bytes":1,"hashes":[1]}', "hash #0"),
        (b'{"bytes":1,"hashes":["' + b"a" * 63 + b'"]}', "hash #0"),
        (b'{"bytes":1,"hashes":["' + b"a" * 65 + b'"]}', "hash #0"),
        (b'{"bytes":1,"hashes":["' + b"g" * 64 + b'"]}', "hash #0"),
        (b'{"bytes":1,"hashes":["' + "٣".encode() * 64 + b'"]}', "hash #0"),
        (b'{"bytes":1,"hashes":[]}', "need 1 hashes, got 0"),
        (b'{"bytes":4194305,"hashes":["' + b"a" * 64 + b'"]}', "need 2 hashes, got 1"),
        (b'{"bytes":1,"hashes":["' + b"a" * 64 + b'","' + b"a" * 64 + b'"]}', "need 1 hashes, got 2"),
        (b'{"bytes":1,"bytes":2,"hashes":[]}', "duplicate key"),
        (b'{"bytes":1,"hashes":[],"block_size":1024}', "block_size"),
        (b'{"bytes":1,"hashes":[],"block_size":"4194304"}', "block_size"),
        (b'{"bytes":1,"hashes":[],"block_hash":"blake3"}', "block_hash"),
        (b'{"bytes":' + b"9" * 5000 + b',"hashes":[]}', "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "not JSON|JSON object"),
    ],
)
def test_parse_invalid(raw: bytes, why: str) -> None:
    with pytest.raises(InvalidHashmap, match=why) as ei:
        parse_hashmap(raw, block_size=BS)
    assert ei.value.status == 400


def test_limits() -> None:
    limit = max_hashmap_body(BS)
    assert limit == 4096 + 1310720 * 80  # ~100 MiB for a 5 TiB object in 4 MiB blocks
    # a real hashmap of the largest object fits, pretty-printed
    assert (
        len(json.dumps({"bytes": MAX_OBJECT_SIZE, "hashes": [A] * block_count(MAX_OBJECT_SIZE, BS)}, indent=2)) < limit
    )
    with pytest.raises(HashmapTooLarge) as ei:
        parse_hashmap(b" " * (limit + 1), block_size=BS)
    assert ei.value.status == 413
    with pytest.raises(HashmapTooLarge):
        parse_hashmap(body(bytes=MAX_OBJECT_SIZE + 1, hashes=[]), block_size=BS)
    small = max_hashmap_body(1024, max_object_size=4096)
    hm = parse_hashmap(body(bytes=4096, hashes=[A] * 4), block_size=1024, max_object_size=4096)
    assert len(hm.hashes) == 4 and small < 5000
    with pytest.raises(ValueError):
        parse_hashmap(b"{}", block_size=0)


def test_replies_exact_bytes() -> None:
    assert format_hashmap_json(5, [A], block_size=BS, block_hash="sha256") == (
        b'{"block_size":4194304,"block_hash":"sha256","bytes":5,"hashes":["' + A.encode() + b'"]}'
    )
    assert (
        format_hashmap_json(0, [], block_size=BS, block_hash="blake3")
        == b'{"block_size":4194304,"block_hash":"blake3","bytes":0,"hashes":[]}'
    )
    assert format_hashmap_text([A, B]) == (A + "\n" + B + "\n").encode()
    assert format_hashmap_text([]) == b""
    assert format_hash_list_json([A, B]) == b'["' + A.encode() + b'","' + B.encode() + b'"]'
    assert format_hash_list_json([]) == b"[]"
    assert format_hash_list_text([C]) == C.encode() + b"\n"


# --- block splitting ---------------------------------------------------------------------


def test_split_blocks() -> None:
    data = bytes(range(10))
    assert [bytes(b) for b in split_blocks(data, 4)] == [b"\x00\x01\x02\x03", b"\x04\x05\x06\x07", b"\x08\x09"]
    assert [bytes(b) for b in split_blocks(data, 5)] == [data[:5], data[5:]]
    assert list(split_blocks(b"", 4)) == []
    views = list(split_blocks(data, 4))
    assert views[0].obj is data  # zero-copy
    with pytest.raises(ValueError):
        list(split_blocks(data, 0))
    words = array.array("I", [1, 2, 3])  # not a byte buffer: cast, not misread
    blocks = list(split_blocks(words, 5))  # type: ignore[arg-type]
    assert [len(b) for b in blocks] == [5, 5, 2]
    assert b"".join(bytes(b) for b in blocks) == words.tobytes()


def test_splitter_basics() -> None:
    s = BlockSplitter(4)
    assert s.feed(b"ab") == [] and s.pending == 2
    out = s.feed(b"cdefghij")
    assert [bytes(b) for b in out] == [b"abcd", b"efgh"] and s.pending == 2
    assert [bytes(b) for b in s.feed(b"kl")] == [b"ijkl"]
    assert s.feed(b"") == []
    assert [bytes(b) for b in s.feed(b"m")] == []
    assert [bytes(b) for b in s.finish()] == [b"m"]
    assert s.total == 13
    with pytest.raises(RuntimeError):
        s.feed(b"x")
    t = BlockSplitter(4)
    assert t.feed(b"abcd")[0].obj is not None and t.finish() == []


def test_splitter_views_survive_reuse_of_its_buffer() -> None:
    s = BlockSplitter(4)
    s.feed(b"ab")
    first = s.feed(b"cd")  # assembled in the buffer: must be a copy
    s.feed(b"wx")
    s.feed(b"yz")
    assert bytes(first[0]) == b"abcd"


@given(st.binary(max_size=300), st.integers(1, 64), st.data())
def test_every_chunking_gives_the_same_blocks(data: bytes, bs: int, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=20)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    s = BlockSplitter(bs)
    blocks: list[bytes] = []
    for c in chunks:
        blocks += [bytes(b) for b in s.feed(c)]
        assert s.pending < bs  # never more than one partial block held
    blocks += [bytes(b) for b in s.finish()]
    assert blocks == [bytes(b) for b in split_blocks(data, bs)]
    assert b"".join(blocks) == data and s.total == len(data)
    assert all(len(b) == bs for b in blocks[:-1]) and (not blocks or 0 < len(blocks[-1]) <= bs)


_hex = st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)


@given(st.integers(0, 50 * 1024), st.data())
def test_parse_format_round_trip(size: int, draw: st.DataObject) -> None:
    bs = 4096
    n = block_count(size, bs)
    hashes = draw.draw(st.lists(_hex, min_size=n, max_size=n))
    hm = parse_hashmap(body(bytes=size, hashes=hashes), block_size=bs)
    assert hm.hashes == (tuple(h.lower() for h in hashes) if size else (SHA256_EMPTY_HEX,))
    reply = json.loads(format_hashmap_json(hm.size, hm.hashes, block_size=bs, block_hash="sha256"))
    assert parse_hashmap(json.dumps(reply), block_size=bs) == hm


_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(["bytes", "hashes", "block_size", "block_hash", "x"]), kids, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.binary(max_size=200) | st.text(max_size=200).map(str.encode) | _json_like.map(lambda d: json.dumps(d).encode())
)
def test_arbitrary_bodies_only_raise_typed_errors(raw: bytes) -> None:
    try:
        parse_hashmap(raw, block_size=16)
    except ProtocolError:
        pass
