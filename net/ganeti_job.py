"""Ganeti job files (``/var/lib/ganeti/queue/job-N``), parsed without Ganeti's libraries.

A job file is one JSON object (Ganeti 3.0 writes it on one line, ending in a newline):
the job ``id``, its ``ops`` and job-level timestamps. Only what eventd needs is kept and
checked (docs/eventd.md, "Job files"); anything malformed, truncated or of the wrong
type raises :class:`JobFileError`, so the caller can log one line and skip the file.
Op statuses are kept as strings: a status this module does not know is the message
builder's decision (it skips that op), not a reason to drop the whole job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "JOB_FILE_NAME",
    "OP_STATUSES",
    "FINALIZED_STATUSES",
    "Job",
    "JobFileError",
    "LogEntry",
    "OpCode",
    "Timestamp",
    "archive_path",
    "job_id_from_name",
    "parse_job",
]

#: A real job file name; luxid's ``job-N-<pid>-<n>.tmp`` and the job process's
#: ``job-N<random>.new`` temporary files also start with ``job-<digits>``.
JOB_FILE_NAME = re.compile(r"job-([0-9]+)")  # used with fullmatch: '$' would accept "job-3\n"
#: The op statuses of Ganeti 2.x and 3.0 (constants.JOB_STATUS_*; "waitlock" was 2.5's "waiting").
OP_STATUSES = ("queued", "waiting", "canceling", "running", "canceled", "success", "error")
FINALIZED_STATUSES = ("canceled", "success", "error")
#: Ganeti job ids are positive; more digits than this is not a job id.
_MAX_ID_DIGITS = 18

Timestamp = tuple[int, int]


class JobFileError(ValueError):
    """A job file that cannot be used: truncated, not JSON, or not shaped like a job."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """``[serial, [sec, usec], type, message]``; the message may be any JSON value."""

    serial: int
    timestamp: Timestamp | None
    type: str
    message: Any


@dataclass(frozen=True, slots=True)
class OpCode:
    index: int
    op_id: str
    input: dict[str, Any]
    status: str
    result: Any
    log: tuple[LogEntry, ...]
    start_timestamp: Timestamp | None
    exec_timestamp: Timestamp | None
    end_timestamp: Timestamp | None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    ops: tuple[OpCode, ...]
    received_timestamp: Timestamp | None
    start_timestamp: Timestamp | None
    end_timestamp: Timestamp | None


def job_id_from_name(name: str) -> int | None:
    """The job id of a real job file name, None for anything else (temporary files...)."""
    m = JOB_FILE_NAME.fullmatch(name)
    if m is None or len(m.group(1)) > _MAX_ID_DIGITS:
        return None
    return int(m.group(1))


def archive_path(job_id: int) -> str:
    """Where ``gnt-job archive`` moves a job, relative to the queue directory."""
    return f"archive/{job_id // 10000}/job-{job_id}"


def parse_job(data: bytes) -> Job:
    """Parse one job file's bytes; raises :class:`JobFileError` with the reason."""
    if not data.strip():
        raise JobFileError("empty job file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobFileError(f"not UTF-8 at byte {exc.start}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobFileError(f"not JSON (truncated?): {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise JobFileError("not JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise JobFileError(f"top level is {_json_type(raw)}, not an object")
    job_id = _job_id(raw.get("id", None))
    ops_raw = raw.get("ops")
    if not isinstance(ops_raw, list):
        raise JobFileError(f"job {job_id}: 'ops' is {_json_type(ops_raw)}, not an array")
    ops = tuple(_op(job_id, i, op) for i, op in enumerate(ops_raw))
    return Job(
        id=job_id,
        ops=ops,
        received_timestamp=_timestamp(raw.get("received_timestamp"), f"job {job_id}: received_timestamp"),
        start_timestamp=_timestamp(raw.get("start_timestamp"), f"job {job_id}: start_timestamp"),
        end_timestamp=_timestamp(raw.get("end_timestamp"), f"job {job_id}: end_timestamp"),
    )


def _job_id(value: Any) -> int:
    # Ganeti before 2.5 wrote the id as a decimal string.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_ID_DIGITS:
        value = int(value)
    if type(value) is not int or value < 0 or value >= 10**_MAX_ID_DIGITS:
        raise JobFileError(f"'id' is {_json_type(value)} {_short(value)}, not a job id")
    return value


def _op(job_id: int, index: int, raw: Any) -> OpCode:
    where = f"job {job_id} op {index}"
    if not isinstance(raw, dict):
        raise JobFileError(f"{where}: is {_json_type(raw)}, not an object")
    inp = raw.get("input")
    if not isinstance(inp, dict):
        raise JobFileError(f"{where}: 'input' is {_json_type(inp)}, not an object")
    op_id = inp.get("OP_ID")
    if not isinstance(op_id, str) or not op_id:
        raise JobFileError(f"{where}: input has no OP_ID string")
    status = raw.get("status")
    if not isinstance(status, str):
        raise JobFileError(f"{where}: 'status' is {_json_type(status)}, not a string")
    log_raw = raw.get("log", [])
    if log_raw is None:
        log_raw = []
    if not isinstance(log_raw, list):
        raise JobFileError(f"{where}: 'log' is {_json_type(log_raw)}, not an array")
    log = tuple(_log_entry(f"{where} log {i}", e) for i, e in enumerate(log_raw))
    return OpCode(
        index=index,
        op_id=op_id,
        input=inp,
        status=status,
        result=raw.get("result"),
        log=log,
        start_timestamp=_timestamp(raw.get("start_timestamp"), f"{where}: start_timestamp"),
        exec_timestamp=_timestamp(raw.get("exec_timestamp"), f"{where}: exec_timestamp"),
        end_timestamp=_timestamp(raw.get("end_timestamp"), f"{where}: end_timestamp"),
    )


def _log_entry(where: str, raw: Any) -> LogEntry:
    if not isinstance(raw, list) or len(raw) != 4:
        raise JobFileError(f"{where}: not a [serial, timestamp, type, message] array")
    serial, ts, kind, message = raw
    if type(serial) is not int:
        raise JobFileError(f"{where}: serial is {_json_type(serial)}, not an integer")
    if not isinstance(kind, str):
        raise JobFileError(f"{where}: type is {_json_type(kind)}, not a string")
    return LogEntry(serial, _timestamp(ts, f"{where} timestamp"), kind, message)


def _timestamp(value: Any, where: str) -> Timestamp | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and type(value[0]) is int
        and type(value[1]) is int
        and 0 <= value[0] < 1 << 53
        and 0 <= value[1] < 1_000_000
    ):
        return (value[0], value[1])
    raise JobFileError(f"{where}: {_short(value)} is not [seconds, microseconds]")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
