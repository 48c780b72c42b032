"""Blocking API for the CLI: the same façade on a plain sqlite3 connection.

The async methods of ``MetadataStore`` only ever await their backend; on the
``DirectBackend`` those awaits complete at once, so a coroutine runs to its end on
the first ``send`` and no event loop (or thread) is needed.  ``_drive`` checks that.

    with SyncMetadataStore("meta.db") as md:
        md.accounts.ensure("alice")
        md.listing.objects("alice", "pics", limit=100)
"""

from __future__ import annotations

import functools
import os
import time
from types import TracebackType
from typing import Any, Generic, TypeVar
from collections.abc import Callable, Coroutine, Sequence

from .db import DirectBackend, Options
from .migrations import MIGRATIONS, Migration
from .store import MetadataStore

T = TypeVar("T")
F = TypeVar("F")


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a metadata operation tried to suspend under the sync API")


class SyncFacade(Generic[F]):
    """Blocking view of one async façade (``store.accounts`` ...): same methods, same
    arguments, results instead of coroutines."""

    def __init__(self, target: F) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return _drive(result) if isinstance(result, Coroutine) else result

        return call

    def __dir__(self) -> list[str]:
        return [n for n in dir(self._target) if not n.startswith("_")]


class SyncMetadataStore:
    """The metadata store for synchronous callers (CLI, scripts), one thread only."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        options = Options(synchronous=synchronous, busy_timeout=busy_timeout, readers=0)
        self._backend = DirectBackend.open_sync(path, options, migrations)
        self.store = MetadataStore(self._backend, clock=clock)
        s = self.store
        self.accounts = SyncFacade(s.accounts)
        self.containers = SyncFacade(s.containers)
        self.objects = SyncFacade(s.objects)
        self.listing = SyncFacade(s.listing)
        self.history = SyncFacade(s.history)
        self.sharing = SyncFacade(s.sharing)
        self.public = SyncFacade(s.public)
        self.tokens = SyncFacade(s.tokens)
        self.maintenance = SyncFacade(s.maintenance)

    @property
    def schema_version(self) -> int:
        return self._backend.schema_version

    @property
    def connection(self) -> Any:
        """The underlying sqlite3 connection (diagnostics, EXPLAIN in tests)."""
        return self._backend.conn

    def close(self) -> None:
        self._backend.close_sync()

    def __enter__(self) -> SyncMetadataStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
