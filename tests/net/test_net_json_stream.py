"""The progress-stream splitter: objects split anywhere, garbage skipped to the next object."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from net.json_stream import Garbage, JsonObject, JsonObjectStream


def run(chunks: list[bytes], max_object: int = 1 << 20) -> list:
    s = JsonObjectStream(max_object=max_object)
    out = []
    for c in chunks:
        out += s.feed(c)
        assert s.buffered <= max(max_object, 0) + len(c)
    return out + s.end()


def objects(items: list) -> list:
    return [i.value for i in items if isinstance(i, JsonObject)]


def test_snf_image_stream_split_byte_by_byte() -> None:
    stream = (
        b'{"type": "image-info", "messages": ["Starting image copy..."]}'
        b'{"type": "image-copy-progress", "position": 10, "total": 100, "progress": 10.0}\n'
        b'{"type": "image-helper", "subtype": "task-start", "task": "FixPartitionTable"}'
    )
    items = run([stream[i:i + 1] for i in range(len(stream))])
    assert [o["type"] for o in objects(items)] == ["image-info", "image-copy-progress", "image-helper"]
    assert not [i for i in items if isinstance(i, Garbage)]


def test_garbage_is_reported_and_skipped() -> None:
    items = run([b'dd: 10+0 records in\n{"a": 1} {not json} {"b": "{}"} ]] {"c": [1, {"d": null}]}', b"\n{\"e\":"])
    assert objects(items) == [{"a": 1}, {"b": "{}"}, {"c": [1, {"d": None}]}]
    assert [(g.data, g.reason) for g in items if isinstance(g, Garbage)] == [
        (b"dd: 10+0 records in\n", "text between objects"),
        (b"{not json} ", "byte b'o' cannot occur in JSON here"),
        (b" ]] ", "text between objects"),
        (b'{"e":', "truncated object at end of input"),
    ]


def test_invalid_json_with_valid_bytes_and_brackets() -> None:
    items = run([b'{"a" 1}{"b": [1}{"c": 2}{"d": "\x01"}{"e": 3}'])
    assert objects(items) == [{"c": 2}, {"e": 3}]
    assert [g.reason.split(":")[0] for g in items if isinstance(g, Garbage)] == [
        "invalid JSON object", "mismatched bracket", "control character inside a string"]


def test_non_utf8_and_escaped_quotes() -> None:
    items = run([b'{"a": "\\"}"}', b'{"b": "\xff"}', b'{"c": "\\\\"}'])
    assert objects(items) == [{"a": '"}'}, {"c": "\\"}]


def test_oversized_object_is_dropped_and_buffer_bounded() -> None:
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    items = run([big[i:i + 100] for i in range(0, len(big), 100)] + [b'{"ok": 1}'], max_object=1000)
    assert objects(items) == [{"ok": 1}]
    assert any("larger than 1000" in g.reason for g in items if isinstance(g, Garbage))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
objs = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
# Text between objects: anything without '{' (a '{' would start an object).
junk = st.binary(max_size=12).map(lambda b: b.replace(b"{", b""))


@given(st.lists(st.tuples(objs, junk), max_size=6), st.data())
def test_any_split_gives_the_objects_in_order(pairs: list, data: st.DataObject) -> None:
    stream = b"".join(json.dumps(o).encode() + j for o, j in pairs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    items = run(chunks)
    assert objects(items) == [o for o, _ in pairs]
    garbage = b"".join(g.data for g in items if isinstance(g, Garbage))
    # Every non-blank byte between objects is reported (blank runs are not garbage).
    assert b"".join(garbage.split()) == b"".join(b"".join(j for _, j in pairs).split())


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_arbitrary_bytes_never_raise_and_yield_only_objects(chunks: list[bytes]) -> None:
    for item in run(chunks, max_object=64):
        assert isinstance(item, Garbage) or isinstance(item.value, dict)


@given(objs, st.binary(max_size=20), objs)
def test_garbage_before_an_object_never_hides_an_object_after_a_valid_one(a: dict, noise: bytes, b: dict) -> None:
    stream = json.dumps(a).encode() + noise.replace(b"{", b"") + json.dumps(b).encode()
    assert objects(run([stream])) == [a, b]
