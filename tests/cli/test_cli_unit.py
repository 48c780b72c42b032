"""Pure parts of the `nefeli` client: config, targets, block runs, local hashing."""

from __future__ import annotations

import argparse
import os

import pytest

import hashmaps
from cli import config as cfgmod
from cli.client import split_target
from cli.errors import CliError
from cli.sync import blocked_parent, local_files, local_tree, remote_tree, safe_relative, unsafe_reason
from cli.transfer import _runs, hash_local, nblocks, remote_top
from cli.client import RemoteMap


def ns(**kw: object) -> argparse.Namespace:
    base = {"url": None, "token": None, "account": None, "config": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_config_order_file_env_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('url = "http://file:1"\ntoken = "tf"\naccount = "af"\n')
    c = cfgmod.load(ns(config=str(f)), env={})
    assert (c.url, c.token, c.account) == ("http://file:1", "tf", "af")
    c = cfgmod.load(ns(config=str(f)), env={"NEFELI_TOKEN": "te", "NEFELI_URL": "http://env:2"})
    assert (c.url, c.token, c.account) == ("http://env:2", "te", "af")
    c = cfgmod.load(ns(config=str(f), token="tflag"), env={"NEFELI_TOKEN": "te"})
    assert c.token == "tflag"


def test_config_missing_is_one_line_error(tmp_path):
    with pytest.raises(CliError, match="no server URL"):
        cfgmod.load(ns(config=None), env={"XDG_CONFIG_HOME": str(tmp_path)})
    with pytest.raises(CliError, match="no token"):
        cfgmod.load(ns(url="http://h:1", account="a"), env={"XDG_CONFIG_HOME": str(tmp_path)})
    with pytest.raises(CliError, match="not found"):
        cfgmod.load(ns(config=str(tmp_path / "nope.toml")), env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("url = ")
    with pytest.raises(CliError, match="cannot read config"):
        cfgmod.load(ns(config=str(bad)), env={})


def test_storage_url_forms():
    assert cfgmod.split_url("http://h:1", None) == ("http://h:1", "/object-store/v1", None)
    assert cfgmod.split_url("http://h:1/v1/alice", None) == ("http://h:1", "/v1", "alice")
    assert cfgmod.split_url("http://h:1/object-store/v1/bob/", None) == ("http://h:1", "/object-store/v1", "bob")
    c = cfgmod.load(ns(url="http://h:1/v1/alice", token="t"), env={})
    assert c.account == "alice" and c.storage_url == "http://h:1/v1/alice"
    with pytest.raises(CliError):
        cfgmod.split_url("ftp://x", None)


def test_split_target():
    assert split_target("c/a/b c") == ("c", "a/b c")
    assert split_target("c", need_object=False) == ("c", "")
    with pytest.raises(CliError):
        split_target("c")
    with pytest.raises(CliError):
        split_target("/", need_object=False)


def test_runs():
    assert _runs([], 8) == []
    assert _runs([0, 1, 2, 5, 6, 9], 8) == [(0, 3), (5, 7), (9, 10)]
    assert _runs(list(range(10)), 4) == [(0, 4), (4, 8), (8, 10)]


def test_safe_relative():
    assert safe_relative("a/b.txt")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"):
        assert not safe_relative(bad), bad


@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
@pytest.mark.parametrize("size", [0, 1, 4096, 4096 * 3, 4096 * 3 + 17, 4096 * 40 + 1])
def test_hash_local_matches_hash_file(tmp_path, scheme, size):
    p = tmp_path / "f"
    p.write_bytes(os.urandom(size))
    got = hash_local(p, scheme, 4096)
    want = hashmaps.hash_file(p, scheme, 4096)
    assert (got.size, got.digests, got.top) == (want.size, want.digests, want.top_hash)
    assert nblocks(size, 4096) == len([d for d in got.digests]) or size == 0
    rm = RemoteMap(4096, scheme, size, got.hexes, None, None)
    assert remote_top(rm) == want.top_hash


def test_local_files_skips_links_and_parts(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    (tmp_path / "y z").write_text("")
    (tmp_path / ".a.nefeli-part").write_text("")
    os.symlink(tmp_path / "y z", tmp_path / "link")
    assert sorted(local_files(tmp_path)) == ["d/x", "y z"]


def test_local_tree_dirs_links_and_undecodable_names(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a b" / "ç").mkdir(parents=True)
    (tmp_path / "a b" / "ç" / "f").write_text("f")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "inside").write_text("i")
    os.symlink(tmp_path / "real", tmp_path / "linked dir")
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"bad\xff"))
    open(os.path.join(os.fsencode(tmp_path), b"real", b"x\xfe"), "wb").close()
    t = local_tree(tmp_path)
    assert sorted(t.dirs) == ["a b", "a b/ç", "empty", "real"]
    assert sorted(t.files) == ["a b/ç/f", "real/inside"]
    assert sorted(os.fsencode(n) for n in t.undecodable) == [b"bad\xff", b"real/x\xfe"]


def test_unsafe_reason():
    assert unsafe_reason("a/b c/ü") is None
    assert unsafe_reason("/etc/passwd") == "absolute path"
    assert unsafe_reason("a/../../b") == "'..' segment"
    assert unsafe_reason("a//b") == "empty or '.' segment"
    assert unsafe_reason("a\0b") == "NUL byte"


def test_remote_tree_splits_markers_and_refuses_escapes():
    def e(name: str, ctype: str = "text/plain") -> dict[str, object]:
        return {"name": name, "content_type": ctype}

    t = remote_tree(
        [e("p/"), e("p", "application/directory"), e("p/", "application/directory"), e("p/d", "application/directory; x=y"),
         e("p/e/", "APPLICATION/FOLDER"), e("p/d/f"), e("p/../x"), e("p/../y/", "application/directory"), e("q/z")],
        "p/",
    )
    assert sorted(t.dirs) == ["d", "e"] and sorted(t.files) == ["d/f"]
    assert [n for n, _ in t.unsafe] == ["p/", "p", "p/../x", "p/../y/", "q/z"]
    assert t.implied_dirs() == {"d"}


def test_blocked_parent(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "f").write_text("")
    os.symlink(tmp_path / "d", tmp_path / "ln")
    assert blocked_parent(tmp_path, "d/e/x") is None
    assert blocked_parent(tmp_path, "d/missing/x/y") is None
    assert blocked_parent(tmp_path, "f/x") == ("f", "a file")
    assert blocked_parent(tmp_path, "ln/e/x") == ("ln", "a symlink")
    assert blocked_parent(tmp_path, "top") is None
