"""kamaki 0.16, the Pithos command-line client, unmodified, against a real nefeli-blockd.

kamaki runs only on Python 2.7: scripts/test-peers/compat.sh installs it into its
own virtualenv (/opt/nefeli-peers/kamaki).  Each test is one check of what a
Pithos user does with it; every kamaki command logs in first through
`POST /identity/v2.0/tokens` and finds the object store and astakos_account in
the catalog.  Two users: `demo` (the daemon's first account) and `bob`, each
with their own kamaki config in a temporary HOME.

Checks the server cannot pass yet are marked xfail(strict=True) with the reason:
the day the server does it, the check flips to a failure until the mark goes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from blockd_helpers import Daemon, start_daemon
from peers import require_program

KAMAKI = Path("/opt/nefeli-peers/kamaki/bin/kamaki")
MiB = 1024 * 1024

pytestmark = [pytest.mark.peer("kamaki")]


@dataclass
class Kamaki:
    """`kamaki ARGS` as one user: its own HOME holding its ~/.kamakirc."""

    home: Path
    user: str

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None, answer: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_", "PYTHON"))}
        env.update(HOME=str(self.home), LC_ALL="C.UTF-8")
        r = subprocess.run(
            [str(KAMAKI), "-k", *args], env=env, cwd=cwd or self.home, capture_output=True, text=True, timeout=300,
            input=answer or "",
        )
        if check:
            assert r.returncode == 0, f"kamaki {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def requests(self, *args: str) -> list[str]:
        """The `METHOD URL` lines of what kamaki sent (its -v trace)."""
        r = self.run("-v", *args)
        return re.findall(r"^> ([A-Z]+ \S+)", r.stdout + r.stderr, re.M)


@dataclass
class World:
    daemon: Daemon
    demo: Kamaki
    bob: Kamaki
    work: Path


def _configure(home: Path, url: str, token: str, user: str) -> Kamaki:
    home.mkdir(parents=True)
    k = Kamaki(home, user)
    k.run("config", "set", "cloud.default.url", url)
    k.run("config", "set", "cloud.default.token", token)
    return k


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not KAMAKI.exists():
        require_program(str(KAMAKI))  # skips, or fails under CI=true
    tmp = tmp_path_factory.mktemp("kamaki")
    d = start_daemon(tmp)
    url = f"http://127.0.0.1:{d.port}/identity/v2.0"
    bob_token = d.new_account("bob")
    w = World(d, _configure(tmp / "home-demo", url, d.token, "demo"), _configure(tmp / "home-bob", url, bob_token, "bob"),
              tmp / "work")
    w.work.mkdir()
    # Containers the checks use, made with sha256 blocks: kamaki hashes blocks
    # itself with the container's X-Container-Block-Hash through hashlib.
    c = d.client()
    for name in ("docs", "other"):
        assert c.put_container(name, scheme="sha256").status in (201, 202)
    assert d.client(bob_token, "bob").put_container("bobs", scheme="sha256").status in (201, 202)
    yield w
    d.stop_cleanly()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def pattern(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


# --- login and containers ------------------------------------------------------------


def test_login_user_info(world: World) -> None:
    out = world.demo.out("user", "info")
    assert "id: demo" in out


def test_container_create_list_info_delete(world: World) -> None:
    k = world.demo
    k.run("container", "create", "scratch", "--versioning", "none")
    assert "scratch" in k.out("container", "list")
    info = k.out("container", "info", "/scratch")
    assert "x-container-policy-versioning: none" in info.lower()
    k.run("container", "delete", "/scratch", "--yes")
    assert "scratch" not in k.out("container", "list").split()


def test_upload_into_container_with_server_default_hash(world: World) -> None:
    k = world.demo
    k.run("container", "create", "plain")
    src = write(world.work / "plain.bin", pattern(5 * MiB + 1, 9))
    k.run("file", "upload", str(src), "/plain/plain.bin")
    assert "x-container-block-hash: sha256" in k.out("container", "info", "/plain").lower()
    back = world.work / "plain.out"
    k.run("file", "download", "/plain/plain.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


# --- upload by hashes, download --------------------------------------------------------


def test_upload_by_hashes_then_again_sending_no_block(world: World) -> None:
    k = world.demo
    data = pattern(9 * MiB + 7, 1)  # three 4 MiB blocks
    src = write(world.work / "big.bin", data)
    first = k.requests("file", "upload", str(src), "/docs/big.bin")
    puts = [r for r in first if r.startswith("PUT ") and "hashmap" in r]
    posts = [r for r in first if r.startswith("POST ") and "/docs?update" in r]
    assert len(puts) == 2 and posts, first  # 409 with the missing blocks, their upload, the PUT again
    # the same content under another name: the hashmap PUT is enough, no block is sent
    again = k.requests("file", "upload", str(src), "/docs/big-again.bin")
    assert [r for r in again if r.startswith("PUT ") and "hashmap" in r]
    assert not [r for r in again if r.startswith("POST ") and "/object-store/" in r], again
    out = world.work / "big.out"
    k.run("file", "download", "/docs/big-again.bin", str(out))
    assert out.read_bytes() == data
    r = world.daemon.client().request("GET", "/object-store/v1/demo/docs/big.bin")
    assert r.status == 200 and r.body == data


def test_upload_unchunked_and_cat(world: World) -> None:
    k = world.demo
    src = write(world.work / "small.txt", b"hello kamaki\n")
    k.run("file", "upload", "--unchunked", str(src), "/docs/small.txt")
    assert k.out("file", "cat", "/docs/small.txt") == "hello kamaki\n"


def test_overwrite_requires_force(world: World) -> None:
    k = world.demo
    src = write(world.work / "ow.txt", b"one")
    k.run("file", "upload", str(src), "/docs/ow.txt")
    assert k.run("file", "upload", str(src), "/docs/ow.txt", check=False).returncode != 0
    write(src, b"two two")
    k.run("file", "upload", "-f", str(src), "/docs/ow.txt")
    assert k.out("file", "cat", "/docs/ow.txt") == "two two"


def test_download_range(world: World) -> None:
    k = world.demo
    write(world.work / "range.txt", b"0123456789")
    k.run("file", "upload", str(world.work / "range.txt"), "/docs/range.txt")
    out = world.work / "range.out"
    k.run("file", "download", "/docs/range.txt", str(out), "--range", "2-5")
    assert out.read_bytes() == b"2345"


# --- metadata, copy, move --------------------------------------------------------------


def test_metadata_add_and_delete(world: World) -> None:
    k = world.demo
    write(world.work / "m.txt", b"m")
    k.run("file", "upload", str(world.work / "m.txt"), "/docs/m.txt")
    k.run("file", "modify", "/docs/m.txt", "--metadata-add", "colour=blue")
    assert "x-object-meta-colour: blue" in k.out("file", "info", "/docs/m.txt").lower()
    k.run("file", "modify", "/docs/m.txt", "--metadata-del", "colour")
    assert "colour" not in k.out("file", "info", "/docs/m.txt").lower()


def test_copy_and_move_between_containers(world: World) -> None:
    k = world.demo
    write(world.work / "cp.txt", b"copy me")
    k.run("file", "upload", str(world.work / "cp.txt"), "/docs/cp.txt")
    k.run("file", "copy", "/docs/cp.txt", "/other/cp-copy.txt")
    k.run("file", "move", "/docs/cp.txt", "/other/cp-moved.txt")
    assert k.out("file", "cat", "/other/cp-copy.txt") == "copy me"
    assert k.out("file", "cat", "/other/cp-moved.txt") == "copy me"
    assert k.run("file", "info", "/docs/cp.txt", check=False).returncode != 0


# --- versions, append, truncate, overwrite ---------------------------------------------


def test_versions_list_and_old_version_download(world: World) -> None:
    k = world.demo
    src = world.work / "v.txt"
    write(src, b"version one")
    k.run("file", "upload", str(src), "/docs/v.txt")
    write(src, b"version two!")
    k.run("file", "upload", "-f", str(src), "/docs/v.txt")
    listing = k.out("file", "info", "/docs/v.txt", "--object-versions")
    found = re.findall(r"version_id: (\d+)", listing)
    assert len(found) >= 2, listing
    out = world.work / "v.out"
    k.run("file", "download", "/docs/v.txt", str(out), "--object-version", found[0])
    assert out.read_bytes() == b"version one"


def test_append(world: World) -> None:
    k = world.demo
    write(world.work / "ap.txt", b"head,")
    write(world.work / "ap2.txt", b"tail")
    k.run("file", "upload", str(world.work / "ap.txt"), "/docs/ap.txt")
    k.run("file", "append", str(world.work / "ap2.txt"), "/docs/ap.txt")
    assert k.out("file", "cat", "/docs/ap.txt") == "head,tail"


def test_truncate(world: World) -> None:
    k = world.demo
    write(world.work / "tr.txt", b"0123456789abcdefghijklmnopqrstuvwxyz")
    k.run("file", "upload", str(world.work / "tr.txt"), "/docs/tr.txt")
    k.run("file", "truncate", "/docs/tr.txt", "--size", "8")
    assert k.out("file", "cat", "/docs/tr.txt") == "01234567"


def test_overwrite_part(world: World) -> None:
    k = world.demo
    write(world.work / "ov.txt", b"0123456789")
    write(world.work / "patch.txt", b"ABC")
    k.run("file", "upload", str(world.work / "ov.txt"), "/docs/ov.txt")
    k.run("file", "overwrite", str(world.work / "patch.txt"), "/docs/ov.txt", "--from", "2", "--to", "4")
    assert k.out("file", "cat", "/docs/ov.txt") == "01ABC56789"


# --- sharing, publishing, quotas -------------------------------------------------------


def test_permissions_and_second_user_reads(world: World) -> None:
    demo, bob = world.demo, world.bob
    write(world.work / "shared.txt", b"for bob")
    demo.run("file", "upload", str(world.work / "shared.txt"), "/docs/shared.txt")
    assert bob.run("file", "cat", "-A", "demo", "/docs/shared.txt", check=False).returncode != 0
    demo.run("file", "modify", "/docs/shared.txt", "--read-permission", "bob")
    sharing = demo.out("file", "info", "/docs/shared.txt", "--sharing")
    assert "bob" in sharing
    assert bob.out("file", "cat", "-A", "demo", "/docs/shared.txt") == "for bob"


def test_sharer_list(world: World) -> None:
    demo, bob = world.demo, world.bob
    write(world.work / "s2.txt", b"x")
    demo.run("file", "upload", str(world.work / "s2.txt"), "/docs/s2.txt")
    demo.run("file", "modify", "/docs/s2.txt", "--read-permission", "bob")
    assert "demo" in bob.out("sharer", "list")


def test_publish_and_public_url(world: World) -> None:
    k = world.demo
    write(world.work / "pub.txt", b"public data")
    k.run("file", "upload", str(world.work / "pub.txt"), "/docs/pub.txt")
    url = k.out("file", "publish", "/docs/pub.txt").strip().splitlines()[-1].strip()
    assert "/public/" in url, url
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == b"public data"
    k.run("file", "unpublish", "/docs/pub.txt")


def test_quota_list(world: World) -> None:
    c = world.daemon.client()
    quota = 1 << 40
    assert c.request("POST", "/object-store/v1/demo", headers={"X-Account-Policy-Quota": str(quota)}).status == 202
    try:
        out = world.demo.out("quota", "list", "--bytes")
    finally:
        assert c.request("POST", "/object-store/v1/demo", headers={"X-Account-Policy-Quota": "0"}).status == 202
    assert "pithos.diskspace" in out and f"limit: {quota}" in out, out
    used = c.request("HEAD", "/object-store/v1/demo").h("x-account-bytes-used")
    assert f"usage: {used}" in out, out


# --- directories, listings -------------------------------------------------------------


def make_dir_tree(world: World, container: str) -> None:
    k = world.demo
    k.run("file", "mkdir", f"/{container}/dir")
    for name in ("dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "dirt.txt"):
        write(world.work / "l.txt", name.encode())
        k.run("file", "upload", str(world.work / "l.txt"), f"/{container}/{name}")


def test_mkdir(world: World) -> None:
    k = world.demo
    k.run("file", "mkdir", "/docs/made")
    assert "application/directory" in k.out("file", "info", "/docs/made").lower()


def test_listing_prefix_and_delimiter(world: World) -> None:
    k = world.demo
    k.run("container", "create", "lists")
    world.daemon.client().request("POST", "/object-store/v1/demo/lists", headers={"X-Container-Policy-Block-Hash": "sha256"})
    make_dir_tree(world, "lists")
    everything = k.out("file", "list", "/lists")
    assert all(n in everything for n in ("dir/a.txt", "dir/sub/c.txt", "dirt.txt")), everything
    prefixed = k.out("file", "list", "/lists/dir/")  # prefix=dir/
    assert "dir/a.txt" in prefixed and "dir/sub/c.txt" in prefixed and "dirt.txt" not in prefixed, prefixed
    one_level = k.out("file", "list", "/lists/dir/", "--delimiter", "/")
    assert "dir/a.txt" in one_level and "dir/b.txt" in one_level and "dir/sub/c.txt" not in one_level, one_level
    limited = k.out("file", "list", "/lists", "-n", "2")
    assert len([line for line in limited.splitlines() if line.strip()]) == 2, limited


def test_listing_by_path(world: World) -> None:
    make_dir_tree(world, "docs")
    r = world.daemon.client().request("GET", "/object-store/v1/demo/docs?path=dir&format=json")
    assert r.status == 200 and all("subdir" not in e for e in r.json()), r.body
    names = {e["name"] for e in r.json()}
    assert {"dir/a.txt", "dir/b.txt"} <= names and not any(n.startswith("dir/sub/") for n in names), names
    # kamaki's --name-prefix lists with path=: the objects directly under dir/
    out = world.demo.out("file", "list", "/docs", "--name-prefix", "dir/")
    assert "dir/a.txt" in out and "dir/b.txt" in out, out
    assert "dir/sub/c.txt" not in out and "dirt.txt" not in out, out


def test_recursive_upload_and_download(world: World) -> None:
    k = world.demo
    tree = world.work / "tree"
    files = {"t/one.txt": b"1", "t/two/three.txt": b"3" * 1000, "t/two/four.bin": pattern(MiB, 4)}
    for name, data in files.items():
        write(world.work / "tree" / name, data)
    k.run("file", "upload", "-r", str(tree / "t"), "/other/t", cwd=tree)
    c = world.daemon.client()
    for name, data in files.items():
        assert c.get("other", name).body == data
    back = world.work / "back"
    back.mkdir()
    k.run("file", "download", "-r", "/other/t", str(back / "t"))
    for name, data in files.items():
        assert (back / name).read_bytes() == data


def test_recursive_delete(world: World) -> None:
    k = world.demo
    k.run("file", "mkdir", "/other/gone")
    for name in ("gone/a", "gone/b/c"):
        write(world.work / "g.txt", b"g")
        k.run("file", "upload", str(world.work / "g.txt"), f"/other/{name}")
    # kamaki asks once more (it lists what is under the directory), --yes or not
    k.run("file", "delete", "-r", "/other/gone", "--yes", answer="y\n")
    assert "gone" not in k.out("file", "list", "/other")
    r = world.daemon.client().request("GET", "/object-store/v1/demo/other?prefix=gone&format=json")
    assert r.status in (200, 204) and not (r.body and r.json()), r.body
