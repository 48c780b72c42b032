"""`nefeli upload` / `download` against a real nefeli-blockd on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from cli_support import PY, REPO, CountingProxy, run_cli, server, write_random  # noqa: F401

BS = 4 * 1024 * 1024


def _container(server, name: str, scheme: str | None = None, block_size: int | None = None) -> str:  # noqa: F811
    import urllib.request

    req = urllib.request.Request(f"{server.url}/object-store/v1/{server.account}/{name}", method="PUT")
    req.add_header("X-Auth-Token", server.token)
    if scheme:
        req.add_header("X-Container-Policy-Block-Hash", scheme)
    if block_size:
        req.add_header("X-Container-Policy-Block-Size", str(block_size))
    with urllib.request.urlopen(req) as r:
        assert r.status == 201
    return name


@pytest.mark.parametrize("scheme", ["blake3", "sha256"])
@pytest.mark.parametrize(
    "size", [0, 1, 65536, 65536 * 4, 65536 * 4 + 1, 65536 * 7 - 3, 3 * 1000 * 1000 + 7]
)
def test_round_trip(server, tmp_path, scheme, size):  # noqa: F811
    cont = _container(server, f"rt-{scheme}-{size}", scheme, 65536)
    src = tmp_path / "src.bin"
    data = write_random(src, size, seed=size)
    run_cli(["upload", str(src), f"{cont}/obj-{size}"], server.env(), check=True)
    dst = tmp_path / "dst.bin"
    run_cli(["download", f"{cont}/obj-{size}", str(dst)], server.env(), check=True)
    assert dst.read_bytes() == data
    assert not list(tmp_path.glob(".*nefeli-part"))


@pytest.mark.parametrize("scheme", ["blake3", "sha256"])
def test_zero_blocks_and_zero_tail(server, tmp_path, scheme):  # noqa: F811
    cont = _container(server, f"zero-{scheme}", scheme, 65536)
    src = tmp_path / "z"
    data = bytes(65536 * 3) + b"abc" + bytes(65536 * 2) + b"x" + bytes(100)
    src.write_bytes(data)
    run_cli(["upload", str(src), f"{cont}/z"], server.env(), check=True)
    dst = tmp_path / "d"
    run_cli(["download", f"{cont}/z", str(dst)], server.env(), check=True)
    assert dst.read_bytes() == data
    # all zeros, not a multiple of the block size
    src.write_bytes(bytes(65536 * 2 + 5))
    run_cli(["upload", str(src), f"{cont}/allzero"], server.env(), check=True)
    run_cli(["download", f"{cont}/allzero", str(dst)], server.env(), check=True)
    assert dst.read_bytes() == bytes(65536 * 2 + 5)


def test_tens_of_mib_default_blocks(server, tmp_path):  # noqa: F811
    src = tmp_path / "big"
    data = write_random(src, 40 * 1024 * 1024 + 12345, seed=7)
    with CountingProxy(server.port) as proxy:
        run_cli(["upload", str(src), "big/file"], server.env(proxy.url), check=True)
        assert len(data) <= proxy.up < len(data) * 1.02
        proxy.reset()
        run_cli(["upload", str(src), "big/file"], server.env(proxy.url), check=True)
        assert proxy.up < 64 * 1024  # nothing to send the second time
        proxy.reset()
        dst = tmp_path / "out"
        run_cli(["download", "big/file", str(dst)], server.env(proxy.url), check=True)
        assert dst.read_bytes() == data
        assert proxy.down >= len(data)


def test_download_fetches_only_changed_blocks(server, tmp_path):  # noqa: F811
    cont = _container(server, "partial", "blake3", 65536)
    src = tmp_path / "v1"
    data = bytearray(write_random(src, 65536 * 64 + 100, seed=3))
    run_cli(["upload", str(src), f"{cont}/f"], server.env(), check=True)
    local = tmp_path / "local"
    run_cli(["download", f"{cont}/f", str(local)], server.env(), check=True)
    # change three blocks remotely
    for blk in (0, 17, 64):
        data[blk * 65536] ^= 0xFF
    src.write_bytes(bytes(data))
    run_cli(["upload", str(src), f"{cont}/f"], server.env(), check=True)
    with CountingProxy(server.port) as proxy:
        r = run_cli(["download", f"{cont}/f", str(local)], server.env(proxy.url), check=True)
    assert local.read_bytes() == bytes(data)
    changed = 65536 * 2 + 100
    assert proxy.down < changed + 64 * 1024, (proxy.down, r.stderr)
    # a local file that is longer, or shorter, than the object
    local.write_bytes(bytes(data) + b"tail" * 70000)
    run_cli(["download", f"{cont}/f", str(local)], server.env(), check=True)
    assert local.read_bytes() == bytes(data)
    local.write_bytes(bytes(data[:1000]))
    run_cli(["download", f"{cont}/f", str(local)], server.env(), check=True)
    assert local.read_bytes() == bytes(data)


def test_resumable_upload(server, tmp_path):  # noqa: F811
    """Interrupt an upload after some blocks; the second run sends only the rest."""
    src = tmp_path / "resume"
    size = 48 * 1024 * 1024
    data = write_random(src, size, seed=11)
    # The proxy stops forwarding after a third of the file, so the first run cannot
    # finish, however fast or slow the machine is; it is interrupted while held there.
    with CountingProxy(server.port, cut_up_after=size // 3) as proxy:
        env = {**os.environ, **server.env(proxy.url), "XDG_CONFIG_HOME": "/nonexistent"}
        p = subprocess.Popen(
            [PY, "-m", "cli.main", "upload", "--parallel", "1", str(src), "resume/obj"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert proxy.held.wait(60), "the upload never reached the cut"
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
        first = proxy.up
        assert p.returncode != 0, "the upload finished before it could be interrupted"
        proxy.reset()
        run_cli(["upload", str(src), "resume/obj"], server.env(proxy.url), check=True)
        second = proxy.up
    # blocks completed in the first run are not sent again (a POST cut halfway is)
    assert second < size - first + 4 * BS + 64 * 1024, (first, second)
    assert first + second < size + 5 * BS
    dst = tmp_path / "back"
    run_cli(["download", "resume/obj", str(dst)], server.env(), check=True)
    assert dst.read_bytes() == data


def test_download_verifies_and_keeps_old_file_on_error(server, tmp_path):  # noqa: F811
    dst = tmp_path / "keep"
    dst.write_bytes(b"old contents")
    r = run_cli(["download", "nosuchcont/nosuchobj", str(dst)], server.env())
    assert r.returncode != 0
    assert "404" in r.stderr and "Traceback" not in r.stderr
    assert dst.read_bytes() == b"old contents"
    assert not list(tmp_path.glob(".*nefeli-part"))


@pytest.mark.slow
def test_sync_efficiency_256mib_one_percent(server, tmp_path):  # noqa: F811
    """After a 256 MiB upload, changing 1 % of it sends at most 1.1 × the changed blocks' bytes."""
    size = 256 * 1024 * 1024
    src = tmp_path / "huge"
    data = bytearray(os.urandom(size))
    src.write_bytes(data)
    run_cli(["upload", "-q", str(src), "eff/huge"], server.env(), check=True)
    # change 1 % of the bytes: scattered 4 KiB patches at random offsets
    import random

    rng = random.Random(5)
    changed = set()
    patched = 0
    while patched < size // 100:
        off = rng.randrange(0, size - 4096)
        data[off : off + 4096] = os.urandom(4096)
        changed.update({off // BS, (off + 4095) // BS})
        patched += 4096
    # 1 % of bytes in random patches touches most 4 MiB blocks; also test the contiguous case
    src.write_bytes(data)
    with CountingProxy(server.port) as proxy:
        run_cli(["upload", "-q", str(src), "eff/huge"], server.env(proxy.url), check=True)
        changed_bytes = sum(min(BS, size - b * BS) for b in changed)
        assert proxy.up <= 1.1 * changed_bytes, (proxy.up, changed_bytes)
        # contiguous 1 % change
        off = size // 2 + 12345
        data[off : off + size // 100] = os.urandom(size // 100)
        src.write_bytes(data)
        blocks = set(range(off // BS, (off + size // 100 - 1) // BS + 1))
        proxy.reset()
        run_cli(["upload", "-q", str(src), "eff/huge"], server.env(proxy.url), check=True)
        changed_bytes = len(blocks) * BS
        assert proxy.up <= 1.1 * changed_bytes, (proxy.up, changed_bytes)
    dst = tmp_path / "huge.back"
    run_cli(["download", "-q", "eff/huge", str(dst)], server.env(), check=True)
    assert dst.read_bytes() == bytes(data)
