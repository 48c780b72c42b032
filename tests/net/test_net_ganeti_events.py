"""eventd's messages for the real Ganeti job files: types, fields, routing keys, bytes."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from eventd_fixtures import CLUSTER, archived_job, config_with_instances, live_job, snapshots
from net.ganeti_config import parse_config_data
from net.ganeti_events import encode_body, event_time, job_events, prefix_from_name, progress_event
from net.ganeti_job import parse_job


def events_of(data: bytes, config: bytes | None = None):
    cfg = parse_config_data(config) if config else None
    evs, skipped = job_events(parse_job(data), CLUSTER, cfg.instance if cfg else (lambda n: None))
    assert skipped == []
    return evs


def replay(job_id: int) -> list:
    """The new messages, in order, for every version Ganeti wrote of one job."""
    seen, out = set(), []
    for _, _, jid, data in snapshots():
        if jid != job_id:
            continue
        for ev in events_of(data):
            if ev.dedup_key not in seen:
                seen.add(ev.dedup_key)
                out.append(ev)
    return out


def test_instance_create_replayed_gives_each_status_once() -> None:
    evs = replay(5)
    assert [(e.body["status"], e.body["event_time"]) for e in evs] == [
        ("queued", [1795499341, 309680]),
        ("waiting", [1795499341, 512217]),
        ("running", [1795499341, 520749]),
        ("success", [1795499343, 300490]),
    ]
    assert {e.routing_key for e in evs} == {"ganeti.inst1.example.test.event.op"}
    assert [e.dedup_key for e in evs][0] == (5, 0, "queued", 1795499341, 309680)
    assert evs[-1].body["logmsg"] == "* starting instance..."
    assert evs[-1].body["result"] == ["node1.example.test"]
    assert evs[0].body["logmsg"] is None and evs[0].body["result"] is None
    assert all(e.order_key == "job-5" for e in evs)
    assert evs[-1].message_id == "ganeti:cluster.example.test:job-5:0:success:1795499343.300490"


def test_op_status_message_bytes() -> None:
    (ev,) = events_of(live_job(21), config_with_instances())
    assert ev.routing_key == "ganeti.snf.event.op"
    body = json.loads(ev.encoded())
    assert body == {
        "type": "ganeti-op-status",
        "instance": "snf-1.example.test",
        "operation": "OP_INSTANCE_CREATE",
        "status": "success",
        "cluster": "cluster.example.test",
        "event_time": [1795499398, 681475],
        "jobId": 21,
        "logmsg": "* starting instance...",
        "result": ["node1.example.test"],
        "job_fields": {
            "nics": [{"ip": "pool", "name": "snf-nic-1", "network": "net1"}],
            "disks": [],
            "beparams": {"maxmem": 128, "minmem": 128, "vcpus": 1},
        },
        "tags": ["synnefo:network:snf-nic-1:protected", "synnefo:network:1:unprotected", "other"],
        "instance_nics": [
            {"name": "snf-nic-1", "network": "net1", "ip": "10.10.0.3", "mac": "aa:00:00:11:22:33",
             "mode": "bridged", "link": "gntbr0", "uuid": "nic-uuid-1", "index": 0, "firewall": "protected"},
            {"name": "snf-nic-2", "network": None, "ip": None, "mac": "aa:00:00:44:55:66",
             "mode": "bridged", "link": "gntbr0", "uuid": "nic-uuid-2", "index": 1, "firewall": "unprotected"},
        ],
        "instance_disks": [{"name": "snf-vol-1", "size": 1024, "uuid": "disk-uuid-1", "index": 0}],
        "instance_hvparams": {"migration_mode": "non-live"},
    }
    # Compact, sorted, ASCII: the bytes are a function of the state.
    assert ev.encoded().startswith(b'{"cluster":"cluster.example.test","event_time":[1795499398,681475],')
    assert ev.encoded() == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_instance_details_only_where_the_original_sent_them() -> None:
    cfg = config_with_instances()
    for ev in replay(21)[:-1]:  # queued, waiting, running of the create
        assert "instance_nics" not in ev.body
    (removed,) = events_of(live_job(26), cfg)  # OP_INSTANCE_REMOVE: no details
    assert "instance_nics" not in removed.body and removed.body["job_fields"] == {}
    (modify,) = events_of(live_job(22), cfg)
    assert modify.body["job_fields"]["nics"] == [
        ["add", -1, {"mode": "bridged", "link": "gntbr0", "name": "snf-nic-2", "mac": "aa:00:00:69:52:eb"}]]
    assert modify.body["instance_disks"][0]["uuid"] == "disk-uuid-1"
    # Without config.data entry: no details, tags from the op's input.
    (ev,) = events_of(live_job(21))
    assert "instance_nics" not in ev.body and ev.body["tags"] == ["synnefo:network:0:protected"]


def test_failed_create_sends_its_whole_input() -> None:
    (ev,) = events_of(archived_job(4))
    assert ev.body["status"] == "error"
    assert ev.body["job_fields"]["OP_ID"] == "OP_INSTANCE_CREATE"
    assert ev.body["job_fields"]["nics"] == [{"link": "gnt0"}]
    assert ev.body["result"][0] == "OpPrereqError"


def test_network_message() -> None:
    (ev,) = events_of(archived_job(9))
    assert ev.routing_key == "ganeti.net1.event.network"
    assert ev.body["type"] == "ganeti-network-status" and ev.body["network"] == "net1"
    assert ev.body["job_fields"] == {
        "subnet": "10.10.0.0/24", "gateway": "10.10.0.1", "add_reserved_ips": None,
        "remove_reserved_ips": None, "group_name": None,
    }
    (conn,) = events_of(archived_job(10))
    assert conn.body["operation"] == "OP_NETWORK_CONNECT" and conn.body["job_fields"]["group_name"] == "default"


def test_cluster_message_only_for_set_params() -> None:
    (ev,) = events_of(live_job(23))
    assert ev.routing_key == "ganeti.event.cluster"
    assert ev.body["type"] == "ganeti-cluster-status" and ev.body["operation"] == "OP_CLUSTER_SET_PARAMS"
    assert events_of(archived_job(1)) == []  # OP_CLUSTER_POST_INIT
    assert events_of(archived_job(2)) == []  # OP_OS_DIAGNOSE
    assert events_of(live_job(15)) == []  # OP_TEST_DELAY


def test_heartbeat_once_per_dry_run_cluster_tag() -> None:
    (hb,) = replay(13)
    assert hb.routing_key == "eventd.heartbeat"
    assert hb.body == {
        "type": "eventd-heartbeat", "cluster": CLUSTER, "operation": "OP_TAGS_SET", "status": "waiting",
        "event_time": [1795499355, 988634], "jobId": 13, "logmsg": None, "result": None,
    }
    # Read only in its final state, the same heartbeat (same de-duplication key).
    (final,) = events_of(live_job(13))
    assert final.dedup_key == hb.dedup_key and final.message_id == hb.message_id
    assert [e.body["type"] for e in replay(17)] == ["eventd-heartbeat"]  # via RAPI
    assert replay(3) == []  # a real (not dry-run) add-tags is no heartbeat
    assert replay(29) == []


def test_multi_op_job_and_null_timestamps() -> None:
    (ev,) = events_of(live_job(24))
    assert ev.dedup_key == (24, 1, "error", 1795499403, 519730)
    job = parse_job(live_job(24))
    # The third op never ran: its timestamps are null, the job's end stands in.
    assert event_time(job.ops[2], job) == (1795499403, 519744)
    canceled = parse_job(live_job(16))
    assert event_time(canceled.ops[0], canceled) == canceled.end_timestamp


def test_unknown_status_and_multi_instance_ops_are_skipped() -> None:
    job = parse_job(live_job(20))
    odd = replace(job, ops=(replace(job.ops[0], status="exploded"),))
    evs, skipped = job_events(odd, CLUSTER)
    assert evs == [] and skipped[0].reason == "unknown op status 'exploded'"
    many = replace(job, ops=(replace(job.ops[0], input={"OP_ID": "OP_INSTANCE_STARTUP", "instances": ["a", "b"]}),))
    assert job_events(many, CLUSTER) == ([], [])
    one = replace(job, ops=(replace(job.ops[0], input={"OP_ID": "OP_INSTANCE_STARTUP", "instances": ["snf-9"]}),))
    assert job_events(one, CLUSTER)[0][0].routing_key == "ganeti.snf.event.op"


def test_every_snapshot_gives_unique_keys_and_stable_bytes() -> None:
    for _, _, _, data in snapshots():
        evs = events_of(data)
        assert len({e.dedup_key for e in evs}) == len(evs)
        assert [e.encoded() for e in evs] == [e.encoded() for e in events_of(data)]


def test_progress_message() -> None:
    ev = progress_event({"type": "image-copy-progress", "position": 5, "total": 10, "progress": 50.0,
                         "instance": "forged"}, "snf-42", (1700000000, 5), "m-1")
    assert ev.routing_key == "ganeti.snf.event.progress"
    assert ev.encoded() == (
        b'{"event_time":[1700000000,5],"instance":"snf-42","position":5,"progress":50.0,'
        b'"total":10,"type":"image-copy-progress"}'
    )
    assert ev.order_key == "progress-snf-42" and ev.message_id == "m-1" and ev.dedup_key is None


@given(st.text())
def test_prefix_is_before_the_first_dash(name: str) -> None:
    p = prefix_from_name(name)
    assert "-" not in p and name.startswith(p)


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=5))
def test_encoded_body_is_ascii_json_of_the_body(body: dict) -> None:
    data = encode_body(body)
    assert data.isascii() and json.loads(data) == body
