"""The metadata store: one object holding the per-topic APIs.

    store = await MetadataStore.open("/var/lib/nefeli/meta.db")
    await store.accounts.ensure("alice")
    await store.containers.create("alice", "pics")
    await store.objects.put("alice", "pics", "a.jpg", map=ref, modified_by="alice")
    page = await store.listing.objects("alice", "pics", delimiter="/")
    await store.close()
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from .accounts import Accounts
from .containers import Containers
from .db import AiosqliteBackend, Backend, Options
from .history import History
from .listing import Listing
from .maintenance import Maintenance
from .migrations import MIGRATIONS, Migration
from .objects import Objects
from .public import Public
from .sharing import SharingAPI
from .tokens import Tokens


class MetadataStore:
    """Async API of the metadata DB; every method is one transaction."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.accounts = Accounts(backend, clock)
        self.containers = Containers(backend, clock)
        self.objects = Objects(backend, clock)
        self.listing = Listing(backend)
        self.history = History(backend)
        self.sharing = SharingAPI(backend)
        self.public = Public(backend, clock)
        self.tokens = Tokens(backend, clock)
        self.maintenance = Maintenance(backend)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        readers: int = 4,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> MetadataStore:
        """Open (creating or migrating) the database at ``path`` on aiosqlite.

        Raises SchemaTooNew if the file was written by a newer nefeli."""
        options = Options(synchronous=synchronous, busy_timeout=busy_timeout, readers=readers)
        backend = await AiosqliteBackend.open(path, options, migrations)
        return cls(backend, clock=clock)

    @property
    def schema_version(self) -> int:
        return self.backend.schema_version

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> MetadataStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
