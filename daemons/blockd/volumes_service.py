"""Volumes inside nefeli-blockd: the engine on the daemon's block store, the background
freezer, the NBD export and the admin API, started and stopped together."""

from __future__ import annotations

from pathlib import Path

from daemons.runtime import Context, Sampled, open_listener
from storage_engine.objects.store import ObjectStore
from storage_engine.volumes import VolumeStore
from storage_engine.volumes.freezer import Freezer

from .admin_api import AdminApi, admin_socket_path
from .config import BlockdConfig
from .nbd_server import NbdServer
from .volume_ops import VolumeOps


#: Volume and NBD numbers on blockd's /metrics, read at each scrape.
VOLUME_FIELDS = (
    Sampled("volumes", "gauge", "volumes and snapshots"),
    Sampled("volume_extent_bytes", "gauge", "disk used by owned and not yet hashed frozen volume blocks"),
    Sampled("volume_frozen_extents", "gauge", "frozen extents waiting to be hashed into the block store"),
    Sampled("volume_extents_hashed", "counter", "frozen extents hashed into the block store"),
    Sampled("volume_shared_cache_hits", "counter", "reads of shared volume blocks served from the cache"),
    Sampled("volume_shared_cache_misses", "counter", "reads of shared volume blocks from the block store"),
    Sampled("nbd_connections", "gauge", "open NBD connections"),
    Sampled("nbd_requests", "counter", "NBD transmission requests answered"),
    Sampled("nbd_bytes_read", "counter", "bytes read by NBD clients"),
    Sampled("nbd_bytes_written", "counter", "bytes written by NBD clients"),
    Sampled("nbd_protocol_errors", "counter", "NBD clients dropped for breaking the protocol"),
)


class VolumesService:
    def __init__(self, volumes: VolumeStore, nbd: NbdServer, admin: AdminApi, freezer: Freezer) -> None:
        self.volumes = volumes
        self.nbd = nbd
        self.admin = admin
        self.freezer = freezer

    @property
    def where(self) -> list[str]:
        return self.nbd.where

    @classmethod
    async def start(cls, ctx: Context[BlockdConfig], objects: ObjectStore) -> VolumesService:
        """Serves the sockets systemd passed as `nbd`, or else --nbd-listen and --nbd-socket."""
        cfg = ctx.config
        volumes = VolumeStore(objects.blocks.store)
        freezer = Freezer(volumes)
        nbd = NbdServer(volumes)
        admin = AdminApi(VolumeOps(volumes, objects))
        service = cls(volumes, nbd, admin, freezer)
        try:
            freezer.start()
            addresses = [cfg.nbd_listen]
            if cfg.nbd_socket:
                addresses.append(f"unix:{(Path(cfg.data) / cfg.nbd_socket).resolve()}")
            for sock in open_listener(ctx.sockets, "nbd", addresses, mode=0o660):
                await nbd.serve_socket(sock)
            await admin.start(admin_socket_path(cfg.data))
        except BaseException:
            await service.close()
            raise
        return service

    def stats(self) -> dict[str, float]:
        """VOLUME_FIELDS' values (for the metrics registry)."""
        v = self.volumes
        return {
            "volumes": len(v.names()),
            "volume_extent_bytes": v.disk_bytes(),
            "volume_frozen_extents": v.frozen_extents(),
            "volume_extents_hashed": self.freezer.done,
            "volume_shared_cache_hits": v.cache.hits,
            "volume_shared_cache_misses": v.cache.misses,
            **self.nbd.stats(),
        }

    async def close(self) -> None:
        await self.admin.close()
        await self.nbd.close()
        self.freezer.stop()
        self.volumes.close()
