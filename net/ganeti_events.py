"""The AMQP messages eventd and progress-monitor publish (docs/eventd.md, "Messages").

Pure functions: a parsed job (net/ganeti_job.py) plus the cluster name and what
``config.data`` says about instances give one :class:`Event` per op whose
(status, event_time) a consumer should hear about; the caller de-duplicates on
:attr:`Event.dedup_key` and spools. Message types, fields and routing keys are
those of snf-ganeti-eventd, so Synnefo's dispatcher consumes them unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from net.ganeti_config import InstanceInfo
from net.ganeti_job import OP_STATUSES, Job, OpCode, Timestamp

__all__ = [
    "EXCHANGE",
    "HEARTBEAT_TAG",
    "Event",
    "SkippedOp",
    "encode_body",
    "event_time",
    "job_events",
    "prefix_from_name",
    "progress_event",
]

EXCHANGE = "ganeti"
HEARTBEAT_TAG = "snf:eventd:heartbeat"
#: Ops after whose end the original sent the instance's NICs and disks from the cluster config.
_ATTACHMENTS_ON = {
    "OP_INSTANCE_CREATE": ("success",),
    "OP_INSTANCE_STARTUP": ("success",),
    # "cancelled" is the original's spelling; Ganeti writes "canceled".
    "OP_INSTANCE_SET_PARAMS": ("success", "error", "canceled", "cancelled"),
    "OP_INSTANCE_GROW_DISK": ("success", "error", "canceled", "cancelled"),
}


@dataclass(frozen=True, slots=True)
class Event:
    """One message to spool and publish."""

    routing_key: str
    body: dict[str, Any]
    #: Messages with the same order key are published (and retried) in spool order.
    order_key: str
    #: Stable across re-reads of the same job state: the AMQP message_id.
    message_id: str
    #: (job id, op index, status, sec, usec); None for progress messages.
    dedup_key: tuple[int, int, str, int, int] | None = None

    def encoded(self) -> bytes:
        return encode_body(self.body)


@dataclass(frozen=True, slots=True)
class SkippedOp:
    job_id: int
    op_index: int
    reason: str


def encode_body(body: dict[str, Any]) -> bytes:
    """Compact JSON, keys sorted, ASCII only: the same state always gives the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def prefix_from_name(name: str) -> str:
    """``snf-42`` -> ``snf``: the routing-key prefix (everything before the first '-')."""
    return name.split("-")[0]


def event_time(op: OpCode, job: Job) -> Timestamp | None:
    """When ``op`` reached its current status.

    The original's choice per status (queued: job received; waiting and canceling:
    op start; running: op exec; finalized: op end), falling back to the job's end
    (Ganeti leaves op timestamps null on canceled and never-run ops), then to its
    start and received times, so every status of a job that has any timestamp has one.
    """
    status = op.status
    if status == "queued":
        ts = job.received_timestamp
    elif status in ("waiting", "canceling"):
        ts = op.start_timestamp
    elif status == "running":
        ts = op.exec_timestamp
    else:
        ts = op.end_timestamp
    return ts or job.end_timestamp or job.start_timestamp or job.received_timestamp


def job_events(
    job: Job,
    cluster: str,
    instance_info: Callable[[str], InstanceInfo | None] = lambda name: None,
) -> tuple[list[Event], list[SkippedOp]]:
    """The messages for every op of ``job`` in its current state, and ops skipped as bad input."""
    events: list[Event] = []
    skipped: list[SkippedOp] = []
    for op in job.ops:
        if op.status not in OP_STATUSES:
            skipped.append(SkippedOp(job.id, op.index, f"unknown op status {op.status!r}"))
            continue
        kind = op.op_id.split("_")[1] if op.op_id.count("_") >= 1 else ""
        built = _BUILDERS.get(kind, _nothing)(op, instance_info)
        if built is None:
            continue
        body, key, status = built
        # The heartbeat is keyed on leaving the queue, whatever state it was read in.
        ts = op.start_timestamp if status != op.status else event_time(op, job)
        if ts is None:
            skipped.append(SkippedOp(job.id, op.index, f"no timestamp for status {op.status!r}"))
            continue
        logmsg = op.log[-1].message if op.log else None
        body.update(
            {
                "event_time": [ts[0], ts[1]],
                "operation": op.op_id,
                "status": op.status,
                "cluster": cluster,
                "logmsg": logmsg,
                "result": op.result,
                "jobId": job.id,
            }
        )
        dedup = (job.id, op.index, status, ts[0], ts[1])
        events.append(
            Event(
                routing_key=key,
                body=body,
                order_key=f"job-{job.id}",
                message_id=f"ganeti:{cluster}:job-{job.id}:{op.index}:{status}:{ts[0]}.{ts[1]:06d}",
                dedup_key=dedup,
            )
        )
    return events, skipped


Built = tuple[dict[str, Any], str, str] | None


def _nothing(op: OpCode, info: Callable[[str], InstanceInfo | None]) -> Built:
    return None


