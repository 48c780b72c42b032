"""A live single-node Ganeti 3.0 (Debian's ganeti, fake hypervisor) while nefeli-eventd runs.

The cluster lives in its own mount, UTS, network and pid namespaces
(tests/ganeti_cluster.py); eventd and the consumer stay outside and watch the
bind-mounted state directory, as they would watch /var/lib/ganeti.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventd_fixtures import GANETI
from eventd_harness import RabbitMQ
from ganeti_cluster import INSTANCE_ARGS, GanetiCluster, require_cluster_peers

pytestmark = [pytest.mark.peer("ganeti"), pytest.mark.root]
ORDER = ["queued", "waiting", "running", "success"]


async def test_live_cluster_ops_arrive_with_each_status(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    require_cluster_peers()
    state = tmp_path / "state"
    (state / "lib").mkdir(parents=True)
    consumer = await consumers("live-", ("snf",))
    # Started before the cluster exists: it waits for the queue, then follows it.
    eventd = eventds(tmp_path, state / "lib", "--broker", rabbitmq.url)
    await asyncio.get_running_loop().run_in_executor(None, _cluster_jobs, GanetiCluster(state))
    ops = ["OP_INSTANCE_CREATE", "OP_INSTANCE_SHUTDOWN", "OP_INSTANCE_STARTUP"]

    wanted = {(op, "success") for op in ops} | {("OP_NETWORK_ADD", "success"), ("OP_TAGS_SET", "heartbeat")}

    def seen() -> set:
        return {(m.body["operation"], "heartbeat" if m.body["type"] == "eventd-heartbeat" else m.body["status"])
                for m in consumer.received}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not wanted <= seen():
        if loop.time() > deadline:
            (tmp_path / "debug.txt").write_text(repr(sorted(seen())) + eventd.log_text())
        assert loop.time() < deadline, tmp_path
        await asyncio.sleep(0.1)
    by_op: dict[str, list] = {}
    for m in consumer.received:
        if m.body["type"] == "ganeti-op-status":
            by_op.setdefault(m.body["operation"], []).append(m)
    for op in ops:
        seq = [m.body["status"] for m in by_op[op]]
        # Each status once, in Ganeti's order; queued and success always.
        assert seq == [s for s in ORDER if s in seq] and seq[0] == "queued" and seq[-1] == "success", (op, seq)
        times = [tuple(m.body["event_time"]) for m in by_op[op]]
        assert times == sorted(times)
        assert all(m.routing_key == "ganeti.snf.event.op" and m.body["instance"] == "snf-1.example.test"
                   and m.body["cluster"] == "cluster.example.test" for m in by_op[op])
    for op in ("OP_INSTANCE_CREATE", "OP_INSTANCE_STARTUP"):
        done = by_op[op][-1].body
        (nic,) = done["instance_nics"]  # from the live config.data
        assert nic["link"] == "gntbr0" and nic["mode"] == "bridged" and nic["mac"].startswith("aa:00:00:")
        assert done["instance_disks"] == [] and "instance_hvparams" in done
    beats = [m for m in consumer.received if m.body["type"] == "eventd-heartbeat"]
    assert len(beats) == 1 and beats[0].routing_key == "eventd.heartbeat"
    (net,) = [m for m in consumer.received if m.body["type"] == "ganeti-network-status"
              and m.body["status"] == "success"]
    assert net.body["network"] == "snf-net1" and net.body["job_fields"]["subnet"] == "10.10.0.0/24"
    assert len({m.message_id for m in consumer.received}) == len(consumer.received)
    assert eventd.stop() == 0


def _cluster_jobs(cluster: GanetiCluster) -> None:
    """Init (job 1), then instance create/shutdown/startup, the heartbeat trigger and a network."""
    cluster.start()
    try:
        cluster.run("gnt-instance", "add", "-t", "diskless", *INSTANCE_ARGS, "snf-1.example.test")
        cluster.run("gnt-instance", "shutdown", "snf-1.example.test")
        cluster.run("gnt-instance", "startup", "snf-1.example.test")
        cluster.run("gnt-debug", "submit-job", "--dry-run", str(GANETI / "opfiles" / "tags-dryrun.json"))
        cluster.run("gnt-network", "add", "--network=10.10.0.0/24", "--gateway=10.10.0.1", "snf-net1")
        cluster.wait_for_jobs()
    finally:
        cluster.stop()
