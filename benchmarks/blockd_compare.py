"""nefeli-blockd + `nefeli` client vs nginx (WebDAV PUT / GET) and rsync --daemon, side by side.

Same file, same disk, loopback.  Run:  .venv/bin/python benchmarks/blockd_compare.py [--size-mib 1024]

  1. first upload of the file: `nefeli upload` vs `curl -T` to nginx (dav)   goal ≥ 0.7× nginx
  2. re-sync after changing 1 % of it: `nefeli upload` vs `rsync` daemon     goal: faster than rsync
  3. download: `nefeli download` vs `curl` GET from nginx                    goal ≥ 0.7× nginx
  4. 4 KiB PUT+GET requests/s with 32 concurrent aiohttp clients (nginx for reference)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from test_cli_support import Server, free_port  # noqa: E402

PY = sys.executable
MiB = 1 << 20


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    # Start every timed run with no dirty pages left by the previous one (nginx and
    # rsync never fsync: their writeback would otherwise land in the next run's time).
    os.sync()
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def drop_nothing() -> None:
    os.sync()


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


async def small_requests(base: str, headers: dict[str, str], n_clients: int, seconds: float) -> float:
    import aiohttp

    body = os.urandom(4096)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int, s: aiohttp.ClientSession) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            url = f"{base}/small-{k}-{i % 50}"
            async with s.put(url, data=body) as r:
                await r.read()
                if r.status not in (200, 201, 204):
                    raise SystemExit(f"PUT {url}: {r.status}")
            async with s.get(url) as r:
                got = await r.read()
                if r.status != 200 or got != body:
                    raise SystemExit(f"GET {url}: {r.status}")
            done += 2
            i += 1

    conn = aiohttp.TCPConnector(limit=n_clients)
    async with aiohttp.ClientSession(headers=headers, connector=conn) as s:
        t = time.perf_counter()
        await asyncio.gather(*(worker(k, s) for k in range(n_clients)))
        return done / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir on the same disk as the repo)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of the small-request test")
    args = ap.parse_args()
    for prog in ("nginx", "rsync", "curl"):
        if not shutil.which(prog):
            raise SystemExit(f"needs {prog} (scripts/install-test-peers)")
    work = Path(tempfile.mkdtemp(prefix="blockd-compare-", dir=args.dir or os.environ.get("TMPDIR")))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    size = args.size_mib * MiB
    src = work / "file.bin"
    print(f"work dir {work}; file {args.size_mib} MiB", flush=True)
    with open(src, "wb") as f:
        rng = random.Random(1)
        for _ in range(size // MiB):
            f.write(rng.randbytes(MiB))
    srv = Server(work / "blockd").start()
    nginx, nport = start_nginx(work)
    rsyncd, rport = start_rsyncd(work)
    env = {**os.environ, **srv.env(), "XDG_CONFIG_HOME": str(work / "noconf")}
    results: list[tuple[str, float, float, str, bool]] = []
    try:
        # 1. first upload
        drop_nothing()
        t_nginx_put = timed(["curl", "-sS", "-f", "-T", str(src), f"http://127.0.0.1:{nport}/file.bin"])
        t_nef_up = timed([PY, "-m", "cli.main", "upload", "-q", str(src), "bench/file.bin"], env, REPO)
        r = t_nginx_put / t_nef_up
        results.append(("1 first upload", size / t_nef_up / MiB, size / t_nginx_put / MiB, "nginx PUT", r >= 0.7))
        # rsync's first copy (context)
        t_rsync_first = timed(["rsync", "-a", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"])

        # 2. change 1 % (scattered 64 KiB patches) and re-sync
        rng = random.Random(2)
        fd = os.open(src, os.O_RDWR)
        changed = 0
        while changed < size // 100:
            off = rng.randrange(0, size - 65536)
            os.pwrite(fd, rng.randbytes(65536), off)
            changed += 65536
        os.close(fd)
        t_rsync = timed(["rsync", "-a", "--inplace", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"])
        t_nef_sync = timed([PY, "-m", "cli.main", "upload", "-q", str(src), "bench/file.bin"], env, REPO)
        results.append(("2 re-sync 1 % scattered", t_nef_sync, t_rsync, "rsync daemon", t_nef_sync < t_rsync))
        # contiguous 1 % change
        fd = os.open(src, os.O_RDWR)
        os.pwrite(fd, os.urandom(size // 100), size // 3)
        os.close(fd)
        t_rsync2 = timed(["rsync", "-a", "--inplace", str(src), f"rsync://127.0.0.1:{rport}/bench/file.bin"])
        t_nef_sync2 = timed([PY, "-m", "cli.main", "upload", "-q", str(src), "bench/file.bin"], env, REPO)
        results.append(("2b re-sync 1 % contiguous", t_nef_sync2, t_rsync2, "rsync daemon", t_nef_sync2 < t_rsync2))

        # 3. download (fresh target)
        timed(["curl", "-sS", "-f", "-T", str(src), f"http://127.0.0.1:{nport}/file.bin"])
        out_n = work / "dl-nginx.bin"
        out_b = work / "dl-nefeli.bin"
        t_nginx_get = timed(["curl", "-sS", "-f", "-o", str(out_n), f"http://127.0.0.1:{nport}/file.bin"])
        t_nef_get = timed([PY, "-m", "cli.main", "download", "-q", "bench/file.bin", str(out_b)], env, REPO)
        r3 = t_nginx_get / t_nef_get
        results.append(("3 download", size / t_nef_get / MiB, size / t_nginx_get / MiB, "nginx GET", r3 >= 0.7))
        out_n.unlink()
        out_b.unlink()

        # 4. 4 KiB PUT+GET with 32 clients
        base = f"{srv.url}/object-store/v1/{srv.account}/small"
        import urllib.request

        req = urllib.request.Request(base, method="PUT", headers={"X-Auth-Token": srv.token})
        urllib.request.urlopen(req).read()
        rps_nef = asyncio.run(small_requests(base, {"X-Auth-Token": srv.token}, 32, args.seconds))
        rps_nginx = asyncio.run(small_requests(f"http://127.0.0.1:{nport}/small", {}, 32, args.seconds))
        results.append(("4 4 KiB PUT+GET req/s, 32 clients", rps_nef, rps_nginx, "nginx", True))
    finally:
        for p in (nginx, rsyncd):
            p.terminate()
            p.wait()
        srv.stop()

    print(f"\n{'test':<36}{'nefeli':>12}{'baseline':>12}  {'ratio':>7}  goal")
    for name, mine, base_v, what, ok in results:
        if name.startswith("2"):
            print(f"{name:<36}{mine:>10.2f} s{base_v:>10.2f} s  {base_v / mine:>6.2f}×  faster than {what}: {'MET' if ok else 'MISSED'}")
        elif name.startswith("4"):
            print(f"{name:<36}{mine:>12.0f}{base_v:>12.0f}  {mine / base_v:>6.2f}×  (vs {what}, no goal)")
        else:
            print(f"{name:<36}{mine:>8.0f} MiB/s{base_v:>6.0f} MiB/s  {mine / base_v:>6.2f}×  ≥ 0.7× {what}: {'MET' if ok else 'MISSED'}")
    print(f"(rsync first full copy: {size / t_rsync_first / MiB:.0f} MiB/s, for context)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