def _instance_op(op: OpCode, info: Callable[[str], InstanceInfo | None]) -> Built:
    inp = op.input
    name = inp.get("instance_name")
    if not name:
        names = inp.get("instances")
        # Ops on several instances (or none) are not sent: the dispatcher cannot use them.
        if not isinstance(names, list) or len(names) != 1:
            return None
        name = names[0]
    if not isinstance(name, str) or not name:
        return None
    job_fields: dict[str, Any] = {}
    if op.op_id in ("OP_INSTANCE_SET_PARAMS", "OP_INSTANCE_CREATE"):
        job_fields = {"nics": inp.get("nics"), "disks": inp.get("disks"), "beparams": inp.get("beparams")}
    elif op.op_id == "OP_INSTANCE_SNAPSHOT":
        job_fields = {"disks": _snapshot_disks(inp)}
    if op.op_id == "OP_INSTANCE_CREATE" and op.status == "error":
        # The whole input, so that the creation can be retried.
        job_fields = dict(inp)
    known = info(name)
    tags = known.tags if known is not None else inp.get("tags")
    body: dict[str, Any] = {
        "type": "ganeti-op-status",
        "instance": name,
        "job_fields": job_fields,
        "tags": list(tags) if isinstance(tags, list) else [],
    }
    if known is not None and op.status in _ATTACHMENTS_ON.get(op.op_id, ()):
        body["instance_nics"] = known.nics
        body["instance_disks"] = known.disks
        body["instance_hvparams"] = known.hvparams
    return body, f"ganeti.{prefix_from_name(name)}.event.op", op.status


def _snapshot_disks(inp: dict[str, Any]) -> Any:
    """Cyclades puts the snapshot's id in the first reason entry (``["gnt:user", info, ts]``)."""
    disks = inp.get("disks")
    reason = inp.get("reason")
    if (
        isinstance(disks, list)
        and disks
        and isinstance(disks[0], list)
        and len(disks[0]) == 2
        and isinstance(disks[0][1], dict)
        and isinstance(reason, list)
        and reason
        and isinstance(reason[0], list)
        and len(reason[0]) >= 2
        and reason[0][0] == "gnt:user"
    ):
        first = [disks[0][0], dict(disks[0][1], snapshot_info=reason[0][1])]
        return [first] + disks[1:]
    return disks


def _network_op(op: OpCode, info: Callable[[str], InstanceInfo | None]) -> Built:
    inp = op.input
    name = inp.get("network_name")
    if not isinstance(name, str) or not name:
        return None
    body = {
        "type": "ganeti-network-status",
        "network": name,
        "job_fields": {
            "subnet": inp.get("network"),
            "gateway": inp.get("gateway"),
            "add_reserved_ips": inp.get("add_reserved_ips"),
            "remove_reserved_ips": inp.get("remove_reserved_ips"),
            "group_name": inp.get("group_name"),
        },
    }
    return body, f"ganeti.{prefix_from_name(name)}.event.network", op.status


def _cluster_op(op: OpCode, info: Callable[[str], InstanceInfo | None]) -> Built:
    if op.op_id != "OP_CLUSTER_SET_PARAMS":  # only modifications of the cluster
        return None
    return {"type": "ganeti-cluster-status"}, "ganeti.event.cluster", op.status


def _tags_op(op: OpCode, info: Callable[[str], InstanceInfo | None]) -> Built:
    """The heartbeat trigger: a dry-run ``OP_TAGS_SET`` of a ``snf:eventd:heartbeat`` cluster tag.

    Sent once, when the op leaves the queue: de-duplicated as its "waiting" state, and
    also sent from a later state when the waiting version was overwritten before it
    was read (Ganeti writes running within a millisecond).
    """
    inp = op.input
    tags = inp.get("tags")
    if not (
        op.op_id == "OP_TAGS_SET"
        and inp.get("kind") == "cluster"
        and inp.get("dry_run") is True
        and isinstance(tags, list)
        and tags
        and isinstance(tags[0], str)
        and tags[0].startswith(HEARTBEAT_TAG)
    ):
        return None
    if op.status in ("queued", "canceling", "canceled") or op.start_timestamp is None:
        return None
    return {"type": "eventd-heartbeat"}, "eventd.heartbeat", "waiting"


_BUILDERS: dict[str, Callable[[OpCode, Callable[[str], InstanceInfo | None]], Built]] = {
    "INSTANCE": _instance_op,
    "NETWORK": _network_op,
    "CLUSTER": _cluster_op,
    "TAGS": _tags_op,
}


def progress_event(
    obj: dict[str, Any], instance: str, when: Timestamp, message_id: str
) -> Event:
    """One snf-image progress object, with ``instance`` and ``event_time`` added."""
    body = dict(obj)
    body["event_time"] = [when[0], when[1]]
    body["instance"] = instance
    return Event(
        routing_key=f"ganeti.{prefix_from_name(instance)}.event.progress",
        body=body,
        order_key=f"progress-{instance}",
        message_id=message_id,
    )

