"""Keeping the binding table in step with the data path through inotify (asyncinotify).

A hook's ``cat >file`` gives CREATE (file still empty, or half written) then
CLOSE_WRITE (complete); ``mv`` into place gives MOVED_TO; ``rm`` gives DELETE.
A queue overflow means events were lost, so everything is read again. If the
directory itself goes away, the watch is set up again once it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from asyncinotify import Inotify, Mask

from daemons.dhcpd.bindings import Binding, BindingTable

__all__ = ["watch_bindings", "WATCH_MASK"]

log = logging.getLogger("nefeli-dhcpd.bindings")

WATCH_MASK = (
    Mask.CREATE
    | Mask.CLOSE_WRITE
    | Mask.MOVED_TO
    | Mask.MOVED_FROM
    | Mask.DELETE
    | Mask.DELETE_SELF
    | Mask.MOVE_SELF
    | Mask.ONLYDIR
)
RETRY = 2.0


async def watch_bindings(
    table: BindingTable,
    on_change: Callable[[Binding], None] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Runs until cancelled; ``ready`` is set once the first watch is in place."""
    warned = False
    while True:
        try:
            with Inotify() as ino:
                ino.add_watch(table.datapath, WATCH_MASK)
                warned = False
                table.rescan()  # after the watch exists, so no change falls in between
                if ready is not None:
                    ready.set()
                async for ev in ino:
                    if Mask.Q_OVERFLOW in ev.mask:
                        log.warning("inotify queue overflowed: reading every binding again")
                        table.rescan()
                        continue
                    if ev.mask & (Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.IGNORED):
                        log.warning("%s went away; watching for it to come back", table.datapath)
                        break
                    name = str(ev.name) if ev.name is not None else ""
                    if not table.watched(name):
                        continue
                    if ev.mask & (Mask.DELETE | Mask.MOVED_FROM):
                        table.remove(name)
                        continue
                    final = not (Mask.CREATE in ev.mask)
                    b = table.load(name, final=final)
                    if b is not None and on_change is not None:
                        on_change(b)
        except OSError as exc:
            if not warned:
                log.error("cannot watch %s: %s; retrying", table.datapath, exc.strerror or exc)
                warned = True
            if ready is not None:
                ready.set()
        await asyncio.sleep(RETRY)
