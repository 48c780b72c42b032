"""`nefeli-blockd`: entry point, start-up, first-start bootstrap, shutdown.

    nefeli-blockd --data DIR --listen HOST:PORT [--config FILE]

Listens on the socket systemd passes named ``http`` (or passed without a name),
or else on --listen; READY=1 is sent once listening. The MD5 backfill runs as a
background task of the runtime: started once ready, stopped before the store
closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # python daemons/blockd/main.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web  # noqa: E402

from daemons.runtime import App, Context, open_listener, runner_options, start_sites  # noqa: E402
from daemons.blockd.config import BlockdConfig  # noqa: E402
from daemons.blockd.server import Server  # noqa: E402
from daemons.blockd.volumes_service import VOLUME_FIELDS, VolumesService  # noqa: E402
from storage_engine.blocks.config import StoreConfig  # noqa: E402
from storage_engine.objects.md5_backfill import Md5Backfill  # noqa: E402
from storage_engine.objects.store import ObjectStore  # noqa: E402

READ_BUFSIZE = 4 << 20


async def bootstrap(store: ObjectStore, cfg: BlockdConfig, listen: str) -> None:
    """First start: a demo account and a token, printed once (only its hash is stored)."""
    name = cfg.demo_account
    if not name:
        return
    await store.meta.accounts.ensure(name)
    tok = await store.meta.tokens.create(name, description="first-start demo token")
    url = cfg.public_url.rstrip("/") if cfg.public_url else f"http://{listen}"
    msg = (
        "\n"
        "nefeli-blockd: new data directory; created account and token (shown only now):\n"
        f"  account: {name}\n"
        f"  token:   {tok.token}\n"
        "use them with the client:\n"
        f"  export NEFELI_URL={url}\n"
        f"  export NEFELI_ACCOUNT={name}\n"
        f"  export NEFELI_TOKEN={tok.token}\n"
        f"  curl -H 'X-Auth-Token: {tok.token}' {url}/object-store/v1/{name}\n"
        "\n"
    )
    sys.stderr.write(msg)
    sys.stderr.flush()


async def main(ctx: Context[BlockdConfig]) -> int | None:
    cfg = ctx.config
    first = ObjectStore.is_new(cfg.data)
    store = await ObjectStore.open(
        cfg.data,
        synchronous=cfg.db_synchronous,
        hash_threads=cfg.hash_threads or None,
        store_config=StoreConfig(drop_cache_after_sync=cfg.drop_written_cache),
    )
    runner: web.AppRunner | None = None
    volumes: VolumesService | None = None
    backfill = Md5Backfill(store) if cfg.md5_backfill != "off" else None
    try:
        if first:  # before listening: whoever sees the server up can already read the token
            await bootstrap(store, cfg, cfg.listen)
        if backfill is not None:
            ctx.tasks.add("md5-backfill", backfill.run)
        server = Server(store, cfg, backfill)
        # read_bufsize: how much of a request body aiohttp buffers before it stops
        # reading the socket (the default 64 KiB pauses and resumes it every few
        # network reads during a block upload).
        runner = web.AppRunner(
            server.make_app(),
            handle_signals=False,
            read_bufsize=READ_BUFSIZE,
            # A body is stored as sent: Content-Encoding (gzip, ...) is the object's
            # metadata for whoever reads it, never something the server undoes.
            auto_decompress=False,
            **runner_options(ctx.prog, cfg.access_log),
        )
        await runner.setup()
        volumes = await VolumesService.start(ctx, store)  # the `nbd` listener, before close_unused_sockets()
        server.service.metrics.sampled("volumes", VOLUME_FIELDS, volumes.stats)
        where = await start_sites(runner, open_listener(ctx.sockets, "http", cfg.listen, default=True))
        ctx.close_unused_sockets()

        @ctx.on_reload
        async def reloaded(new: BlockdConfig) -> None:
            server.service.config = new
            ctx.log.info("configuration reloaded")

        ctx.ready(f"serving on {', '.join(where + volumes.where)}")
        reason = await ctx.wait_for_stop()
        ctx.log.info("stopping: %s", reason)
    finally:
        if runner is not None:
            await runner.cleanup()
        if volumes is not None:
            await volumes.close()
        await store.close()
    return 0


APP = App(
    "nefeli-blockd",
    BlockdConfig,
    main,
    description="nefeli object storage daemon (Pithos/Swift API over the block store)",
)


def entry() -> None:
    APP.run()


if __name__ == "__main__":
    entry()
