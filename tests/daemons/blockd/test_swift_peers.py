"""Real Swift clients against nefeli-blockd: python-swiftclient (the `swift` command and the
library) and rclone's swift backend.  Upload, list, download, delete and compare checksums of
a tree with 0-byte files, names with spaces and unicode, and a 100 MiB file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from peers import require_program
from cli_support import run_cli, server, write_random  # noqa: F401

MiB = 1024 * 1024


def make_tree(root: Path, big: bool) -> dict[str, str]:
    write_random(root / "plain.txt", 1000, seed=1)
    (root / "empty").write_bytes(b"")
    write_random(root / "with space" / "a file.bin", 5 * MiB + 3, seed=2)
    write_random(root / "ünïcødé" / "δοκιμή €.txt", 77, seed=3)
    (root / "ünïcødé" / "zero len").write_bytes(b"")
    if big:
        write_random(root / "big.bin", 100 * MiB, seed=4)
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def md5_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def storage_url(server) -> str:  # noqa: F811
    return f"{server.url}/v1/{server.account}"


def _swift_key(server) -> tuple[str, str]:  # noqa: F811
    from storage_engine.objects.metadata import SyncMetadataStore

    with SyncMetadataStore(server.data / "meta.db") as md:
        key = md.tokens.set_key("tester", server.account, "a-long-enough-test-key")
    return "tester", key


def swift_env(server, **extra: str) -> dict[str, str]:  # noqa: F811
    """The environment of a peer command on the server's storage URL and token."""
    env = {**os.environ, "OS_STORAGE_URL": storage_url(server), "OS_AUTH_TOKEN": server.token, **extra}
    env.pop("ST_AUTH", None)
    return env


