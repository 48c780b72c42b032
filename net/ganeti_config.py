"""What eventd reads from Ganeti's ``config.data``: instance NICs, disks, hvparams and tags.

The original eventd asked luxid (``QueryInstances``) on the master and read
``config.data`` elsewhere; nefeli always reads the file, so it needs no Ganeti library
and no luxid. Ganeti 2.12+ keys instances, disks and networks by UUID (instances
then carry their disk UUIDs and NICs their network UUID); older files key instances by
name with disks inline. Both are understood. The NIC and disk dicts have the keys the
original published from its luxid query (docs/eventd.md, "Instance details").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClusterConfig", "ConfigDataError", "InstanceInfo", "parse_config_data"]


class ConfigDataError(ValueError):
    """``config.data`` is not JSON or not shaped like a Ganeti configuration."""


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    name: str
    nics: list[dict[str, Any]]
    disks: list[dict[str, Any]]
    hvparams: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    cluster_name: str | None
    instances: Mapping[str, InstanceInfo] = field(default_factory=dict)

    def instance(self, name: str) -> InstanceInfo | None:
        return self.instances.get(name)


def parse_config_data(data: bytes) -> ClusterConfig:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigDataError(f"config.data is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigDataError("config.data: top level is not an object")
    cluster = _obj(raw.get("cluster", {}), "cluster")
    name = cluster.get("cluster_name")
    cluster_hv = _obj(cluster.get("hvparams", {}), "cluster.hvparams")
    nic_defaults = _obj(cluster.get("nicparams", {}) or {}, "cluster.nicparams").get("default", {}) or {}
    networks = _obj(raw.get("networks", {}) or {}, "networks")
    disks = _obj(raw.get("disks", {}) or {}, "disks")
    instances: dict[str, InstanceInfo] = {}
    for key, inst in _obj(raw.get("instances", {}) or {}, "instances").items():
        if not isinstance(inst, dict):
            raise ConfigDataError(f"config.data: instance {key!r} is not an object")
        iname = inst.get("name", key)
        if not isinstance(iname, str):
            raise ConfigDataError(f"config.data: instance {key!r} has no name")
        instances[iname] = _instance(iname, inst, cluster_hv, nic_defaults, networks, disks)
    return ClusterConfig(name if isinstance(name, str) else None, instances)


def _instance(
    name: str,
    inst: dict[str, Any],
    cluster_hv: dict[str, Any],
    nic_defaults: dict[str, Any],
    networks: dict[str, Any],
    disks: dict[str, Any],
) -> InstanceInfo:
    tags = [t for t in inst.get("tags", []) or [] if isinstance(t, str)]
    nics = []
    for index, nic in enumerate(inst.get("nics", []) or []):
        if not isinstance(nic, dict):
            raise ConfigDataError(f"config.data: instance {name}: NIC {index} is not an object")
        # An instance keeps only the NIC parameters it overrides; the rest are the cluster's.
        own = nic.get("nicparams") or {}
        params = dict(nic_defaults, **own) if isinstance(nic_defaults, dict) and isinstance(own, dict) else own
        net = nic.get("network")
        net_obj = networks.get(net) if isinstance(net, str) else None
        nics.append(
            {
                "name": nic.get("name"),
                # A network UUID becomes the network's name, as luxid's nic.networks.names.
                "network": net_obj.get("name", net) if isinstance(net_obj, dict) else net,
                "ip": nic.get("ip"),
                "mac": nic.get("mac"),
                "mode": params.get("mode") if isinstance(params, dict) else None,
                "link": params.get("link") if isinstance(params, dict) else None,
                "uuid": nic.get("uuid"),
                "index": index,
            }
        )
    _firewalls(nics, tags)
    out_disks = []
    for index, disk in enumerate(inst.get("disks", []) or []):
        d = disks.get(disk) if isinstance(disk, str) else disk
        if not isinstance(d, dict):
            raise ConfigDataError(f"config.data: instance {name}: disk {index} is unknown")
        out_disks.append({"name": d.get("name"), "size": d.get("size"), "uuid": d.get("uuid"), "index": index})
    hv = inst.get("hypervisor")
    filled: dict[str, Any] = {}
    base = cluster_hv.get(hv) if isinstance(hv, str) else None
    if isinstance(base, dict):
        filled.update(base)
    own = inst.get("hvparams") or {}
    if isinstance(own, dict):
        filled.update(own)
    return InstanceInfo(name, nics, out_disks, filled, tags)


def _firewalls(nics: list[dict[str, Any]], tags: list[str]) -> None:
    """``synnefo:network:<nic name or index>:<firewall profile>`` tags give each NIC its firewall."""
    for tag in tags:
        parts = tag.split(":")
        if parts[:2] != ["synnefo", "network"] or len(parts) != 4:
            continue
        ref, profile = parts[2], parts[3]
        named = [n for n in nics if n["name"] == ref]
        if not named and ref.isdigit() and int(ref) < len(nics):
            named = [nics[int(ref)]]
        for nic in named:
            nic.setdefault("firewall", profile)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigDataError(f"config.data: {where} is not an object")
    return value
