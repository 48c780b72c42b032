"""The `nefeli` client's first hour (issue 11): Content-Type and mtime of uploads, mtimes
of downloads, `upload FILE CONT/`, `sync -n` to a missing container, a missing
download directory, options anywhere on the line, progress lines off a terminal,
Swift keys, and the container hash the client asks for.  Against a real blockd."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.file_attrs import format_mtime, guess_content_type, parse_last_modified, parse_mtime
from cli.main import build_parser
from cli_support import ACCOUNT, Server, require_blockd, run_cli, server, write_random  # noqa: F401

MiB = 1 << 20


@pytest.fixture(scope="module")
def sha_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """blockd whose default container hash is sha256: what the client itself asks for shows."""
    require_blockd()
    s = Server(tmp_path_factory.mktemp("blockd") / "data", ["--default-hash", "sha256"]).start()
    yield s
    s.stop()


def head(server: Server, path: str) -> dict[str, str]:
    req = urllib.request.Request(f"{server.url}/object-store/v1/{ACCOUNT}/{path}", method="HEAD",
                                 headers={"X-Auth-Token": server.token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return {k.lower(): v for k, v in r.headers.items()}


def put(server: Server, path: str, data: bytes, **headers: str) -> None:
    req = urllib.request.Request(f"{server.url}/object-store/v1/{ACCOUNT}/{path}", data=data, method="PUT",
                                 headers={"X-Auth-Token": server.token, **headers})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201


# -- file_attrs: pure functions ----------------------------------------------------------


def test_guess_content_type_like_swiftclient() -> None:
    assert guess_content_type("a/b/notes.txt") == "text/plain"
    assert guess_content_type("x.png") == "image/png"
    assert guess_content_type("photos/IMG.JPG") == "image/jpeg"
    assert guess_content_type("archive.tar.gz") == "application/x-tar"
    assert guess_content_type("no-extension") == "application/octet-stream"
    assert guess_content_type("dir.txt/") == "text/plain"


def test_mtime_values() -> None:
    assert format_mtime(1_700_000_000_123_456_789) == "1700000000.123456789"
    assert format_mtime(5) == "0.000000005"
    assert parse_mtime("1700000000.123456789") == 1_700_000_000_123_456_789
    assert parse_mtime("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_mtime("1700000000") == 1_700_000_000_000_000_000
    assert parse_mtime("1700000000.1234567891234") == 1_700_000_000_123_456_789  # digits past ns dropped
    assert parse_mtime("-1.5") == -1_500_000_000 and parse_mtime("-0.5") == -500_000_000
    for bad in (None, "", "abc", "1.2.3", "1e9", "0x10", "1,5", "9" * 13, "١٢٣"):
        assert parse_mtime(bad) is None, bad
    assert parse_last_modified("Tue, 14 Nov 2023 22:13:20 GMT") == 1_700_000_000 * 10**9
    assert parse_last_modified("yesterday") is None and parse_last_modified(None) is None


@given(st.integers(min_value=-(10**20), max_value=10**21 - 1))
def test_mtime_round_trip(ns: int) -> None:
    if ns < 0:
        return  # files before 1970: format_mtime is only given st_mtime_ns >= 0 here
    assert parse_mtime(format_mtime(ns)) == ns


@given(st.text(max_size=40))
def test_parse_mtime_never_raises(value: str) -> None:
    got = parse_mtime(value)
    assert got is None or isinstance(got, int)


# -- the command line ---------------------------------------------------------------------


def test_global_options_anywhere() -> None:
    p = build_parser()
    before = p.parse_args(["-q", "--url", "http://a", "--account", "x", "ls", "c"])
    after = p.parse_args(["ls", "c", "-q", "--url", "http://a", "--account", "x"])
    for ns in (before, after):
        assert (ns.quiet, ns.url, ns.account, ns.command) == (True, "http://a", "x", "ls")
    mixed = p.parse_args(["--url", "http://a", "upload", "f", "c/", "--token", "t"])
    assert (mixed.url, mixed.token, mixed.quiet) == ("http://a", "t", False)
    # a value given after the command wins over one before it
    assert p.parse_args(["--url", "http://a", "ls", "--url", "http://b"]).url == "http://b"


def test_help_names_only_commands_that_exist() -> None:
    r = run_cli(["--help"], {}, check=True)
    commands = r.stdout.split("COMMAND\n", 2)[-1].split("\n\n")[0]  # the block after "COMMAND"
    listed = [line.split()[0] for line in commands.splitlines() if line[:4] == "    " and line[4] != " "]
    assert {"upload", "download", "sync", "ls", "token", "volume", "events"} <= set(listed), listed
    for name in listed:
        assert run_cli([name, "--help"], {}).returncode == 0, name


def test_global_options_before_the_command_reach_the_server(server, tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "g.txt"
    f.write_bytes(b"global")
    r = run_cli(["--url", server.url, "--token", server.token, "--account", ACCOUNT, "-q", "upload", str(f), "gopt/"],
                {}, check=True)
    assert r.stderr == ""  # -q before the command silences the summary too
    assert head(server, "gopt/g.txt")["content-length"] == "6"


# -- uploads: Content-Type, mtime, names ------------------------------------------------


def test_upload_keeps_type_and_mtime_and_names_after_file(server, tmp_path):  # type: ignore[no-untyped-def]
    env = server.env()
    f = tmp_path / "notes.txt"
    f.write_text("some notes\n")
    os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    run_cli(["upload", str(f), "docs/"], env, check=True)
    h = head(server, "docs/notes.txt")
    assert h["content-type"].startswith("text/plain"), h
    assert h["x-object-meta-mtime"] == "1600000000.123456789"
    run_cli(["upload", str(f), "docs/sub/"], env, check=True)
    assert head(server, "docs/sub/notes.txt")["content-type"].startswith("text/plain")
    run_cli(["upload", str(f), "docs/other.bin", "--content-type", "application/x-mine"], env, check=True)
    assert head(server, "docs/other.bin")["content-type"] == "application/x-mine"
    # no slash at all is still refused: CONT alone is not a name
    r = run_cli(["upload", str(f), "docs"], env)
    assert r.returncode == 1 and "CONTAINER/OBJECT" in r.stderr


def test_sync_pushes_types_and_mtimes(server, tmp_path):  # type: ignore[no-untyped-def]
    src = tmp_path / "tree"
    (src / "img").mkdir(parents=True)
    (src / "img" / "a.png").write_bytes(b"\x89PNG fake")
    (src / "page.html").write_text("<p>x</p>")
    os.utime(src / "page.html", ns=(0, 1_234_567_890_000_000_001))
    run_cli(["sync", str(src), "site"], server.env(), check=True)
    assert head(server, "site/img/a.png")["content-type"] == "image/png"
    h = head(server, "site/page.html")
    assert h["content-type"].startswith("text/html") and h["x-object-meta-mtime"] == "1234567890.000000001"


# -- downloads: mtimes, missing directories ----------------------------------------------


def test_download_takes_the_remote_mtime(server, tmp_path):  # type: ignore[no-untyped-def]
    env = server.env()
    f = tmp_path / "m.bin"
    write_random(f, 3 * MiB, seed=5)
    os.utime(f, ns=(0, 1_500_000_000_987_654_321))
    run_cli(["upload", str(f), "mt/m.bin"], env, check=True)
    out = tmp_path / "back.bin"
    run_cli(["download", "mt/m.bin", str(out)], env, check=True)
    assert out.stat().st_mtime_ns == 1_500_000_000_987_654_321
    assert out.read_bytes() == f.read_bytes()
    # an object without X-Object-Meta-Mtime (a plain PUT) gets its Last-Modified
    put(server, "mt/plain.txt", b"plain")
    last = head(server, "mt/plain.txt")["last-modified"]
    out2 = tmp_path / "plain.txt"
    run_cli(["download", "mt/plain.txt", str(out2)], env, check=True)
    assert out2.stat().st_mtime_ns == parse_last_modified(last)
    # and sync --pull keeps them too
    pulled = tmp_path / "pulled"
    run_cli(["sync", "--pull", str(pulled), "mt"], env, check=True)
    assert (pulled / "m.bin").stat().st_mtime_ns == 1_500_000_000_987_654_321


def test_download_into_a_missing_directory_is_an_error(server, tmp_path):  # type: ignore[no-untyped-def]
    env = server.env()
    f = tmp_path / "d.txt"
    f.write_bytes(b"d")
    run_cli(["upload", str(f), "dl/d.txt"], env, check=True)
    r = run_cli(["download", "dl/d.txt", str(tmp_path / "missing" / "dir" / "x")], env)
    assert r.returncode == 1 and "no such directory" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "missing").exists()
    run_cli(["download", "dl/d.txt", str(tmp_path)], env, check=True)  # an existing directory: its name
    assert (tmp_path / "d.txt").read_bytes() == b"d"


# -- sync -n to a container that does not exist ------------------------------------------


def test_sync_dry_run_to_a_missing_container(server, tmp_path):  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    r = run_cli(["sync", "-n", str(src), "brandnew/pre"], server.env(), check=True)
    lines = r.stdout.splitlines()
    assert "create container brandnew" in lines
    assert "upload pre/a.txt" in lines and "upload pre/sub/b.txt" in lines
    assert "2 uploaded" in r.stderr
    req = urllib.request.Request(f"{server.url}/object-store/v1/{ACCOUNT}/brandnew", method="HEAD",
                                 headers={"X-Auth-Token": server.token})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 404  # a dry run creates nothing
    # a pull from a missing container is still an error
    r = run_cli(["sync", "--pull", "-n", str(tmp_path / "x"), "brandnew"], server.env())
    assert r.returncode == 1 and "404" in r.stderr


# -- progress off a terminal -------------------------------------------------------------


def test_plain_progress_lines_when_stderr_is_not_a_terminal(server, tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "big.bin"
    write_random(f, 40 * MiB, seed=7)
    r = run_cli(["upload", str(f), "prog/big.bin"], server.env(), check=True)
    lines = [line for line in r.stderr.splitlines() if "%" in line]
    assert any(line.startswith("hash big.bin: 100%") for line in lines), r.stderr
    assert any(line.startswith("send big.bin: ") for line in lines), r.stderr
    assert "\r" not in r.stderr and "\x1b" not in r.stderr  # no bar drawing
    r = run_cli(["download", "prog/big.bin", str(tmp_path / "big.out"), "-q"], server.env(), check=True)
    assert r.stderr == ""
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 1000)
    r = run_cli(["upload", str(small), "prog/small.bin"], server.env(), check=True)
    assert "%" not in r.stderr and len(r.stderr.splitlines()) == 1  # the summary alone


# -- containers the client creates ------------------------------------------------------


def test_client_asks_for_blake3_containers(sha_server, tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "c.txt"
    f.write_text("c")
    run_cli(["upload", str(f), "mine/c.txt"], sha_server.env(), check=True)
    assert head(sha_server, "mine")["x-container-block-hash"] == "blake3"
    # a container the server made with its own default is used as it is
    req = urllib.request.Request(f"{sha_server.url}/object-store/v1/{ACCOUNT}/theirs", method="PUT", data=b"",
                                 headers={"X-Auth-Token": sha_server.token})
    urllib.request.urlopen(req, timeout=30)
    run_cli(["upload", str(f), "theirs/c.txt"], sha_server.env(), check=True)
    assert head(sha_server, "theirs")["x-container-block-hash"] == "sha256"
    assert head(sha_server, "theirs/c.txt")["content-length"] == "1"


# -- Swift keys -------------------------------------------------------------------------


def test_token_key_gives_a_swift_user_a_key(server, tmp_path):  # type: ignore[no-untyped-def]
    data = str(server.data)
    key = run_cli(["token", "key", ACCOUNT, "swifty", "--admin", "--data", data], {}, check=True).stdout.strip()
    assert len(key) >= 16

    def auth(user: str, k: str) -> int:
        req = urllib.request.Request(f"{server.url}/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": k})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.headers["X-Storage-Url"].endswith(f"/v1/{ACCOUNT}")
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert auth(f"{ACCOUNT}:swifty", key) == 200
    assert auth(f"{ACCOUNT}:swifty", key + "x") == 401
    chosen = "a chosen key of some length"
    out = run_cli(["token", "key", ACCOUNT, "swifty", "--admin", "--key", chosen, "--data", data], {}, check=True)
    assert out.stdout.strip() == chosen
    assert auth(f"{ACCOUNT}:swifty", key) == 401 and auth(f"{ACCOUNT}:swifty", chosen) == 200
    for argv, words in (
        (["token", "key", ACCOUNT, "ro", "--data", data], "--admin"),
        (["token", "key", ACCOUNT, "u", "--admin", "--key", "short", "--data", data], "16"),
        (["token", "key", ACCOUNT, "has space", "--admin", "--data", data], "whitespace"),
        (["token", "key", ACCOUNT, "u", "--admin", "--data", str(tmp_path / "nowhere")], "no data directory"),
    ):
        r = run_cli(argv, {})
        assert r.returncode == 1 and words in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
    assert auth(f"{ACCOUNT}:ro", "anything-long-enough") == 401


def test_listing_json_carries_the_type(server, tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "l.json"
    f.write_text("{}")
    run_cli(["upload", str(f), "lt/"], server.env(), check=True)
    req = urllib.request.Request(f"{server.url}/object-store/v1/{ACCOUNT}/lt?format=json",
                                 headers={"X-Auth-Token": server.token})
    with urllib.request.urlopen(req, timeout=30) as r:
        [entry] = json.loads(r.read())
    assert entry["name"] == "l.json" and entry["content_type"] == "application/json"
