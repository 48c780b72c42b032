"""Volumes inside nefeli-blockd: the engine on the daemon's block store, the background
freezer, the NBD export and the admin API, started and stopped together."""

from __future__ import annotations

from pathlib import Path

from daemons.runtime import Context, open_listener
from storage_engine.objects import ObjectStore
from storage_engine.volumes import VolumeStore
from storage_engine.volumes.freezer import Freezer

from .admin_api import AdminApi, admin_socket_path
from .config import BlockdConfig
from .nbd_server import NbdServer
from .volume_ops import VolumeOps


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

    async def close(self) -> None:
        await self.admin.close()
        await self.nbd.close()
        self.freezer.stop()
        self.volumes.close()
