"""What every blockd handler is given: the object store and the server's settings.

One Service per server, shared by reference, so a configuration reload
(``service.config = new``) reaches every handler at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from storage_engine.objects.md5_backfill import Md5Backfill
from storage_engine.objects.metadata import MetadataStore
from storage_engine.objects.store import ObjectStore

from .config import BlockdConfig
from .metrics import BlockdMetrics


@dataclass
class Service:
    store: ObjectStore
    config: BlockdConfig
    md5_backfill: Md5Backfill | None = None
    version: str | None = None
    started: float = field(default_factory=time.time)
    metrics: BlockdMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = BlockdMetrics(self.sampled_stats)

    @property
    def meta(self) -> MetadataStore:
        return self.store.meta

    async def sampled_stats(self) -> dict[str, Any]:
        """The store's and the MD5 backfill's numbers, read at each /metrics scrape."""
        stats = await self.store.stats()
        b = self.md5_backfill
        if b is not None:
            stats.update(
                md5_backfill_pending=b.pending, md5_backfill_filled=b.counters.filled,
                md5_backfill_failed=b.counters.failed, md5_backfill_dropped=b.counters.dropped,
            )
        return stats

    def base_url(self, request: web.Request) -> str:
        """The scheme://host this server is reached at (for URLs in answers)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = request.headers.get("Host") or f"{request.url.host}:{request.url.port}"
        return f"{request.scheme}://{host}"
