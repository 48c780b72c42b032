"""hashmaps: the rules of docs/hash-schemes.md, cross-checked against a plain implementation here."""

from __future__ import annotations

import hashlib
import os

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hashmaps
from hashmaps import SHA256_EMPTY, block_digests, hash_file, top_hash

BS = 4096  # small blocks keep the edge cases cheap; the rules do not depend on size


# --- a plain reference, written from docs/hash-schemes.md and nothing else -------------------------


def ref_sha256_digests(data: bytes, bs: int) -> list[bytes]:
    if not data:
        return [hashlib.sha256(b"").digest()]
    return [hashlib.sha256(data[i : i + bs].rstrip(b"\0")).digest() for i in range(0, len(data), bs)]


def ref_sha256_top(digests: list[bytes]) -> bytes:
    if not digests:
        return hashlib.sha256(b"").digest()
    if len(digests) == 1:
        return digests[0]
    level = list(digests)
    while len(level) & (len(level) - 1):
        level.append(bytes(32))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def ref_blake3_digests(data: bytes, bs: int) -> list[bytes]:
    return [blake3.blake3(data[i : i + bs]).digest() for i in range(0, len(data), bs)]


def ref_blake3_top(digests: list[bytes], size: int) -> bytes:
    level = list(digests)
    while len(level) > 1:
        nxt = [
            blake3.blake3(level[i] + level[i + 1], derive_key_context="nefeli 2026 merkle node").digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    root = level[0] if level else bytes(32)
    return blake3.blake3(size.to_bytes(8, "little") + root, derive_key_context="nefeli 2026 object root").digest()


def reference(data: bytes, scheme: str, bs: int) -> tuple[list[bytes], bytes]:
    if scheme == "sha256":
        d = ref_sha256_digests(data, bs)
        return d, ref_sha256_top(d)
    d = ref_blake3_digests(data, bs)
    return d, ref_blake3_top(d, len(data))


# --- the worked example ------------------------------------------------------------------


def test_worked_three_block_sha256_example() -> None:
    """docs/hash-schemes.md: three blocks, top = H(H(h0||h1) || H(h2||0^32))."""
    data = os.urandom(2 * BS) + b"tail" + bytes(100)
    h = [hashlib.sha256(data[i : i + BS].rstrip(b"\0")).digest() for i in range(0, len(data), BS)]
    H = lambda b: hashlib.sha256(b).digest()  # noqa: E731
    expected = H(H(h[0] + h[1]) + H(h[2] + bytes(32)))
    digests = block_digests(data, "sha256", BS)
    assert digests == h
    assert top_hash(digests, len(data), "sha256") == expected
    assert h[2] == H(b"tail"), "the last block is hashed after trailing zeros are stripped"


# --- edge cases, both schemes --------------------------------------------------------------

EDGE_CASES = {
    "empty": b"",
    "one byte": b"x",
    "one zero byte": b"\0",
    "exact block": os.urandom(BS),
    "exact multiple": os.urandom(4 * BS),
    "one byte over": os.urandom(2 * BS) + b"y",
    "trailing zeros": os.urandom(BS - 10) + bytes(10) + os.urandom(100) + bytes(300),
    "all-zero blocks": bytes(3 * BS),
    "zero block in the middle": os.urandom(BS) + bytes(BS) + os.urandom(BS),
    "five blocks": os.urandom(5 * BS - 7),
}


@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_cases_match_reference(scheme: str, case: str) -> None:
    data = EDGE_CASES[case]
    digests, top = reference(data, scheme, BS)
    assert block_digests(data, scheme, BS) == digests
    assert top_hash(digests, len(data), scheme) == top
    assert top_hash(b"".join(digests), len(data), scheme) == top, "packed digests give the same top"


def test_empty_object_rules() -> None:
    assert block_digests(b"", "sha256", BS) == [SHA256_EMPTY]
    assert top_hash([SHA256_EMPTY], 0, "sha256") == SHA256_EMPTY
    assert top_hash([], 0, "sha256") == SHA256_EMPTY
    assert block_digests(b"", "blake3", BS) == []
    assert top_hash([], 0, "blake3") == ref_blake3_top([], 0)


def test_all_zero_sha256_block_has_empty_digest() -> None:
    for n in (1, 100, BS):
        assert block_digests(bytes(n), "sha256", BS) == [SHA256_EMPTY]
    assert hashmaps.zero_block_digest("sha256", BS) == SHA256_EMPTY
    assert hashmaps.zero_block_digest("blake3", BS) == blake3.blake3(bytes(BS)).digest()


def test_blake3_top_binds_size() -> None:
    """Same digests, different sizes: different blake3 tops, same sha256 top (the known weakness)."""
    d = block_digests(b"abc", "blake3", BS)
    assert top_hash(d, 3, "blake3") != top_hash(d, 4, "blake3")
    s = block_digests(b"abc", "sha256", BS)
    assert top_hash(s, 3, "sha256") == top_hash(s, 4, "sha256")


def test_blake3_tree_distinguishes_node_from_leaf() -> None:
    """A two-leaf tree's root differs from a one-leaf list holding that root."""
    d = block_digests(os.urandom(2 * BS), "blake3", BS)
    two = top_hash(d, 2 * BS, "blake3")
    inner = blake3.blake3(d[0] + d[1], derive_key_context="nefeli 2026 merkle node").digest()
    assert two == ref_blake3_top([inner], 2 * BS)
    assert inner != blake3.blake3(d[0] + d[1]).digest()


def test_buffer_kinds(tmp_path) -> None:
    import mmap

    data = os.urandom(3 * BS + 5)
    expected = block_digests(data, "blake3", BS)
    assert block_digests(bytearray(data), "blake3", BS) == expected
    assert block_digests(memoryview(data), "blake3", BS) == expected
    p = tmp_path / "f"
    p.write_bytes(data)
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert block_digests(mm, "blake3", BS) == expected


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown hash scheme"):
        block_digests(b"x", "md5", BS)
    with pytest.raises(ValueError):
        block_digests(b"x", "sha256", 0)
    with pytest.raises(ValueError):
        top_hash([b"short"], 5, "sha256")
    with pytest.raises(ValueError):
        top_hash(b"\0" * 33, 5, "blake3")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
def test_threads_give_same_digests(scheme: str, threads: int) -> None:
    data = os.urandom(7 * BS + 3) + bytes(BS)
    assert block_digests(data, scheme, BS, threads=threads) == reference(data, scheme, BS)[0]


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
@pytest.mark.parametrize("size", [0, 1, BS, 3 * BS + 1])
def test_hash_file_mmap_and_stream(tmp_path, scheme: str, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "obj"
    p.write_bytes(data)
    digests, top = reference(data, scheme, BS)
    for stream in (False, True):
        fh = hash_file(p, scheme, BS, stream=stream)
        assert (fh.size, fh.digests, fh.top_hash) == (size, digests, top)


def test_hash_file_from_a_pipe(tmp_path) -> None:
    """Pipes can't be mapped: hash_file streams them, coping with short reads."""
    import subprocess

    data = os.urandom(2 * BS + 77)
    src = tmp_path / "src"
    src.write_bytes(data)
    proc = subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE)
    try:
        fh = hash_file(f"/proc/self/fd/{proc.stdout.fileno()}", "sha256", BS)
    finally:
        proc.wait()
    assert (fh.size, fh.digests) == (len(data), ref_sha256_digests(data, BS))


# --- properties ----------------------------------------------------------------------------


@given(
    data=st.binary(max_size=6 * 257)
    | st.builds(lambda a, z: a + bytes(z), st.binary(max_size=600), st.integers(0, 600)),
    bs=st.sampled_from([1, 7, 64, 257, 1024]),
    scheme=st.sampled_from(["sha256", "blake3"]),
)
def test_property_matches_reference(data: bytes, bs: int, scheme: str) -> None:
    digests, top = reference(data, scheme, bs)
    assert block_digests(data, scheme, bs) == digests
    assert top_hash(digests, len(data), scheme) == top


@given(n=st.integers(0, 70), scheme=st.sampled_from(["sha256", "blake3"]), size=st.integers(0, 2**63))
def test_property_top_hash_of_arbitrary_digest_lists(n: int, scheme: str, size: int) -> None:
    digests = [hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(n)]
    expected = ref_sha256_top(digests) if scheme == "sha256" else ref_blake3_top(digests, size)
    assert top_hash(digests, size, scheme) == expected
