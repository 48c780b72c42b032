"""`nefeli store stats|gc|scrub|verify --data DIR`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from hashmaps import block_digests
from storage_engine.blocks.layout import store_dir
from storage_engine.blocks.records import HEADER_SIZE
from storage_engine.blocks.segments import segment_name
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, flip_byte, opened

REPO = Path(__file__).resolve().parents[2]
BS = 16 * KiB


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    rnd = random.Random(70)
    with opened(store_dir(tmp_path)) as store:
        for i in range(6):
            data = rnd.randbytes(3 * BS) + b"text " * 4000
            hashes = block_digests(data, "blake3", BS)
            store.put_many("blake3", [data[o : o + BS] for o in range(0, len(data), BS)])
            key = MapStore(store).add("blake3", len(data), BS, hashes)
            if i % 2:
                MapStore(store).drop(key)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["store", *args])
    return rc, capsys.readouterr().out


def test_stats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "stats", "--data", str(data_dir))
    assert rc == 0 and "dedup ratio" in out and "garbage bytes" in out
    rc, out = run(capsys, "stats", "--data", str(data_dir), "--json")
    d = json.loads(out)
    assert d["maps"] == 3 and d["garbage_bytes"] > 0 and d["compression_ratio"] > 1


def test_gc_then_stats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "gc", "--data", str(data_dir), "--grace", "0", "--json")
    assert rc == 0 and json.loads(out)["bytes_reclaimed"] > 0
    rc, out = run(capsys, "stats", "--data", str(data_dir), "--json")
    assert json.loads(out)["garbage_bytes"] == 0


def test_scrub_and_verify(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "verify", "--data", str(data_dir))[0] == 0
    rc, out = run(capsys, "scrub", "--data", str(data_dir))
    assert rc == 0 and "all good" in out
    with opened(store_dir(data_dir)) as store:
        victim = next(b for b in store.iter_blocks() if b.refcount)
    flip_byte(store_dir(data_dir) / "segments" / segment_name(victim.segment), victim.offset + HEADER_SIZE + 1)
    rc, out = run(capsys, "scrub", "--data", str(data_dir))
    assert rc == 1 and victim.digest.hex() in out
    rc, out = run(capsys, "scrub", "--data", str(data_dir), "--quarantine", "--json")
    assert rc == 1 and json.loads(out)["quarantined"] == 1
    assert run(capsys, "scrub", "--data", str(data_dir))[0] == 0


def test_read_only_commands_work_beside_a_running_writer(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with opened(store_dir(data_dir)):  # a daemon holds the store
        assert run(capsys, "stats", "--data", str(data_dir))[0] == 0
        assert run(capsys, "verify", "--data", str(data_dir))[0] == 0
        with pytest.raises(SystemExit, match="stop the daemon"):
            main(["store", "gc", "--data", str(data_dir)])


def test_no_store_here(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no block store"):
        main(["store", "stats", "--data", str(tmp_path)])


def test_console_entry_point(data_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "store", "stats", "--data", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    ).stdout
    assert "blocks" in out
