"""Ganeti job files: every real 3.0.2 file parses; anything else is a JobFileError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventd_fixtures import QUEUE, archived_job, live_job, snapshots
from net.ganeti_job import (
    JobFileError,
    LogEntry,
    archive_path,
    job_id_from_name,
    parse_job,
)


def test_every_fixture_version_parses() -> None:
    files = [p.read_bytes() for p in QUEUE.glob("job-*")] + [s[3] for s in snapshots()]
    files += [p.read_bytes() for p in (QUEUE / "archive" / "0").glob("job-*")]
    assert len(files) == 19 + 192 + 10
    for data in files:
        job = parse_job(data)
        assert job.ops and all(op.op_id.startswith("OP_") for op in job.ops)


def test_fields_of_a_real_job() -> None:
    job = parse_job(live_job(24))
    assert job.id == 24
    assert job.received_timestamp == (1795499403, 337074)
    assert job.end_timestamp == (1795499403, 519744)
    assert [op.op_id for op in job.ops] == ["OP_TAGS_SET", "OP_INSTANCE_STARTUP", "OP_TAGS_DEL"]
    assert [op.status for op in job.ops] == ["success", "error", "error"]
    third = job.ops[2]
    assert third.index == 2
    assert third.start_timestamp is third.exec_timestamp is third.end_timestamp is None
    assert third.result == ["OpExecError", ["Preceding opcode failed"]]
    second = job.ops[1]
    assert second.input["instance_name"] == "nosuch.example.test"
    assert second.exec_timestamp is None and second.end_timestamp == (1795499403, 519730)


def test_log_entries() -> None:
    op = parse_job(archived_job(5)).ops[0]
    assert len(op.log) == 4
    assert op.log[-1] == LogEntry(4, op.log[-1].timestamp, "message", "* starting instance...")
    assert op.log[0].serial == 1 and op.log[0].timestamp is not None


def test_job_file_names() -> None:
    assert job_id_from_name("job-3") == 3
    assert job_id_from_name("job-29") == 29
    for temp in ("job-3-14362-9.tmp", "job-34747_vu5.new", "job-3pyaqlti7.new", "job-", "job-3\n",
                 "xjob-3", "job--3", "job-3 ", "serial", "job-٣"):
        assert job_id_from_name(temp) is None, temp
    assert archive_path(9) == "archive/0/job-9"
    assert archive_path(123456) == "archive/12/job-123456"


def test_every_truncation_of_a_real_file_is_rejected() -> None:
    data = live_job(21)
    for n in range(len(data) - 1):  # the last byte is the newline
        with pytest.raises(JobFileError):
            parse_job(data[:n])
    parse_job(data[:-1])


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1]", "not an object"),
        (b'{"ops": []}', "not a job id"),
        (b'{"id": -1, "ops": []}', "not a job id"),
        (b'{"id": true, "ops": []}', "not a job id"),
        (b'{"id": 1}', "'ops'"),
        (b'{"id": 1, "ops": [1]}', "op 0"),
        (b'{"id": 1, "ops": [{"input": {}, "status": "queued"}]}', "OP_ID"),
        (b'{"id": 1, "ops": [{"input": {"OP_ID": "OP_X"}}]}', "'status'"),
        (b'{"id": 1, "ops": [{"input": {"OP_ID": "OP_X"}, "status": "queued", "log": {}}]}', "'log'"),
        (b'{"id": 1, "ops": [{"input": {"OP_ID": "OP_X"}, "status": "queued", "log": [[1]]}]}', "log 0"),
        (b'{"id": 1, "ops": [], "received_timestamp": [1, 2, 3]}', "received_timestamp"),
        (b'{"id": 1, "ops": [], "end_timestamp": [1, 1000000]}', "end_timestamp"),
        (b'{"id": 1, "ops": [], "end_timestamp": [1.5, 0]}', "end_timestamp"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(JobFileError, match=why):
        parse_job(data)


def test_old_string_job_id() -> None:
    assert parse_job(b'{"id": "17", "ops": []}').id == 17


ts = st.one_of(st.none(), st.tuples(st.integers(0, 2**40), st.integers(0, 999_999)))
statuses = st.sampled_from(["queued", "waiting", "canceling", "running", "canceled", "success", "error", "new"])


@st.composite
def jobs(draw: st.DrawFn) -> dict:
    ops = []
    for _ in range(draw(st.integers(0, 4))):
        ops.append(
            {
                "input": {"OP_ID": draw(st.sampled_from(["OP_INSTANCE_STARTUP", "OP_NETWORK_ADD", "OP_X"])),
                          "instance_name": draw(st.text(max_size=8))},
                "status": draw(statuses),
                "result": draw(st.one_of(st.none(), st.text(max_size=5))),
                "log": [[i, [1, 2], "message", draw(st.text(max_size=5))] for i in range(draw(st.integers(0, 3)))],
                "start_timestamp": _js(draw(ts)),
                "exec_timestamp": _js(draw(ts)),
                "end_timestamp": _js(draw(ts)),
            }
        )
    return {"id": draw(st.integers(0, 10**12)), "ops": ops, "received_timestamp": _js(draw(ts)),
            "start_timestamp": _js(draw(ts)), "end_timestamp": _js(draw(ts))}


def _js(t: tuple[int, int] | None) -> list[int] | None:
    return list(t) if t is not None else None


@given(jobs())
def test_generated_jobs_parse_to_their_fields(raw: dict) -> None:
    job = parse_job(json.dumps(raw).encode())
    assert job.id == raw["id"]
    assert [op.status for op in job.ops] == [o["status"] for o in raw["ops"]]
    assert [op.end_timestamp for op in job.ops] == [
        tuple(o["end_timestamp"]) if o["end_timestamp"] else None for o in raw["ops"]
    ]
    assert [len(op.log) for op in job.ops] == [len(o["log"]) for o in raw["ops"]]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_job_file_error(data: bytes) -> None:
    try:
        parse_job(data)
    except JobFileError:
        pass


@given(jobs(), st.data())
def test_mutated_jobs_parse_or_raise_job_file_error(raw: dict, data: st.DataObject) -> None:
    text = json.dumps(raw).encode()
    i = data.draw(st.integers(0, len(text)))
    mutated = text[:i] + data.draw(st.binary(max_size=4)) + text[i + data.draw(st.integers(0, 4)):]
    try:
        parse_job(mutated)
    except JobFileError:
        pass
