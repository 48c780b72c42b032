"""storage_engine.objects.byte_sources: every source gives back exactly its bytes,
however it is read (read(n) of any sizes, readany(), or both in turn)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from storage_engine.objects.byte_sources import ByteSource, BytesSource, StreamSource

pieces = st.lists(st.binary(max_size=64), max_size=12)
# a read plan: n > 0 is read(n), 0 is readany()
plans = st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8)


async def _stream(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def _drain(src: ByteSource, plan: list[int]) -> bytes:
    out = bytearray()
    i = 0
    while True:
        n = plan[i % len(plan)]
        i += 1
        got = bytes(await (src.readany() if n == 0 else src.read(n)))
        if n:
            assert len(got) <= n
        if not got:
            # the end stays the end, whichever way it is asked
            assert bytes(await src.readany()) == b"" and bytes(await src.read(5)) == b""
            return bytes(out)
        out += got


@given(parts=pieces, plan=plans)
async def test_a_stream_source_gives_its_bytes_in_order(parts: list[bytes], plan: list[int]) -> None:
    assert await _drain(StreamSource(_stream(parts)), plan) == b"".join(parts)


@given(parts=pieces, n=st.integers(min_value=1, max_value=50))
async def test_a_stream_source_answers_n_bytes_until_its_end(parts: list[bytes], n: int) -> None:
    src = StreamSource(_stream(parts))
    data = b"".join(parts)
    for off in range(0, len(data), n):
        assert await src.read(n) == data[off : off + n]
    assert await src.read(n) == b""


@given(data=st.binary(max_size=300), plan=plans)
async def test_a_bytes_source_gives_its_bytes(data: bytes, plan: list[int]) -> None:
    src = BytesSource(bytearray(data))
    assert isinstance(src, ByteSource)
    assert await _drain(src, plan) == data
