"""`nefeli ls / rm / share / publish / token` and the client's error messages."""

from __future__ import annotations

import urllib.request

from cli_support import free_port, run_cli, server  # noqa: F401


def _put(server, tmp_path, name: str, data: bytes) -> None:  # noqa: F811
    f = tmp_path / "tmp-upload"
    f.write_bytes(data)
    run_cli(["upload", str(f), name], server.env(), check=True)


def test_ls_rm(server, tmp_path):  # noqa: F811
    env = server.env()
    for name, data in (("lsc/a", b"1"), ("lsc/d/b", b"22"), ("lsc/d/c", b"333"), ("lsc2/x", b"")):
        _put(server, tmp_path, name, data)
    out = run_cli(["ls"], env, check=True).stdout.split()
    assert "lsc" in out and "lsc2" in out
    lines = run_cli(["ls", "lsc"], env, check=True).stdout.splitlines()
    assert [line.split() for line in lines] == [["1", "a"], ["2", "d/b"], ["3", "d/c"]]
    assert run_cli(["ls", "lsc/d/"], env, check=True).stdout.split() == ["2", "d/b", "3", "d/c"]
    long = run_cli(["ls", "-l", "lsc"], env, check=True).stdout
    assert "d/c" in long and "T" in long  # ISO dates
    assert "d/" in run_cli(["ls", "-d", "lsc"], env, check=True).stdout
    run_cli(["rm", "lsc/a"], env, check=True)
    assert "a\n" not in run_cli(["ls", "lsc"], env, check=True).stdout
    r = run_cli(["rm", "lsc/a"], env)
    assert r.returncode == 1 and "404" in r.stderr
    assert run_cli(["rm", "-f", "lsc/a"], env).returncode == 0
    run_cli(["rm", "-r", "lsc/d/"], env, check=True)
    assert run_cli(["ls", "lsc"], env, check=True).stdout == ""


def test_share_and_publish(server, tmp_path):  # noqa: F811
    env = server.env()
    _put(server, tmp_path, "pub/obj", b"hello public")
    r = run_cli(["share", "pub/obj", "--read", "bob,carol", "--write", "dave"], env, check=True)
    assert "bob" in r.stdout and "dave" in r.stdout
    url = run_cli(["publish", "pub/obj"], env, check=True).stdout.strip()
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url) as resp:  # no token
        assert resp.read() == b"hello public"
    run_cli(["publish", "--unpublish", "pub/obj"], env, check=True)
    try:
        urllib.request.urlopen(url)
        raise AssertionError("still public")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404  # the token no longer names anything
    r = run_cli(["share", "pub/obj", "--clear"], env, check=True)


def test_token_create_gives_a_working_token(server, tmp_path):  # noqa: F811
    tok = run_cli(["token", "create", "newacct", "--data", str(server.data)], {}, check=True).stdout.strip()
    assert tok.startswith("nfl_")
    env = {"NEFELI_URL": server.url, "NEFELI_TOKEN": tok, "NEFELI_ACCOUNT": "newacct"}
    f = tmp_path / "f"
    f.write_bytes(b"x")
    run_cli(["upload", str(f), "c/o"], env, check=True)
    assert "c" in run_cli(["ls"], env, check=True).stdout.split()
    r = run_cli(["token", "create", "x", "--data", str(tmp_path / "missing")], {})
    assert r.returncode == 1 and "no data directory" in r.stderr


def test_config_file(server, tmp_path):  # noqa: F811
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'url = "{server.url}"\ntoken = "{server.token}"\naccount = "{server.account}"\n')
    assert run_cli(["ls", "--config", str(cfg)], {}).returncode == 0
    xdg = tmp_path / "xdg"
    (xdg / "nefeli").mkdir(parents=True)
    (xdg / "nefeli" / "config.toml").write_text(cfg.read_text())
    assert run_cli(["ls"], {"XDG_CONFIG_HOME": str(xdg)}).returncode == 0


def test_error_messages(server, tmp_path):  # noqa: F811
    def check(r, *words):  # type: ignore[no-untyped-def]
        assert r.returncode != 0, r
        assert "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        for w in words:
            assert w in r.stderr, (w, r.stderr)

    check(run_cli(["ls"], {}), "no server URL")
    check(run_cli(["ls"], {"NEFELI_URL": server.url, "NEFELI_ACCOUNT": "a"}), "no token")
    check(run_cli(["ls"], {**server.env(), "NEFELI_TOKEN": "nfl_wrong"}), "401")
    check(run_cli(["ls"], server.env(f"http://127.0.0.1:{free_port()}")), "connection refused")
    check(run_cli(["ls", "nosuchcontainer"], server.env()), "404")
    check(run_cli(["upload", str(tmp_path / "missing"), "c/o"], server.env()), "not a regular file")
    check(run_cli(["upload", str(tmp_path), "c"], server.env()), "CONTAINER/OBJECT")
    check(run_cli(["download", "c/none", str(tmp_path / "x")], server.env()), "404")
