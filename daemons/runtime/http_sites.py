"""Serving an aiohttp runner on the sockets a listener gave (listeners.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from aiohttp import web

__all__ = ["start_sites"]


async def start_sites(runner: web.AppRunner, sockets: Iterable[socket.socket]) -> list[str]:
    """Start one site per socket on ``runner``; their names (URLs) for the READY status."""
    names: list[str] = []
    for sock in sockets:
        site = web.SockSite(runner, sock)
        await site.start()
        names.append(site.name)
    return names
