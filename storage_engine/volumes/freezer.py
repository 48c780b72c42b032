"""The background worker that hashes frozen extents into the block store.

One thread: woken when a snapshot, clone or delete may have left frozen
extents, and every `interval` seconds anyway (a failure is retried then).
"""

from __future__ import annotations

import logging
import threading

from .store import VolumeStore

log = logging.getLogger(__name__)


class Freezer:
    def __init__(self, volumes: VolumeStore, interval: float = 30.0) -> None:
        self.volumes = volumes
        self.interval = interval
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nefeli-volume-freezer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.volumes.changed.wait(self.interval)
            if self._stop.is_set():
                return
            try:
                self.done += self.volumes.freeze_pending()
            except Exception:
                log.exception("hashing frozen volume extents failed; retrying in %.0f s", self.interval)
                self.volumes.changed.clear()

    def stop(self) -> None:
        self._stop.set()
        self.volumes.stop_freezing.set()
        self.volumes.changed.set()
        if self._thread.is_alive():
            self._thread.join()