def runner(program: str, env: dict[str, str], *, stderr: bool = False) -> Callable[..., str]:
    """`program ARGS...` in `env`, failing the test on a non-zero exit; its stdout
    (and stderr, where the test looks at what the command reports there)."""

    def run(*args: str, cwd: Path | None = None) -> str:
        r = subprocess.run([program, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{Path(program).name} {' '.join(args)} → {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout + (r.stderr if stderr else "")

    return run


def swift_program() -> str:
    return require_program("swift")["swift"] if _on_path("swift") else _venv_swift()


@pytest.mark.peer("swift")
@pytest.mark.slow
def test_swift_command_tree(server, tmp_path):  # noqa: F811
    sw = runner(swift_program(), swift_env(server))
    src = tmp_path / "src"
    sums = make_tree(src, big=True)

    # relative paths so object names are the tree's names; swift checks ETag = MD5
    sw("upload", "--object-threads", "4", "swcont", *sorted(sums), cwd=src)
    listed = set(sw("list", "swcont").splitlines())
    assert listed == set(sums), listed ^ set(sums)
    dst = tmp_path / "dst"
    dst.mkdir()
    sw("download", "swcont", cwd=dst)  # verifies MD5 of every body against its ETag
    got = md5_tree(dst / "swcont") if (dst / "swcont").is_dir() else md5_tree(dst)
    assert got == sums
    stat = sw("stat", "swcont", "plain.txt")
    assert sums["plain.txt"] in stat  # ETag shown by swift stat
    sw("delete", "swcont", "empty", "with space/a file.bin")
    assert set(sw("list", "swcont").splitlines()) == set(sums) - {"empty", "with space/a file.bin"}
    sw("delete", "swcont")
    assert "swcont" not in sw("list").split()


def _on_path(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


def _venv_swift() -> str:
    p = Path(sys.executable).parent / "swift"
    if not p.exists():
        require_program("swift")
    return str(p)


def test_swiftclient_library(server, tmp_path):  # noqa: F811
    swiftclient = pytest.importorskip("swiftclient", reason="python-swiftclient not installed (pip install .[test])")
    user, key = _swift_key(server)
    conn = swiftclient.Connection(authurl=f"{server.url}/auth/v1.0", user=user, key=key, auth_version="1", retries=0)
    conn.put_container("libcont")
    blobs = {"a b/ç.txt": b"hello", "empty": b"", "blk": os.urandom(5 * MiB + 1)}
    for name, data in blobs.items():
        etag = conn.put_object("libcont", name, contents=data)
        assert etag == hashlib.md5(data).hexdigest(), (name, etag)
    _, listing = conn.get_container("libcont")
    assert {o["name"]: o["bytes"] for o in listing} == {n: len(d) for n, d in blobs.items()}
    for o in listing:
        assert o["hash"] == hashlib.md5(blobs[o["name"]]).hexdigest(), o
    for name, data in blobs.items():
        headers, body = conn.get_object("libcont", name)
        assert body == data and headers["etag"].strip('"') == hashlib.md5(data).hexdigest()
    conn.delete_object("libcont", "blk")
    with pytest.raises(swiftclient.ClientException) as exc:
        conn.head_object("libcont", "blk")
    assert exc.value.http_status == 404


@pytest.mark.peer("rclone")
@pytest.mark.slow
def test_rclone_tree(server, tmp_path):  # noqa: F811
    rclone = require_program("rclone")["rclone"]
    src = tmp_path / "src"
    sums = make_tree(src, big=True)
    user, key = _swift_key(server)
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_NEF_TYPE": "swift",
        "RCLONE_CONFIG_NEF_AUTH": f"{server.url}/auth/v1.0",
        "RCLONE_CONFIG_NEF_USER": user,
        "RCLONE_CONFIG_NEF_KEY": key,
        "RCLONE_CONFIG_NEF_AUTH_VERSION": "1",
        "RCLONE_CONFIG_TOK_TYPE": "swift",
        "RCLONE_CONFIG_TOK_STORAGE_URL": storage_url(server),
        "RCLONE_CONFIG_TOK_AUTH_TOKEN": server.token,
    }

    rc = runner(rclone, env)

    rc("copy", str(src), "nef:rccont")  # checks MD5 after upload
    names = set(rc("lsf", "-R", "--files-only", "nef:rccont").splitlines())
    assert names == set(sums)
    md5s = dict(reversed(line.split("  ", 1)) for line in rc("md5sum", "tok:rccont").splitlines())
    assert md5s == sums
    rc("check", str(src), "nef:rccont")
    dst = tmp_path / "dst"
    rc("copy", "tok:rccont", str(dst))
    assert md5_tree(dst) == sums
    rc("delete", "nef:rccont/with space")
    assert "with space/a file.bin" not in rc("lsf", "-R", "tok:rccont")
    rc("purge", "nef:rccont")
    assert "rccont" not in rc("lsd", "tok:")


@pytest.mark.peer("swift")
def test_swift_command_slo(server, tmp_path):  # noqa: F811
    """`swift upload --use-slo -S`: segments in <container>_segments, one SLO manifest;
    download checks the bytes; re-upload and delete clean up the old segments."""
    sw = runner(swift_program(), swift_env(server), stderr=True)
    src = tmp_path / "src"
    write_random(src / "large.bin", 5 * MiB + 12345, seed=5)
    want = hashlib.md5((src / "large.bin").read_bytes()).hexdigest()

    sw("upload", "--use-slo", "-S", str(MiB), "slocont", "large.bin", cwd=src)
    segments = sw("list", "slocont_segments").split()
    assert len(segments) == 6 and all(s.startswith("large.bin/slo/") for s in segments), segments
    stat = sw("stat", "slocont", "large.bin")
    assert "Content Length: " + str(5 * MiB + 12345) in stat, stat
    dst = tmp_path / "dst"
    dst.mkdir()
    sw("download", "slocont", "large.bin", cwd=dst)
    assert hashlib.md5((dst / "large.bin").read_bytes()).hexdigest() == want
    # a new upload with other segments replaces the manifest and deletes the old segments
    write_random(src / "large.bin", 3 * MiB + 1, seed=6)
    want = hashlib.md5((src / "large.bin").read_bytes()).hexdigest()
    sw("upload", "--use-slo", "-S", str(2 * MiB), "slocont", "large.bin", cwd=src)
    segments = sw("list", "slocont_segments").split()
    assert len(segments) == 2, segments
    sw("download", "slocont", "large.bin", "-o", str(dst / "again.bin"))
    assert hashlib.md5((dst / "again.bin").read_bytes()).hexdigest() == want
    # `swift copy` of an SLO makes a plain object of the joined segments: its ETag is the
    # MD5 of the bytes, which `swift download` then checks
    sw("copy", "-d", "/slocont/copy.bin", "slocont", "large.bin")
    assert "Static-Large-Object: True" in sw("stat", "slocont", "large.bin")
    stat = sw("stat", "slocont", "copy.bin")
    assert "ETag: " + want in stat and "Static-Large-Object" not in stat, stat
    sw("download", "slocont", "copy.bin", "-o", str(dst / "copy.bin"))
    assert hashlib.md5((dst / "copy.bin").read_bytes()).hexdigest() == want
    sw("delete", "slocont", "large.bin")  # ?multipart-manifest=delete: the segments go too
    assert sw("list", "slocont_segments").split() == []
    assert sw("list", "slocont").split() == ["copy.bin"]


def test_swiftclient_library_slo(server, tmp_path):  # noqa: F811
    swiftclient = pytest.importorskip("swiftclient", reason="python-swiftclient not installed (pip install .[test])")
    import json

    user, key = _swift_key(server)
    conn = swiftclient.Connection(authurl=f"{server.url}/auth/v1.0", user=user, key=key, auth_version="1", retries=0)
    conn.put_container("libslo")
    conn.put_container("libslo_segments")
    parts = [os.urandom(MiB + 7), os.urandom(MiB), os.urandom(99)]
    manifest = []
    for i, p in enumerate(parts):
        etag = conn.put_object("libslo_segments", f"big/{i:08d}", contents=p)
        manifest.append({"path": f"/libslo_segments/big/{i:08d}", "etag": etag, "size_bytes": len(p)})
    got: dict = {}
    conn.put_object(
        "libslo", "big", contents=json.dumps(manifest), query_string="multipart-manifest=put", response_dict=got
    )
    assert got["status"] == 201
    slo_etag = hashlib.md5("".join(hashlib.md5(p).hexdigest() for p in parts).encode()).hexdigest()
    assert got["headers"]["etag"] == f'"{slo_etag}"'
    headers, body = conn.get_object("libslo", "big")
    data = b"".join(parts)
    assert body == data and headers["x-static-large-object"] == "True"
    assert int(headers["content-length"]) == len(data)
    headers, body = conn.get_object("libslo", "big", headers={"Range": f"bytes={MiB}-{MiB + 20}"})
    assert body == data[MiB : MiB + 21]
    _, stored = conn.get_object("libslo", "big", query_string="multipart-manifest=get")
    assert [e["name"] for e in json.loads(stored)] == [m["path"] for m in manifest]
    with pytest.raises(swiftclient.ClientException) as exc:
        bad = [{**manifest[0], "size_bytes": 1}]
        conn.put_object("libslo", "bad", contents=json.dumps(bad), query_string="multipart-manifest=put")
    assert exc.value.http_status == 400
    conn.delete_object("libslo", "big", query_string="multipart-manifest=delete")
    assert conn.get_container("libslo_segments")[1] == []
    assert conn.get_container("libslo")[1] == []


@pytest.mark.peer("swift", "rclone")
def test_swift_clients_check_objects_the_nefeli_client_uploaded(server, tmp_path):  # noqa: F811
    """`nefeli sync` stores files from their block hashes (hashmap PUT), so the server
    never sees the bytes in order; their MD5 is computed afterwards in the background.
    Then `swift download` checks each file against its ETag and `rclone check` compares
    the listing's hashes with the local MD5s."""
    rclone = require_program("rclone")["rclone"]
    src = tmp_path / "src"
    sums = make_tree(src, big=False)
    run_cli(["sync", str(src), "hashed"], server.env(), check=True)
    deadline = time.monotonic() + 60
    while server.metric("nefeli_blockd_md5_backfill_pending") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    rc = runner(rclone, swift_env(
        server,
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_TOK_TYPE="swift",
        RCLONE_CONFIG_TOK_STORAGE_URL=storage_url(server),
        RCLONE_CONFIG_TOK_AUTH_TOKEN=server.token,
    ))
    sw = runner(swift_program(), swift_env(server))
    md5s = dict(reversed(line.split("  ", 1)) for line in rc("md5sum", "tok:hashed").splitlines())
    assert md5s == sums
    rc("check", str(src), "tok:hashed")
    stat = sw("stat", "hashed", "with space/a file.bin")
    assert "ETag: " + sums["with space/a file.bin"] in stat, stat
    dst = tmp_path / "dst"
    dst.mkdir()
    sw("download", "hashed", cwd=dst)  # fails on an ETag that is not the MD5 of the bytes
    assert md5_tree(dst) == sums


@pytest.mark.peer("swift")
def test_swift_command_slo_ranges_and_data(server, tmp_path):  # noqa: F811
    """An SLO made of segment ranges and inline data (PUT with the library): `swift stat`
    shows its size, `swift download` reads it whole (it checks the byte count against
    Content-Length; for an SLO it does not compare the ETag with an MD5), and `swift delete`
    removes the ranged segments with ?multipart-manifest=delete, skipping the data segments."""
    swiftclient = pytest.importorskip("swiftclient", reason="python-swiftclient not installed (pip install .[test])")
    import base64
    import json

    swift = swift_program()
    user, key = _swift_key(server)
    conn = swiftclient.Connection(authurl=f"{server.url}/auth/v1.0", user=user, key=key, auth_version="1", retries=0)
    conn.put_container("rdslo")
    conn.put_container("rdslo_segments")
    a, b = os.urandom(MiB + 5), os.urandom(3 * MiB)
    ea = conn.put_object("rdslo_segments", "a", contents=a)
    eb = conn.put_object("rdslo_segments", "b", contents=b)
    manifest = [
        {"path": "/rdslo_segments/a", "etag": ea, "size_bytes": len(a), "range": "5-"},
        {"data": base64.b64encode(b"\n--interstitial--\n").decode()},
        {"path": "/rdslo_segments/b", "etag": eb, "size_bytes": len(b), "range": f"{MiB}-{2 * MiB - 1}"},
        {"path": "/rdslo_segments/a", "range": "-3"},
    ]
    got: dict = {}
    conn.put_object(
        "rdslo", "mixed", contents=json.dumps(manifest), query_string="multipart-manifest=put", response_dict=got
    )
    assert got["status"] == 201
    want = a[5:] + b"\n--interstitial--\n" + b[MiB : 2 * MiB] + a[-3:]
    parts = [f"{ea}:5-{len(a) - 1};", hashlib.md5(b"\n--interstitial--\n").hexdigest(), f"{eb}:{MiB}-{2 * MiB - 1};",
             f"{ea}:{len(a) - 3}-{len(a) - 1};"]
    assert got["headers"]["etag"] == '"%s"' % hashlib.md5("".join(parts).encode()).hexdigest()
    headers, body = conn.get_object("rdslo", "mixed", headers={"Range": f"bytes={MiB - 10}-{MiB + 20}"})
    assert body == want[MiB - 10 : MiB + 21]

    sw = runner(swift, swift_env(server), stderr=True)

    assert "Content Length: " + str(len(want)) in sw("stat", "rdslo", "mixed")
    sw("download", "rdslo", "mixed", "-o", str(tmp_path / "mixed.bin"))
    assert (tmp_path / "mixed.bin").read_bytes() == want
    sw("delete", "rdslo", "mixed")
    assert sw("list", "rdslo_segments").split() == [] and sw("list", "rdslo").split() == []


@pytest.mark.peer("swift")
def test_swift_capabilities_choose_slo_for_segmented_uploads(server, tmp_path):  # noqa: F811
    """`swift capabilities` reads /info; with `slo` listed there, `swift upload -S`
    (no --use-slo) makes a static large object, and `--use-dlo` a dynamic one."""
    sw = runner(swift_program(), swift_env(server))

    caps = sw("capabilities")
    assert "slo" in caps and "max_manifest_segments: 1000" in caps, caps
    src = tmp_path / "src"
    data = write_random(src / "seg.bin", 3 * MiB + 5, seed=9)
    sw("upload", "-S", str(MiB), "capcont", "seg.bin", cwd=src)
    assert "Static-Large-Object: True" in sw("stat", "capcont", "seg.bin")
    sw("upload", "-S", str(MiB), "--use-dlo", "--object-name", "dlo.bin", "capcont", "seg.bin", cwd=src)
    assert "Manifest: capcont_segments/dlo.bin/" in sw("stat", "capcont", "dlo.bin")
    dst = tmp_path / "dst"
    dst.mkdir()
    sw("download", "capcont", "seg.bin", "dlo.bin", cwd=dst)
    assert (dst / "seg.bin").read_bytes() == data == (dst / "dlo.bin").read_bytes()
