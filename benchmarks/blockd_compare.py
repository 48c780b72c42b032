"""nefeli-blockd + `nefeli` client vs nginx (WebDAV PUT / GET) and rsync --daemon, side by side.

Same file, same disk, loopback.  Run:  .venv/bin/python benchmarks/blockd_compare.py [--size-mib 1024]

  1. first upload of the file: `nefeli upload` vs `curl -T` to nginx (dav)   goal ≥ 0.7× nginx
  2. re-sync after changing 1 % of it: `nefeli upload` vs `rsync` daemon     goal: faster than rsync
  3. download: `nefeli download` vs `curl` GET from nginx                    goal ≥ 0.7× nginx
  4. 4 KiB PUT+GET requests/s with 32 concurrent aiohttp clients    goal ≥ 0.5× nginx
     with the server's CPU per request (utime + stime from /proc/PID/stat, every
     process of the server: nginx's workers too)                     goal ≤ 0.4 ms
  5. 4 KiB PUT alone and GET alone, p50/p99 latency with 1 and 32 clients

`--only small` runs tests 4-5 alone (no 1 GiB file), each --rounds times.

Test 2 also re-syncs scattered 64 KiB changes into a container of 256 KiB
blocks, to show what the block size (a container policy) costs there.

Tests 1-3 run --rounds times, each round on a new random file; medians are
reported.  nefeli answers an upload only once the data is on disk, while nginx
answers from the page cache; the "+ fsync" lines add the time nginx's file then
needs to reach the disk, for a like-for-like view.

By default (--cache cold, as root) every timed run starts with the page cache
dropped, so no side reads what an earlier step left in memory (nginx's GET
would otherwise serve the file its own PUT just cached, while nefeli-blockd
drops what it has written once it is on disk).  --cache warm keeps the cache.

An upload by block hashes leaves nefeli-blockd one job after its answer: reading
the new content once for its MD5 (the Swift ETag, docs/blockd.md).  Every timed
run starts once that is done, and the time it takes after the first upload and
after a re-sync is shown on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from cli_support import Server, free_port  # noqa: E402

PY = sys.executable
MiB = 1 << 20


#: drop the page cache before every timed run (--cache cold); needs root
DROP_CACHES = False
#: the nefeli-blockd under test, whose background MD5 work settle() waits for
BLOCKD: Server | None = None


def wait_md5_backfill() -> float:
    """Seconds until nefeli-blockd has no MD5 left to compute in the background."""
    t = time.perf_counter()
    while BLOCKD is not None and BLOCKD.metric("nefeli_blockd_md5_backfill_pending") > 0:
        time.sleep(0.02)
    return time.perf_counter() - t


def settle() -> None:
    """Start a timed run with no dirty pages left by the previous one (nginx and rsync
    never fsync: their writeback would otherwise land in the next run's time) and,
    with --cache cold, with nothing cached: whichever side wrote or read a file last
    would otherwise find it in memory.  nefeli-blockd's background MD5 work is done first."""
    wait_md5_backfill()
    os.sync()
    if DROP_CACHES:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    settle()
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def start_nginx(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    root = work / "nginx-root"
    root.mkdir()
    (work / "nginx-tmp").mkdir()
    conf = work / "nginx.conf"
    import pwd

    user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""
{user} daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; client_body_temp_path {work}/nginx-tmp; client_max_body_size 0;
  proxy_temp_path {work}/nginx-tmp; fastcgi_temp_path {work}/nginx-tmp; uwsgi_temp_path {work}/nginx-tmp;
  scgi_temp_path {work}/nginx-tmp; sendfile on; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port}; root {root};
    location / {{ dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw; }} }}
}}
"""
    )
    p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port


def start_rsyncd(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    mod = work / "rsync-root"
    mod.mkdir()
    conf = work / "rsyncd.conf"
    conf.write_text(
        f"pid file = {work}/rsyncd.pid\nuse chroot = no\n[bench]\n  path = {mod}\n  read only = no\n"
        f"  uid = {os.getuid()}\n  gid = {os.getgid()}\n"
    )
    p = subprocess.Popen(
        ["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}", "--address=127.0.0.1"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return p, port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its children still running
    (nginx's workers), from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in _children(pid)]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat(5))
    return total / tick


def _children(pid: int) -> list[str]:
    out: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += (task / "children").read_text().split()
        except OSError:
            pass
    return out


@dataclass
class SmallRun:
    """What one timed run of small requests gave."""

    requests: int
    seconds: float
    cpu: float  # server CPU seconds spent meanwhile
    latencies: list[float]  # seconds, one per request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(1, self.requests)

    def percentile(self, q: float) -> float:
        lat = sorted(self.latencies)
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")


async def small_requests(
    base: str, headers: dict[str, str], n_clients: int, seconds: float, pid: int, mode: str = "putget"
) -> SmallRun:
    """`mode`: putget (each client PUTs then GETs its objects), put, or get (of objects
    a first pass has PUT, not timed)."""
    import aiohttp

    body = os.urandom(4096)
    done = 0
    lat: list[float] = []
    stop = 0.0

    async def put(s: aiohttp.ClientSession, url: str) -> None:
        async with s.put(url, data=body) as r:
            await r.read()
            if r.status not in (200, 201, 204):
                raise SystemExit(f"PUT {url}: {r.status}")

    async def get(s: aiohttp.ClientSession, url: str) -> None:
        async with s.get(url) as r:
            got = await r.read()
            if r.status != 200 or got != body:
                raise SystemExit(f"GET {url}: {r.status}")

    async def worker(k: int, s: aiohttp.ClientSession) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            url = f"{base}/small-{k}-{i % 50}"
            for op in ((put, get) if mode == "putget" else (put,) if mode == "put" else (get,)):
                t0 = time.perf_counter()
                await op(s, url)
                lat.append(time.perf_counter() - t0)
                done += 1
            i += 1

    conn = aiohttp.TCPConnector(limit=n_clients)
    async with aiohttp.ClientSession(headers=headers, connector=conn) as s:
        if mode == "get":  # the objects the timed GETs read
            await asyncio.gather(*(put(s, f"{base}/small-{k}-{i}") for k in range(n_clients) for i in range(50)))
        wait_md5_backfill()
        os.sync()  # no writeback of an earlier run in this one (the page cache stays: hot rows)
        stop = time.perf_counter() + seconds
        c0 = cpu_seconds(pid)
        t = time.perf_counter()
        await asyncio.gather(*(worker(k, s) for k in range(n_clients)))
        dt = time.perf_counter() - t
        return SmallRun(done, dt, cpu_seconds(pid) - c0, lat)


def small_tests(
    targets: dict[str, tuple[str, dict[str, str], int]], rounds: int, seconds: float
) -> dict[tuple[str, str, int], list[SmallRun]]:
    """Tests 4 and 5 on every target (name -> base URL, headers, server pid), the
    targets taking turns in each round."""
    runs: dict[tuple[str, str, int], list[SmallRun]] = {}
    plan = [("putget", 32), ("put", 1), ("put", 32), ("get", 1), ("get", 32)]
    for rnd in range(rounds):
        for mode, n in plan:
            for name, (base, headers, pid) in targets.items():
                run = asyncio.run(small_requests(base, headers, n, seconds, pid, mode))
                runs.setdefault((name, mode, n), []).append(run)
        print(f"small round {rnd + 1}: " + ", ".join(
            f"{name} {mode}×{n} {v[-1].rate:.0f}/s" for (name, mode, n), v in runs.items()), flush=True)
    return runs


def print_small(runs: dict[tuple[str, str, int], list[SmallRun]]) -> None:
    def med(name: str, mode: str, n: int, f: Callable[[SmallRun], float]) -> float:
        return median([f(r) for r in runs[(name, mode, n)]])

    rate = med("nefeli", "putget", 32, lambda r: r.rate)
    rate_n = med("nginx", "putget", 32, lambda r: r.rate)
    print(f"{'4 4 KiB PUT+GET req/s, 32 clients':<34}{rate:>12.0f}{rate_n:>12.0f}  {rate / rate_n:>5.2f}×  "
          f"≥ 0.5× nginx: {'MET' if rate / rate_n >= 0.5 else 'MISSED'}")
    print(f"\n{'server CPU ms per 4 KiB request':<34}{'nefeli':>12}{'nginx':>12}  goal ≤ 0.4 ms (nefeli)")
    for mode, n in (("putget", 32), ("put", 32), ("get", 32), ("put", 1), ("get", 1)):
        mine = med("nefeli", mode, n, lambda r: r.cpu_ms)
        print(f"{f'  {mode.upper()}, {n} client(s)':<34}{mine:>12.3f}{med('nginx', mode, n, lambda r: r.cpu_ms):>12.3f}"
              f"  {'MET' if mine <= 0.4 else 'MISSED'}")
    print(f"\n{'latency ms, p50 / p99':<34}{'nefeli':>16}{'nginx':>16}  (req/s nefeli / nginx)")
    for mode, n in (("put", 1), ("put", 32), ("get", 1), ("get", 32)):
        cells = []
        for name in ("nefeli", "nginx"):
            cells.append(f"{med(name, mode, n, lambda r: r.percentile(0.5)):.2f} / "
                         f"{med(name, mode, n, lambda r: r.percentile(0.99)):.2f}")
        print(f"{f'  {mode.upper()} alone, {n} client(s)':<34}{cells[0]:>16}{cells[1]:>16}  "
              f"({med('nefeli', mode, n, lambda r: r.rate):.0f} / {med('nginx', mode, n, lambda r: r.rate):.0f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir on the same disk as the repo)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each small-request run")
    ap.add_argument("--only", choices=("all", "small"), default="all", help="small: tests 4-5 alone")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of tests 1-3 (a new file each); medians reported")
    ap.add_argument(
        "--cache", choices=("cold", "warm"), default="cold",
        help="cold: drop the page cache before each timed run (root only); warm: keep what earlier steps left",
    )
    args = ap.parse_args()
    global DROP_CACHES
    DROP_CACHES = args.cache == "cold"
    if DROP_CACHES and os.geteuid() != 0:
        raise SystemExit("--cache cold drops the page cache and needs root; run as root or pass --cache warm")
    for prog in ("nginx",) if args.only == "small" else ("nginx", "rsync", "curl"):
        if not shutil.which(prog):
            raise SystemExit(f"needs {prog} (scripts/install-test-peers)")
    work = Path(tempfile.mkdtemp(prefix="blockd-compare-", dir=args.dir or os.environ.get("TMPDIR")))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fsync_path(path: Path) -> float:
    """Seconds to make a file the peer wrote durable (what nefeli does before it answers)."""
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def write_random_file(path: Path, size: int, seed: int) -> None:
    with open(path, "wb") as f:
        rng = random.Random(seed)
        for _ in range(size // MiB):
            f.write(rng.randbytes(MiB))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def run(args: argparse.Namespace, work: Path) -> int:
    size = args.size_mib * MiB
    src = work / "file.bin"
    print(f"work dir {work}; file {args.size_mib} MiB; {args.rounds} round(s), medians reported; "
          f"{args.cache} page cache before each timed run", flush=True)
    global BLOCKD
    srv = BLOCKD = Server(work / "blockd").start()
    nginx, nport = start_nginx(work)
    rsyncd, rport = start_rsyncd(work) if args.only == "all" else (None, 0)
    env = {**os.environ, **srv.env(), "XDG_CONFIG_HOME": str(work / "noconf")}
    nginx_file = work / "nginx-root" / "file.bin"
    import urllib.request

    urllib.request.urlopen(  # a container whose block size suits scattered small changes
        urllib.request.Request(
            f"{srv.url}/object-store/v1/{srv.account}/bench256", method="PUT",
            headers={"X-Auth-Token": srv.token, "X-Container-Policy-Block-Size": str(256 * 1024)},
        )
    ).read()
    t: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        t.setdefault(name, []).append(value)

    try:
        for rnd in range(args.rounds if args.only == "all" else 0):
            # A new file each round, so every nefeli upload is a first upload (no block known);
            # the peers' copies of the last round go too, so theirs are first copies as well.
            write_random_file(src, size, seed=1000 + rnd)
            for old in (nginx_file, work / "rsync-root" / "file.bin"):
                old.unlink(missing_ok=True)
            obj = f"bench/file-{rnd}.bin"
            # 1. first upload
            add("nginx put", timed(["curl", "-sS", "-f", "-T", str(src), f"http://127.0.0.1:{nport}/file.bin"]))
            add("nginx put fsync", fsync_path(nginx_file))
            add("nefeli up", timed([PY, "-m", "cli.main", "upload", "-q", str(src), obj], env, REPO))
            add("nefeli md5 after up", wait_md5_backfill())
            # the same file in a container of 256 KiB blocks (not timed: for the scattered re-sync)
            small_obj = f"bench256/file-{rnd}.bin"
            timed([PY, "-m", "cli.main", "upload", "-q", str(src), small_obj], env, REPO)
            add("rsync first", timed(["rsync", "-a", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"]))

            # 2. change 1 % (scattered 64 KiB patches) and re-sync
            rng = random.Random(2 + rnd)
            fd = os.open(src, os.O_RDWR)
            changed = 0
            while changed < size // 100:
                off = rng.randrange(0, size - 65536)
                os.pwrite(fd, rng.randbytes(65536), off)
                changed += 65536
            os.close(fd)
            add("rsync scattered", timed(["rsync", "-a", "--inplace", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"]))
            add("nefeli scattered", timed([PY, "-m", "cli.main", "upload", "-q", str(src), obj], env, REPO))
            add("nefeli scattered 256k", timed([PY, "-m", "cli.main", "upload", "-q", str(src), small_obj], env, REPO))
            # contiguous 1 % change
            fd = os.open(src, os.O_RDWR)
            os.pwrite(fd, os.urandom(size // 100), size // 3)
            os.close(fd)
            add("rsync contiguous", timed(["rsync", "-a", "--inplace", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"]))
            add("nefeli contiguous", timed([PY, "-m", "cli.main", "upload", "-q", str(src), obj], env, REPO))
            add("nefeli md5 after re-sync", wait_md5_backfill())

            # 3. download (fresh target; nefeli fsyncs the file before renaming it into place)
            timed(["curl", "-sS", "-f", "-T", str(src), f"http://127.0.0.1:{nport}/file.bin"])
            out_n = work / "dl-nginx.bin"
            out_b = work / "dl-nefeli.bin"
            add("nginx get", timed(["curl", "-sS", "-f", "-o", str(out_n), f"http://127.0.0.1:{nport}/file.bin"]))
            add("nginx get fsync", fsync_path(out_n))
            add("nefeli get", timed([PY, "-m", "cli.main", "download", "-q", obj, str(out_b)], env, REPO))
            out_n.unlink()
            out_b.unlink()
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in t.items()), flush=True)

        # 4-5. small requests
        base = f"{srv.url}/object-store/v1/{srv.account}/small"
        req = urllib.request.Request(base, method="PUT", headers={"X-Auth-Token": srv.token})
        urllib.request.urlopen(req).read()
        assert srv.proc is not None
        small = small_tests(
            {"nefeli": (base, {"X-Auth-Token": srv.token}, srv.proc.pid),
             "nginx": (f"http://127.0.0.1:{nport}/small", {}, nginx.pid)},
            args.rounds, args.seconds,
        )
    finally:
        for p in (nginx, rsyncd):
            if p is not None:
                p.terminate()
                p.wait()
        srv.stop()

    if args.only == "small":
        print(f"\n{'test':<34}{'nefeli':>12}{'nginx':>12}  {'ratio':>6}  goal")
        print_small(small)
        return 0
    m = {k: median(v) for k, v in t.items()}
    mib = size / MiB

    def rate(seconds: float) -> float:
        return mib / seconds

    up, up_n, up_nd = rate(m["nefeli up"]), rate(m["nginx put"]), rate(m["nginx put"] + m["nginx put fsync"])
    dl, dl_n, dl_nd = rate(m["nefeli get"]), rate(m["nginx get"]), rate(m["nginx get"] + m["nginx get fsync"])
    print(f"\n{'test':<34}{'nefeli':>12}{'baseline':>12}  {'ratio':>6}  goal")
    rows = [
        ("1 first upload", up, up_n, "nginx PUT", True),
        ("  (nginx PUT + fsync, durable)", up, up_nd, "", False),
        ("3 download", dl, dl_n, "nginx GET", True),
        ("  (nginx GET + fsync, durable)", dl, dl_nd, "", False),
    ]
    for name, mine, base_v, what, goal in rows:
        verdict = f"≥ 0.7× {what}: {'MET' if mine / base_v >= 0.7 else 'MISSED'}" if goal else "for context"
        print(f"{name:<34}{mine:>7.0f} MiB/s{base_v:>6.0f} MiB/s  {mine / base_v:>5.2f}×  {verdict}")
    for name, mine_k, base_k in (
        ("2 re-sync 1 % contiguous", "nefeli contiguous", "rsync contiguous"),
        ("2b re-sync 1 % scattered", "nefeli scattered", "rsync scattered"),
        ("2c same, 256 KiB-block container", "nefeli scattered 256k", "rsync scattered"),
    ):
        mine, base_v = m[mine_k], m[base_k]
        print(f"{name:<34}{mine:>10.2f} s{base_v:>10.2f} s  {base_v / mine:>5.2f}×  faster than rsync daemon: "
              f"{'MET' if mine < base_v else 'MISSED'}")
    print_small(small)
    print(f"(nefeli-blockd then computed the new content's MD5 in the background, not counted above: "
          f"{m['nefeli md5 after up']:.2f} s after the first upload, {m['nefeli md5 after re-sync']:.2f} s after "
          "the contiguous re-sync; every timed run started once it was done; md5_backfill = \"on-demand\" or "
          "\"off\" spares it where no Swift client needs the MD5)")
    print(f"(rsync first full copy: {rate(m['rsync first']):.0f} MiB/s; nefeli acknowledges an upload only once "
          "it is on disk, nginx and rsync before; nefeli download fsyncs the file, curl does not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
