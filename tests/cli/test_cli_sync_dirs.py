"""`nefeli sync` and directories: Pithos directory markers both ways, file/directory
collisions, symlinks, and names from the server that would leave DIR."""

from __future__ import annotations

import asyncio
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cli_support import CountingProxy, run_cli, server  # noqa: F401

DIRECTORY = "application/directory"


def call(  # noqa: F811
    server, method: str, cont: str, name: str | None = None, *, query: str = "",
    headers: dict[str, str] | None = None, data: bytes | None = None,
) -> tuple[int, bytes]:
    """One raw object-API request, for states the CLI would not create."""
    path = f"/object-store/v1/{server.account}/{urllib.parse.quote(cont, safe='')}"
    if name is not None:
        path += "/" + urllib.parse.quote(name, safe="/")
    req = urllib.request.Request(
        server.url + path + (f"?{query}" if query else ""), method=method, data=data,
        headers={"X-Auth-Token": server.token, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def listing(server, cont: str) -> dict[str, dict[str, Any]]:  # noqa: F811
    status, body = call(server, "GET", cont, query="format=json")
    return {e["name"]: e for e in json.loads(body)} if status == 200 else {}


def markers(server, cont: str) -> set[str]:  # noqa: F811
    return {n for n, e in listing(server, cont).items() if e["content_type"].split(";")[0] == DIRECTORY}


def put(server, cont: str, name: str, data: bytes = b"", content_type: str = "application/octet-stream") -> None:  # noqa: F811
    if call(server, "HEAD", cont)[0] == 404:
        call(server, "PUT", cont, data=b"")
    status, body = call(server, "PUT", cont, name, headers={"Content-Type": content_type}, data=data)
    assert status == 201, (status, body)


def local_state(root: Path) -> tuple[set[str], dict[str, bytes]]:
    """(directories, files → bytes) under root; a link shows as b"-> target", not followed."""
    dirs: set[str] = set()
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in dirnames + filenames:
            p = here / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                files[rel] = b"-> " + os.fsencode(os.readlink(p))
            elif p.is_dir():
                dirs.add(rel)
            else:
                files[rel] = p.read_bytes()
    return dirs, files


def make_tree(root: Path) -> None:
    (root / "empty").mkdir(parents=True)
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "sub dir" / "ünï cødé").mkdir(parents=True)
    (root / "sub dir" / "ünï cødé" / "fïle 1.txt").write_bytes(b"one")
    (root / "dossier vide" / "été").mkdir(parents=True)
    (root / "top.txt").write_bytes(b"top")
    (root / "zero").write_bytes(b"")


def test_directories_round_trip_and_resync_sends_nothing(server, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    make_tree(src)
    env = server.env()
    r = run_cli(["sync", str(src), "dirs/pre"], env, check=True)
    want = {"pre", "pre/empty", "pre/a", "pre/a/b", "pre/a/b/c", "pre/sub dir", "pre/sub dir/ünï cødé",
            "pre/dossier vide", "pre/dossier vide/été"}
    assert markers(server, "dirs") == want
    assert "mkdir pre/a/b/c" in r.stdout and "mkdir pre\n" in r.stdout
    objs = listing(server, "dirs")
    assert all(objs[m]["bytes"] == 0 for m in want)
    assert objs["pre/zero"]["content_type"].split(";")[0] != DIRECTORY

    # again: nothing created, uploaded or re-created
    with CountingProxy(server.port) as proxy:
        r = run_cli(["sync", str(src), "dirs/pre"], server.env(proxy.url), check=True)
    assert "mkdir" not in r.stdout and "upload" not in r.stdout, r.stdout
    assert "0 directories created" in r.stderr
    assert proxy.up < 16 * 1024, proxy.up
    again = listing(server, "dirs")
    assert {m: again[m]["x_object_version"] for m in want} == {m: objs[m]["x_object_version"] for m in want}

    # pull into a fresh directory: the same tree, empty directories included, no 0-byte stand-ins
    dst = tmp_path / "dst"
    r = run_cli(["sync", "--pull", str(dst), "dirs/pre"], env, check=True)
    assert local_state(dst) == local_state(src)
    r = run_cli(["sync", "--pull", str(dst), "dirs/pre"], env, check=True)
    assert "mkdir" not in r.stdout and "download" not in r.stdout

    # dry run: says, does not do
    (src / "new" / "deeper").mkdir(parents=True)
    r = run_cli(["sync", "-n", str(src), "dirs/pre"], env, check=True)
    assert "mkdir pre/new/deeper" in r.stdout
    assert "pre/new" not in markers(server, "dirs")


def test_markers_without_children_and_with_a_trailing_slash(server, tmp_path):  # noqa: F811
    """Markers made by other Pithos/Swift clients: 'lone/marker' with nothing under it,
    and 'slashy/' (trailing slash) both become directories, never files."""
    put(server, "foreign", "lone/marker", content_type=DIRECTORY)
    put(server, "foreign", "slashy/", content_type=DIRECTORY)
    put(server, "foreign", "folder", content_type="application/folder")
    put(server, "foreign", "lone/f.txt", b"f")
    dst = tmp_path / "d"
    r = run_cli(["sync", "--pull", str(dst), "foreign"], server.env(), check=True)
    assert local_state(dst) == ({"lone", "lone/marker", "slashy", "folder"}, {"lone/f.txt": b"f"}), r.stdout
    # pushing the same tree back makes no marker for what already has one
    r = run_cli(["sync", str(dst), "foreign"], server.env(), check=True)
    assert "mkdir lone\n" in r.stdout
    assert "mkdir lone/marker" not in r.stdout and "mkdir slashy" not in r.stdout and "mkdir folder" not in r.stdout


def test_delete_removes_markers_and_empty_directories(server, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    (src / "keep" / "inner").mkdir(parents=True)
    (src / "gone" / "deeper").mkdir(parents=True)
    (src / "gone" / "f").write_bytes(b"f")
    env = server.env()
    run_cli(["sync", str(src), "del"], env, check=True)
    assert markers(server, "del") == {"keep", "keep/inner", "gone", "gone/deeper"}
    dst = tmp_path / "dst"
    run_cli(["sync", "--pull", str(dst), "del"], env, check=True)

    # push --delete: the removed directory's marker, its child's, and its file go
    put(server, "del", "odd//name", b"no local file can be called this")
    (src / "gone" / "f").unlink()
    (src / "gone" / "deeper").rmdir()
    (src / "gone").rmdir()
    r = run_cli(["sync", "--delete", str(src), "del"], env, check=True)
    assert "rmdir gone/deeper" in r.stdout and "rmdir gone\n" in r.stdout
    assert r.stdout.index("rmdir gone/deeper") < r.stdout.index("rmdir gone\n")  # children first
    assert "delete odd//name" in r.stdout
    assert set(listing(server, "del")) == {"keep", "keep/inner"}

    # pull --delete: local directories with no marker go, deepest first; one holding a link stays
    (dst / "stray" / "empty").mkdir(parents=True)
    (dst / "linked").mkdir()
    os.symlink("/nonexistent", dst / "linked" / "ln")
    r = run_cli(["sync", "--pull", "--delete", str(dst), "del"], env, check=True)
    assert "delete" in r.stdout and not (dst / "gone").exists() and not (dst / "stray").exists()
    assert (dst / "linked" / "ln").is_symlink() and "keep " in r.stdout
    assert local_state(dst)[0] == {"keep", "keep/inner", "linked"}


def test_push_collisions_are_conflicts(server, tmp_path):  # noqa: F811
    put(server, "pc", "x", content_type=DIRECTORY)  # a directory there, a file here
    put(server, "pc", "y", b"remote y")  # a file there, a directory here
    put(server, "pc", "z/inner", b"remote z")  # objects under z, a file z here
    src = tmp_path / "src"
    (src / "y" / "child").mkdir(parents=True)
    (src / "y" / "child" / "f").write_bytes(b"f")
    (src / "x").write_bytes(b"local x")
    (src / "z").write_bytes(b"local z")
    (src / "fine").mkdir()
    before = listing(server, "pc")
    r = run_cli(["sync", "--delete", str(src), "pc"], server.env())
    assert r.returncode == 1
    assert "conflict x: a file here, a directory on the server" in r.stdout
    assert "conflict y: a directory here, a file on the server" in r.stdout
    assert "conflict z: a file here, a directory on the server" in r.stdout
    assert "3 conflict(s)" in r.stderr
    after = listing(server, "pc")
    assert set(after) == set(before) | {"fine"}  # nothing under y pushed, nothing deleted
    assert all(after[n]["x_object_version"] == before[n]["x_object_version"] for n in before)


def test_pull_collisions_are_conflicts_and_links_are_not_followed(server, tmp_path):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    put(server, "plc", "m", content_type=DIRECTORY)  # a directory there, a file here
    put(server, "plc", "f", b"remote f")  # a file there, a directory here
    put(server, "plc", "p/q", b"remote q")  # under p there, p is a file here
    put(server, "plc", "ln/evil", b"through the link")  # under ln there, ln links outside here
    put(server, "plc", "lnfile", b"onto the link")  # a file there, a link here
    put(server, "plc", "ok", b"fine")
    dst = tmp_path / "dst"
    (dst / "f").mkdir(parents=True)
    (dst / "f" / "mine").write_bytes(b"mine")
    (dst / "m").write_bytes(b"local m")
    (dst / "p").write_bytes(b"local p")
    os.symlink(outside, dst / "ln")
    os.symlink(outside / "target", dst / "lnfile")
    r = run_cli(["sync", "--pull", "--delete", str(dst), "plc"], server.env())
    assert r.returncode == 1
    assert f"conflict m: a directory on the server, {dst / 'm'} is a file here" in r.stdout
    assert f"conflict f: a file on the server, {dst / 'f'} is a directory here" in r.stdout
    assert f"conflict p/q: {dst / 'p'} is a file here, a directory on the server" in r.stdout
    assert f"conflict ln/evil: {dst / 'ln'} is a symlink (sync never follows one) here" in r.stdout
    assert f"conflict lnfile: a file on the server, {dst / 'lnfile'} is a symlink here" in r.stdout
    assert list(outside.iterdir()) == []
    assert (dst / "m").read_bytes() == b"local m" and (dst / "p").read_bytes() == b"local p"
    assert (dst / "f" / "mine").read_bytes() == b"mine"  # not deleted under a conflict
    assert (dst / "ok").read_bytes() == b"fine"


def test_hostile_names_from_the_server_are_refused(server, tmp_path):  # noqa: F811
    """A server (or a proxy) listing names that would land outside DIR: each is an error
    naming the object, nothing is written outside DIR, the rest of the tree still comes."""
    from cli.client import Client
    from cli.config import Config
    from cli.sync import run_sync

    put(server, "evil", "pre/good/file", b"good")
    root = tmp_path / "box" / "root"
    hostile = [
        {"name": "pre/../escaped", "bytes": 4, "content_type": "text/plain", "hash": "00"},
        {"name": "pre/good/../../escaped2", "bytes": 4, "content_type": "text/plain", "hash": "00"},
        {"name": "pre//etc/passwd", "bytes": 4, "content_type": "text/plain", "hash": "00"},
        {"name": "pre/../escaped-dir", "bytes": 0, "content_type": DIRECTORY, "hash": "00"},
        {"name": "elsewhere/x", "bytes": 1, "content_type": "text/plain", "hash": "00"},
    ]
    fetched: list[str] = []

    async def go() -> Any:
        async with Client(Config(server.url, server.token, server.account)) as c:
            real_list, real_map = c.list_objects, c.get_hashmap

            async def list_with_hostile(*a: Any, **kw: Any) -> list[dict[str, Any]]:
                return [*await real_list(*a, **kw), *hostile]

            async def recording_map(cont: str, name: str) -> Any:
                fetched.append(name)
                return await real_map(cont, name)

            c.list_objects = list_with_hostile  # type: ignore[method-assign]
            c.get_hashmap = recording_map  # type: ignore[method-assign]
            out = io.StringIO()
            return await run_sync(c, root, "evil", "pre", pull=True, out=out), out.getvalue()

    rep, text = asyncio.run(go())
    assert rep.errors == len(hostile) and rep.downloaded == 1, text
    assert f"error pre/../escaped: unsafe name from the server ('..' segment), refused: nothing is written outside {root}" in text
    assert "error pre//etc/passwd: unsafe name from the server (absolute path)" in text
    assert "error pre/../escaped-dir: unsafe name from the server ('..' segment)" in text
    assert "error elsewhere/x: unsafe name from the server (not under the prefix 'pre/')" in text
    assert fetched == ["pre/good/file"]
    assert local_state(tmp_path / "box") == ({"root", "root/good"}, {"root/good/file": b"good"})


def test_marker_made_meanwhile_is_never_overwritten(server, tmp_path):  # noqa: F811
    """Between the listing and the marker PUT someone creates the name: as a directory
    marker it is as good as ours; as a file it is a conflict and stays a file."""
    from cli.client import Client
    from cli.config import Config
    from cli.sync import run_sync

    src = tmp_path / "src"
    (src / "as dir").mkdir(parents=True)
    (src / "as file").mkdir()

    async def go() -> Any:
        async with Client(Config(server.url, server.token, server.account)) as c:
            real_list = c.list_objects

            async def listing_then_create(*a: Any, **kw: Any) -> list[dict[str, Any]]:
                items = await real_list(*a, **kw)
                put(server, "race", "as dir", content_type=DIRECTORY)
                put(server, "race", "as file", b"theirs")
                return items

            c.list_objects = listing_then_create  # type: ignore[method-assign]
            out = io.StringIO()
            return await run_sync(c, src, "race", "", out=out), out.getvalue()

    rep, text = asyncio.run(go())
    assert rep.conflicts == 1 and rep.dirs_created == 0 and rep.errors == 0, text
    assert "conflict as file: a directory here, created on the server meanwhile as a file" in text
    objs = listing(server, "race")
    assert objs["as file"]["bytes"] == 6 and objs["as dir"]["content_type"].split(";")[0] == DIRECTORY
