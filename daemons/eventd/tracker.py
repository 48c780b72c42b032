"""From job files on disk to spooled messages: reading, parsing, the master check, archiving.

Runs in eventd's one worker thread (file reads, JSON parsing and SQLite commits
would otherwise stall the event loop). Each call takes a batch of job ids whose
file changed or left the queue; several inotify events for one job between two
batches cost one read of its newest version.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from daemons.eventd.spool import Spool, SpooledMessage
from net.ganeti_config import ClusterConfig, ConfigDataError, InstanceInfo, parse_config_data
from net.ganeti_events import Event, job_events
from net.ganeti_job import JobFileError, archive_path, job_id_from_name, parse_job

__all__ = ["BatchResult", "GanetiState", "JobTracker"]

log = logging.getLogger("nefeli-eventd")

MAX_JOB_FILE = 64 << 20  # a job with this much log is not a Ganeti job file


@dataclass
class BatchResult:
    read: int = 0
    spooled: int = 0
    malformed: int = 0
    spooled_types: dict[str, int] = field(default_factory=dict)
    #: The rows committed, in spool order (the publisher takes them as they are).
    rows: list[SpooledMessage] = field(default_factory=list)


class GanetiState:
    """The ssconf files and config.data, re-read when they change."""

    def __init__(self, ganeti_dir: Path, node_name: str) -> None:
        self.dir = ganeti_dir
        self.node_name = node_name
        self._config_key: tuple[int, int, int] | None = None
        self._config: ClusterConfig | None = None

    def _ssconf(self, name: str) -> str | None:
        try:
            return (self.dir / f"ssconf_{name}").read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def master_node(self) -> str | None:
        return self._ssconf("master_node")

    def is_master(self) -> bool:
        return self.master_node() == self.node_name

    def cluster_name(self) -> str:
        return self._ssconf("cluster_name") or (self.config().cluster_name or "")

    def config(self) -> ClusterConfig:
        path = self.dir / "config.data"
        try:
            st = path.stat()
        except OSError:
            return ClusterConfig(None)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._config_key:
            try:
                self._config = parse_config_data(path.read_bytes())
            except (OSError, ConfigDataError) as exc:
                log.warning("config.data unreadable, instance details left out: %s", exc)
                self._config = ClusterConfig(None)
            self._config_key = key
        return self._config or ClusterConfig(None)

    def instance(self, name: str) -> InstanceInfo | None:
        return self.config().instance(name)


class JobTracker:
    def __init__(self, spool: Spool, ganeti: GanetiState, *, heartbeat_ttl: float) -> None:
        self.spool = spool
        self.ganeti = ganeti
        self.queue = ganeti.dir / "queue"
        self.ttl = {"eventd.heartbeat": heartbeat_ttl}

    def scan_ids(self) -> tuple[set[int], set[int]]:
        """(job files in the queue, jobs with state that are no longer there)."""
        present: set[int] = set()
        with os.scandir(self.queue) as it:
            for entry in it:
                jid = job_id_from_name(entry.name)
                if jid is not None:
                    present.add(jid)
        gone = self.spool.seen_jobs() - present
        return present, gone

    def process(self, changed: Iterable[int], left: Iterable[int]) -> BatchResult:
        """Spool what is new in the changed jobs; settle the jobs that left the queue."""
        result = BatchResult()
        cluster = self.ganeti.cluster_name()
        events: list[Event] = []
        for jid in sorted(set(changed)):
            events += self._job(self.queue / f"job-{jid}", cluster, result)
        gone = sorted(set(left))
        for jid in gone:
            # Archived: the same content under archive/; anything not yet seen
            # (it changed while eventd was down) is still sent.
            events += self._job(self.queue / archive_path(jid), cluster, result)
        # One commit (one fsync) for the whole batch: under load batches grow, so
        # the cost per message falls as the rate rises.
        added = self.spool.add_rows(events, ttl=self.ttl)
        result.spooled = len(added)
        for ev, row in added:
            kind = str(ev.body.get("type"))
            result.spooled_types[kind] = result.spooled_types.get(kind, 0) + 1
            result.rows.append(row)
        still_there = {j for j in gone if (self.queue / f"job-{j}").exists()}
        self.spool.forget_jobs(j for j in gone if j not in still_there)
        return result

    def _job(self, path: Path, cluster: str, result: BatchResult) -> list[Event]:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_JOB_FILE + 1)
        except FileNotFoundError:
            return []  # renamed away between the event and the read; its new name gets an event
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return []
        result.read += 1
        try:
            if len(data) > MAX_JOB_FILE:
                raise JobFileError(f"larger than {MAX_JOB_FILE} bytes")
            job = parse_job(data)
        except JobFileError as exc:
            result.malformed += 1
            log.warning("skipping job file %s: %s", path, exc)
            return []
        if job_id_from_name(path.name) != job.id:
            result.malformed += 1
            log.warning("skipping job file %s: it holds job %d", path, job.id)
            return []
        events, skipped = job_events(job, cluster, self.ganeti.instance)
        for s in skipped:
            log.warning("job %d op %d skipped: %s", s.job_id, s.op_index, s.reason)
        return events
