"""The Ganeti 3.0.2 job files under tests/fixtures/ganeti/, as the eventd tests use them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

GANETI = Path(__file__).resolve().parent / "fixtures" / "ganeti"
QUEUE = GANETI / "queue"
SNAPSHOTS = GANETI / "snapshots"
CLUSTER = "cluster.example.test"
_SNAP = re.compile(r"^(\d{4})_([0-9.]+)_(queue|archive)_job-(\d+)\.json$")


def live_job(job_id: int) -> bytes:
    return (QUEUE / f"job-{job_id}").read_bytes()


def archived_job(job_id: int) -> bytes:
    return (QUEUE / "archive" / str(job_id // 10000) / f"job-{job_id}").read_bytes()


def snapshots() -> list[tuple[int, str, int, bytes]]:
    """Every version Ganeti wrote, in order: (seq, 'queue' | 'archive', job id, bytes)."""
    out = []
    for p in sorted(SNAPSHOTS.iterdir()):
        m = _SNAP.match(p.name)
        if m:
            out.append((int(m.group(1)), m.group(3), int(m.group(4)), p.read_bytes()))
    return out


def config_with_instances() -> bytes:
    """The fixture config.data (both instances were removed at the end of the run) with
    snf-1.example.test put back as Ganeti 3.0 stores an instance: a NIC on net1 and one
    on gntbr0, one disk referenced by UUID, a per-instance hvparam."""
    cfg: dict[str, Any] = json.loads((GANETI / "config.data").read_bytes())
    cfg["networks"] = {
        "net-uuid-1": {"name": "net1", "network": "10.10.0.0/24", "gateway": "10.10.0.1", "uuid": "net-uuid-1"}
    }
    cfg["disks"] = {
        "disk-uuid-1": {"name": "snf-vol-1", "size": 1024, "uuid": "disk-uuid-1", "dev_type": "file"}
    }
    cfg["instances"] = {
        "inst-uuid-1": {
            "name": "snf-1.example.test",
            "hypervisor": "fake",
            "hvparams": {"migration_mode": "non-live"},
            "tags": ["synnefo:network:snf-nic-1:protected", "synnefo:network:1:unprotected", "other"],
            "nics": [
                {
                    "name": "snf-nic-1",
                    "network": "net-uuid-1",
                    "ip": "10.10.0.3",
                    "mac": "aa:00:00:11:22:33",
                    "nicparams": {"mode": "bridged", "link": "gntbr0", "vlan": ""},
                    "uuid": "nic-uuid-1",
                },
                {
                    "name": "snf-nic-2",
                    "network": None,
                    "ip": None,
                    "mac": "aa:00:00:44:55:66",
                    "nicparams": {"link": "gntbr0"},  # mode from the cluster default, as Ganeti 3.0 stores it
                    "uuid": "nic-uuid-2",
                },
            ],
            "disks": ["disk-uuid-1"],
            "uuid": "inst-uuid-1",
        }
    }
    return json.dumps(cfg).encode()
